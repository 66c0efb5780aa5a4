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

Every family `workbench.adapters.weights` supports is read the same way, through that module
only (probed q/k/v/o and norms, `output_weights`, `unembedding_matrix`, `rotary_cos_sin`):
learned position embeddings are a writer when the layout has them (GPT-2, OPT); on RoPE models
`rot [pos, d_head, d_head]` is the model's own rotation (rotate-half or GPT-J's interleaved
pairs, partial rotary: identity past `rotary_dim`); parallel attention/MLP blocks (GPT-NeoX,
GPT-J, Falcon) need nothing special, since heads read the layer input in both layouts and MLPs
are scored but never traced through. Qwen-3's per-head q/k RMSNorm is a per-(position, head)
scale `q_scale [layer, head, pos]` / `k_scale [layer, kv_head, pos]` at the clean run (like the
layer norm's scale, frozen: the decomposition is exact for the clean score). Gemma-2's RMSNorm
on the attention output (`ln1_post`) is likewise taken as the linear map it is at the clean
run, `a -> gain * a / scale_p` (`post_factor [layer, pos, d_model]`, the scale from the norm's
own `hook_scale`): each head's write and the output bias are multiplied by it, so the
writers still sum to the residual stream (its MLP's post-norm is inside `hook_mlp_out`).

Caveats: decoders with a logits readout only; the final norm's bias is not a node and is left
out (it moves every prompt's metric by the same constant per token). Refused with the reason
(`check_supported`): encoders and families the weights API does not support.
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
    q_scale: np.ndarray | None = None  # [layer, head, pos] Qwen-3 q-norm scale (clean run)
    k_scale: np.ndarray | None = None  # [layer, kv_head, pos]
    post_factor: np.ndarray | None = None  # [layer, pos, d_model] Gemma-2 ln1_post gain/scale

    def project(self, direction: np.ndarray) -> np.ndarray:
        """Centre a direction for LayerNorm (the norm's centring is a symmetric projection)."""
        return direction - direction.mean(-1, keepdims=True) if self.centre else direction


def _f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def check_supported(model: Model, task: Task) -> weights.Layout:
    """The model's weights `Layout`; ValueError for encoders, readout tasks and unsupported
    families, NotImplementedError for variants the decomposition does not model."""
    if task.readout is not None or not model.is_causal:
        raise ValueError(
            f"task: SVD tracing needs a decoder task read from the logits; {task.name!r} on "
            f"{model.name} reads {task.readout!r}"
        )
    return weights.layout(model)  # ValueError naming an unsupported family


def _hook_names(model: Model, lay: weights.Layout) -> list[str]:
    names = ["hook_embed"] + (["hook_pos_embed"] if lay.learned_positions else [])
    names += ["rotary_emb.hook_cos", "rotary_emb.hook_sin"] if lay.rotary == "half" else []
    for m in range(model.n_layers):
        names += [f"blocks.{m}.hook_resid_pre", f"blocks.{m}.attn.hook_pattern"]
        names += [f"blocks.{m}.attn.hook_z", f"blocks.{m}.hook_mlp_out"]
        if lay.post_attention_norm:  # Gemma-2: the attention output's norm, in and out
            names += [f"blocks.{m}.ln1_post.hook_scale"]
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
    lay = check_supported(model, task)
    norm, eps = weights.input_norm(model, 0)
    w_u = weights.unembedding_matrix(model)  # [d_model, d_vocab]
    w_o = [weights.output_weights(model, m) for m in range(model.n_layers)]
    names = _hook_names(model, lay)
    for sub in task_batches(task, batch_size):
        logits, cache = model.run_with_cache(sub.clean_tokens.to(model.device), names=names)
        if counter is not None:
            counter.forward += 1
        grad = _metric_gradient(sub, logits)  # [batch, pos, d_vocab]
        for b in range(sub.n_prompts):
            yield _one_prompt(model, graph, cache, b, grad[b], w_u, w_o, lay, norm, eps)


def _one_prompt(model, graph, cache, b, grad, w_u, w_o, lay, norm, eps) -> PromptState:
    n_layers = model.n_layers

    def get(name: str) -> np.ndarray:
        return _f64(cache[name][b])

    embed = get("hook_embed")  # [pos, d_model]
    if lay.learned_positions:
        embed = embed + get("hook_pos_embed")
    rows, biases, post = {"input": embed}, [], []
    for m in range(n_layers):
        z = get(f"blocks.{m}.attn.hook_z")  # [pos, head, d_head]
        per_head = np.einsum("phd,hdm->hpm", z, w_o[m][0])  # [head, pos, d_model]
        bias = np.broadcast_to(w_o[m][1], embed.shape)  # [pos, d_model]
        if lay.post_attention_norm:
            factor = _post_norm(model, get, m)  # [pos, d_model] g / scale at the clean run
            per_head, bias = per_head * factor, bias * factor
            post.append(factor)
        for h in range(model.n_heads):
            rows[head_node(m, h)] = per_head[h]
        biases.append(bias)
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
    x_norm = np.stack([x for x, _ in normed[:-1]])  # [layer, pos, d_model]
    rot = None
    if lay.rotary is not None:
        cos, sin = weights.rotary_cos_sin(model, embed.shape[0], cache)  # [pos, rotary_dim]
        d_head = w_o[0][0].shape[1]
        rot = weights.rotation_matrices(cos, sin, d_head=d_head, style=lay.rotary)
    q_scale, k_scale = _qk_norm_scales(model, x_norm) if lay.qk_norm else (None, None)
    return PromptState(
        writers=writers,
        biases=biases,
        x_norm=x_norm,
        scale=scale,
        centre=centre,
        pattern=np.stack([get(f"blocks.{m}.attn.hook_pattern") for m in range(n_layers)]),
        rot=rot,
        metric_read=read / scale[-1],
        component_error=error,
        q_scale=q_scale,
        k_scale=k_scale,
        post_factor=np.stack(post) if post else None,
    )


def _post_norm(model: Model, get, layer: int) -> np.ndarray:
    """Gemma-2's `ln1_post` as the map it is at the clean run: `a -> gain * a / scale_p`, the
    factor `gain / scale` `[pos, d_model]` with the norm's own `hook_scale`
    (`sqrt(mean(a^2) + eps)`; checked through `component_error`)."""
    gain = weights.head_weights(model, layer, 0).post_norm_gain  # [d_model]
    scale = get(f"blocks.{layer}.ln1_post.hook_scale")  # [pos, 1]
    return gain[None, :] / scale  # [pos, d_model]


def _qk_norm_scales(model: Model, x_norm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Qwen-3: `sqrt(mean(q^2) + eps)` of each head's unnormed q (and k) at every position."""
    n_layers, n_pos = x_norm.shape[:2]
    x = np.concatenate([x_norm, np.ones((n_layers, n_pos, 1))], -1)  # [layer, pos, d_model + 1]
    n_kv = model.n_key_value_heads
    q_scale, k_scale = np.zeros((n_layers, model.n_heads, n_pos)), np.zeros((n_layers, n_kv, n_pos))
    for m in range(n_layers):
        for h in range(model.n_heads):
            w = weights.head_weights(model, m, h)
            q = x[m] @ w.W_Q  # [pos, d_head]
            q_scale[m, h] = np.sqrt((q**2).mean(-1) + w.qk_norm_eps)
            k = x[m] @ w.W_K  # [pos, d_head]
            k_scale[m, w.kv_head] = np.sqrt((k**2).mean(-1) + w.qk_norm_eps)
    return q_scale, k_scale
