"""Per-prompt float64 state for SVD tracing (`circuits.svd_tracing`): one clean forward pass.

`prompt_states(model, task, graph, batch_size)` runs the task's clean prompts in batches (one
forward pass per batch, no patching, no backward pass through the model) and yields, per
prompt, a `PromptState` holding:

- `writers [n_writer, pos, d_model]`: the raw outputs of the graph's writer nodes (`input` =
  token (+ position) embeddings, every head `hook_z @ W_O`, every MLP), in `graph.writers`
  order, and `biases [layer, pos, d_model]`: each layer's attention output bias `b_O` (not a
  graph node). Their sum is the residual stream (`component_error` checks it).
- `scale [layer + 1, pos, 1]`: the norm scale in front of each layer's attention (`[-1]`: the
  final norm), `centre` (True for LayerNorm, False for RMSNorm), `x_norm [layer, pos, d_model]`.
- `pattern [layer, head, query, key]` and, on RoPE models, `rot [pos, d_head, d_head]`.
- `metric_read [pos, d_model]`: the direction in raw residual units along which a writer's
  output at a position moves the task metric directly, `P W_U g_p / scale_final[p]`, with
  `g_p = d metric / d logits[p]` taken at zero logits: the metric's logit-difference form.
  For a logit difference (IOI) that is its exact gradient; for a log-probability of token t it
  is `e_t - 1/d_vocab`, the target logit minus the mean logit. (Differentiating at the clean
  logits instead, `e_t - p`, gives the first-order expansion at the clean run, which turns
  negative wherever the model is wrong: on planted-induction it gave the induction head's
  direct effect the wrong sign, so it is not used.)

Caveats: decoders with a logits readout only (GPT-2 and Llama weights); the final norm's bias
is not a node and is left out (it moves every prompt's metric by the same constant per token).
Every other family (GPT-NeoX/Pythia, GPT-J, Falcon, Phi, OPT, ...) is refused by
`check_supported` with a `ValueError` naming it: the state reads GPT-2's position embedding or
Llama's full rotate-half rotary. Parallel attention/MLP blocks are not the obstacle: heads
read the layer input in both layouts and MLPs are scored but never traced through.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from circuits.graph import head_node, mlp_node
from circuits.task_batches import task_batches
from workbench.adapters import weights

if TYPE_CHECKING:
    from circuits.graph import Graph
    from workbench.model import Model
    from workbench.tasks import Task


@dataclass(frozen=True)
class PromptState:
    """Clean-run quantities of one prompt (see module docstring)."""

    writers: np.ndarray  # [n_writer, pos, d_model]
    biases: np.ndarray  # [layer, pos, d_model]
    x_norm: np.ndarray  # [layer, pos, d_model]
    scale: np.ndarray  # [layer + 1, pos, 1]
    centre: bool
    pattern: np.ndarray  # [layer, head, query, key]
    rot: np.ndarray | None  # [pos, d_head, d_head]
    metric_read: np.ndarray  # [pos, d_model]
    component_error: float

    def project(self, direction: np.ndarray) -> np.ndarray:
        """Centre a direction for LayerNorm (the norm's centring is a symmetric projection)."""
        return direction - direction.mean(-1, keepdims=True) if self.centre else direction


def _f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def check_supported(model: Model, task: Task) -> str:
    """The architecture ("gpt2" or "llama"); ValueError for encoders or readout tasks."""
    if task.readout is not None or not model.is_causal:
        raise ValueError(
            f"task: SVD tracing needs a decoder task read from the logits; {task.name!r} on "
            f"{model.name} reads {task.readout!r}"
        )
    arch = weights.architecture(model)
    if arch not in ("gpt2", "llama"):
        raise ValueError(f"model: SVD tracing supports GPT-2 and Llama decoders, not {arch}")
    return arch


def _hook_names(model: Model, arch: str) -> list[str]:
    names = ["hook_embed"] + (["hook_pos_embed"] if arch == "gpt2" else [])
    names += ["rotary_emb.hook_cos", "rotary_emb.hook_sin"] if arch == "llama" else []
    for m in range(model.n_layers):
        names += [f"blocks.{m}.hook_resid_pre", f"blocks.{m}.attn.hook_pattern"]
        names += [f"blocks.{m}.attn.hook_z", f"blocks.{m}.hook_mlp_out"]
    return names + [f"blocks.{model.n_layers - 1}.hook_resid_post"]


def _metric_gradient(task: Task, logits: torch.Tensor) -> np.ndarray:
    """`d metric / d logits` `[batch, pos, d_vocab]` at zero logits (no model backward)."""
    leaf = torch.zeros_like(
        logits, dtype=torch.float32, requires_grad=True
    )  # [batch, pos, d_vocab]
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(task.metric(leaf).sum(), leaf)
    return _f64(grad)


@torch.no_grad()
def prompt_states(
    model: Model, task: Task, graph: Graph, *, batch_size: int = 16, counter=None
) -> Iterator[PromptState]:
    """Yield one `PromptState` per clean prompt of `task` (see module docstring)."""
    arch = check_supported(model, task)
    norm, eps = weights.input_norm(model, 0)
    w_u = weights.unembedding_matrix(model)  # [d_model, d_vocab]
    w_o = [weights.output_weights(model, m) for m in range(model.n_layers)]
    names = _hook_names(model, arch)
    for sub in task_batches(task, batch_size):
        logits, cache = model.run_with_cache(sub.clean_tokens.to(model.device), names=names)
        if counter is not None:
            counter.forward += 1
        grad = _metric_gradient(sub, logits)  # [batch, pos, d_vocab]
        for b in range(sub.n_prompts):
            yield _one_prompt(model, graph, cache, b, grad[b], w_u, w_o, arch, norm, eps)


def _one_prompt(model, graph, cache, b, grad, w_u, w_o, arch, norm, eps) -> PromptState:
    n_layers = model.n_layers

    def get(name: str) -> np.ndarray:
        return _f64(cache[name][b])

    embed = get("hook_embed")  # [pos, d_model]
    if arch == "gpt2":
        embed = embed + get("hook_pos_embed")
    rows, biases = {"input": embed}, []
    for m in range(n_layers):
        z = get(f"blocks.{m}.attn.hook_z")  # [pos, head, d_head]
        per_head = np.einsum("phd,hdm->hpm", z, w_o[m][0])  # [head, pos, d_model]
        for h in range(model.n_heads):
            rows[head_node(m, h)] = per_head[h]
        biases.append(np.broadcast_to(w_o[m][1], embed.shape))
        if graph.has_mlp:
            rows[mlp_node(m)] = get(f"blocks.{m}.hook_mlp_out")
    writers = np.stack([rows[n] for n in graph.writers])  # [n_writer, pos, d_model]
    biases = np.stack(biases)  # [layer, pos, d_model]
    final = get(f"blocks.{n_layers - 1}.hook_resid_post")  # [pos, d_model]
    error = float(np.abs(writers.sum(0) + biases.sum(0) - final).max())
    resid = [get(f"blocks.{m}.hook_resid_pre") for m in range(n_layers)] + [final]
    normed = [weights.normalise(r, norm, eps) for r in resid]
    scale = np.stack([s for _, s in normed])  # [layer + 1, pos, 1]
    centre = norm == "layernorm"
    read = grad @ w_u.T  # [pos, d_model]
    if centre:
        read = read - read.mean(-1, keepdims=True)
    rot = None
    if arch == "llama":
        cos, sin = (_f64(cache[f"rotary_emb.hook_{n}"][0]) for n in ("cos", "sin"))  # [pos, d_head]
        rot = weights.rotation_matrices(cos, sin)  # [pos, d_head, d_head]
    return PromptState(
        writers=writers,
        biases=biases,
        x_norm=np.stack([x for x, _ in normed[:-1]]),
        scale=scale,
        centre=centre,
        pattern=np.stack([get(f"blocks.{m}.attn.hook_pattern") for m in range(n_layers)]),
        rot=rot,
        metric_read=read / scale[-1],
        component_error=error,
    )
