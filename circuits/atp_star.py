"""AtP* (Kramár, Lieberum, Shah & Nanda 2024, arXiv 2403.00745): attribution patching with the
attention-saturation ("QK") fix and GradDrop.

Attribution patching (AtP) estimates the effect of patching node n to its corrupted value as
`(n(corrupted) - n(clean)) . dM/dn` on the clean run. AtP* changes two things:

1. **QK fix.** For a query or key node, the attention pattern is *recomputed exactly* with the
   patched queries (keys) and the linear approximation is taken only after the softmax:
   `I(n) = sum_{t,s} (A'[t, s] - A[t, s]) dM/dA[t, s]`, so a saturated softmax (whose gradient
   is ~0) no longer hides a large change of the pattern. Value and MLP nodes keep plain AtP.
2. **GradDrop.** For each layer l = 0..L-1, the gradient is recomputed with layer l's writes to
   the residual stream detached (no gradient flows back through that layer), giving `I_l(n)`;
   the score is `E_prompts[ sum_l |I_l(n)| / (L - 1) ]` (a node's own layer gives 0, so a node
   with nothing to cancel scores its plain |AtP|). Scores are magnitudes (>= 0): the sign is lost.

What is computed, and how it relates to the paper:

- `atp_star_nodes(...)` - **node level, as the paper defines it**, except for granularity:
  a node is a head's query, key or value *over all positions jointly* (the paper's are per
  position; patching every position at once is the paper's "coarser nodes"), with key/value
  nodes per key/value head on grouped-query models, and each MLP's output. Labels are the
  graph's port names (`L1H3<k>`, `MLP0`). The exact reference is
  `node_patching_reference` (each node's activation patched to its corrupted value).
- `atp_star(...)` (registered as `trace(method="atp*")`) - an **edge-level variant** (not in
  the paper), so AtP* can be compared edge by edge with the other methods: edge `u -> port`
  patches u's output difference out of the port's input, as EAP does. For q/k ports the QK fix
  is applied per edge (the port input `resid - delta_u` goes exactly through `ln1`, the
  projection, RoPE and the softmax, and the linearisation is after the softmax); v, MLP and
  readout ports keep EAP's linear term `-delta_u . dM/d input`. GradDrop is applied per edge
  with the same rule; readout edges (behind every layer) divide by L instead of L - 1, so an
  edge with nothing to cancel again scores its plain |AtP|. With `qk_fix=False,
  grad_drop=False` the edge scores are EAP's. The node-level scores ride along in
  `config["node_scores"]`.

Cost: 6 forward passes per minibatch (clean and corrupted writer outputs and node values, the
clean residual stream, the clean pattern check) plus L forward+backward passes with GradDrop
(1 without), plus the recomputed attention patterns (no model passes).

Caveats: pre-LN decoders only (GPT-2, Llama families); attention other than causal softmax
(softcapping, sinks, ALiBi) is refused by a check against the model's own pattern. The QK fix
makes a node's *own* softmax exact; softmaxes downstream of it (a previous-token head feeding a
saturated induction head) and the metric itself (log-probabilities near 0) are still
linearised. GradDrop on a two-layer model leaves a layer-0 node only its direct path (dropping
layer 1 removes every indirect one, dropping layer 0 its own gradient).

Memory: one minibatch holds the probe gradients of every GradDrop variant, `[batch, pos,
head, d_model]` per q/k/v port group and layer, n_layers times over (about 650 MB per prompt
on GPT-2 small at 41 positions), plus the QK fix's `[upstream, batch, pos, d_model]` for one
port. The default `batch_size=None` sizes the minibatch so that this stays under
`BATCH_BYTES` (at most 32 prompts, at least 1): GPT-2 small gets 1 prompt per minibatch, the
zoo's 2-layer models 32. At a fixed minibatch of 8 GPT-2 small peaked at 10.8 GB.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pandas as pd
import torch
from tqdm.auto import tqdm

from circuits.atp_star_passes import (
    clean_geometry,
    layer_weights,
    node_values,
    probe_gradients,
)
from circuits.circuit import Circuit
from circuits.edge_patching import EdgePatcher
from circuits.graph import build_graph
from circuits.pass_counter import PassCounter
from circuits.task_batches import task_batches
from workbench.adapters.modules import hf_module

if TYPE_CHECKING:
    from workbench.model import Model
    from workbench.tasks import Task

BATCH_BYTES = 512 * 2**20  # default minibatch: probe gradients of at most 512 MB


def default_batch_size(model: Model, task: Task, grad_drop: bool) -> int:
    """Prompts per minibatch so that its probe gradients (every GradDrop variant) and the QK
    fix's upstream inputs take at most `BATCH_BYTES`; between 1 and 32."""
    variants = model.n_layers if grad_drop else 1
    per_position = 3 * model.n_heads * model.d_model + 2 * model.d_model  # q/k/v ports, MLP
    grads = variants * model.n_layers * per_position
    writers = 1 + model.n_layers * (model.n_heads + 1)  # input, heads, MLPs
    per_prompt = (grads + writers * model.d_model) * task.clean_tokens.shape[1] * 4
    return max(1, min(32, BATCH_BYTES // per_prompt))


def _method_name(qk_fix: bool, grad_drop: bool) -> str:
    return {(True, True): "atp*", (True, False): "atp+qk", (False, True): "atp+gd"}.get(
        (qk_fix, grad_drop), "atp"
    )


def _heads_of(port, group: int) -> slice:
    """Query heads whose pattern a port changes: its own head (q), its kv head's group (k)."""
    if port.kind == "q":
        return slice(port.index, port.index + 1)
    return slice(port.index * group, (port.index + 1) * group)


def _pattern_effect(diff: torch.Tensor, grads: list, layer: int, heads: slice) -> torch.Tensor:
    """`[variant, ..., batch]`: sum over heads, queries, keys of (A' - A) dM/dA."""
    return torch.stack(
        [torch.einsum("...bhts,bhts->...b", diff, g[f"{layer}.pattern"][:, heads]) for g in grads]
    )


def _edge_estimates(model, graph, port, deltas, resid, geo, grads, qk_fix, group):
    """`[variant, upstream, batch]` estimates for the edges into one port."""
    n_up = len(graph.upstream_of(port))
    diff = deltas[:n_up]  # [up, batch, pos, d_model]
    layer = port.layer
    if port.kind in ("q", "k") and qk_fix:
        ln1 = hf_module(model.bridge, f"blocks.{layer}.ln1")
        w, b = layer_weights(model, layer, port.kind)
        x = resid[layer][None] - diff  # [up, batch, pos, d_model]
        new = torch.einsum("ubpm,md->ubpd", ln1(x), w[port.index]) + b[port.index]
        rotated = geo[layer].rotate(new[:, :, :, None, :])  # [up, batch, pos, 1, d_head]
        heads = _heads_of(port, group)
        if port.kind == "q":
            g = port.index // group
            keys = geo[layer].rot_k[:, :, g : g + 1].expand(n_up, -1, -1, -1, -1)
            patched = geo[layer].patterns(rotated, keys)
        else:
            queries = geo[layer].rot_q[:, :, heads].expand(n_up, -1, -1, -1, -1)
            patched = geo[layer].patterns(queries, rotated)
        return _pattern_effect(patched - geo[layer].pattern[:, heads], grads, layer, heads)
    if port.kind == "output":
        key = "output"
    elif port.kind == "mlp":
        key = f"{layer}.mlp.port"
    else:
        key = f"{layer}.{port.kind}.port"
    per = [g[key] if g[key].dim() == 3 else g[key][:, :, port.index] for g in grads]
    return torch.stack([-torch.einsum("ubpm,bpm->ub", diff, g) for g in per])


def _node_estimates(port, clean, corrupted, geo, grads, qk_fix, group):
    """`[variant, batch]` node-level estimate for a head's q/k/v or an MLP."""
    layer = port.layer
    if port.kind == "mlp":
        name = f"blocks.{layer}.mlp.hook_out"
        delta = corrupted[name] - clean[name]  # [batch, pos, d_model]
        return torch.stack(
            [torch.einsum("bpm,bpm->b", delta, g[f"{layer}.mlp.out"]) for g in grads]
        )
    pre = f"blocks.{layer}.attn.hook_"
    i = slice(port.index, port.index + 1)
    if port.kind in ("q", "k") and qk_fix:
        heads = _heads_of(port, group)
        rot = "rot_" if pre + "rot_q" in corrupted else ""
        if port.kind == "q":
            g = port.index // group
            patched = geo[layer].patterns(
                corrupted[pre + rot + "q"][:, :, i], geo[layer].rot_k[:, :, g : g + 1]
            )
        else:
            patched = geo[layer].patterns(
                geo[layer].rot_q[:, :, heads], corrupted[pre + rot + "k"][:, :, i]
            )
        return _pattern_effect(patched - geo[layer].pattern[:, heads], grads, layer, heads)
    delta = (corrupted[pre + port.kind] - clean[pre + port.kind])[:, :, port.index]
    return torch.stack(
        [
            torch.einsum("bpd,bpd->b", delta, g[f"{layer}.{port.kind}.act"][:, :, port.index])
            for g in grads
        ]
    )


def _combine(estimates: torch.Tensor, grad_drop: bool, n_terms: int) -> torch.Tensor:
    """Per-prompt score from `[variant, ..., batch]`: GradDrop's sum of |I_l| / n_terms, or the
    single undropped estimate."""
    if grad_drop:
        return estimates.abs().sum(0) / n_terms
    return estimates[0]


def _run(model, task, *, qk_fix, grad_drop, batch_size, progress):
    """Summed edge scores `[edge]`, node scores {port label: sum} and the pass counter."""
    if not isinstance(qk_fix, bool) or not isinstance(grad_drop, bool):
        raise ValueError("qk_fix, grad_drop: need True or False")
    n_layers = model.n_layers
    if grad_drop and n_layers < 2:
        raise ValueError(f"grad_drop: needs at least 2 layers; {model.name} has {n_layers}")
    graph = build_graph(model, readout=task.readout)
    patcher = EdgePatcher(model, graph)  # refuses models without edge interventions
    if task.readout is not None:
        raise ValueError(f"task: atp* reads the logits; this task reads {task.readout!r}")
    group = model.n_heads // model.n_key_value_heads
    drops = list(range(n_layers)) if grad_drop else [None]
    edge_sum = torch.zeros(graph.n_edges, dtype=torch.float64)
    node_ports = [p for p in graph.ports if p.kind != "output"]
    node_sum = torch.zeros(len(node_ports), dtype=torch.float64)
    counter = PassCounter()
    bar = tqdm(total=task.n_prompts, disable=not progress, desc=_method_name(qk_fix, grad_drop))
    for sub in task_batches(task, batch_size):
        clean_t = sub.clean_tokens.to(model.device)
        corr_t = sub.corrupted_tokens.to(model.device)
        geo = clean_geometry(model, clean_t)
        clean, corrupted = node_values(model, clean_t), node_values(model, corr_t)
        with torch.no_grad():
            deltas = patcher.writer_outputs(clean_t) - patcher.writer_outputs(corr_t)
            _, cache = model.run_with_cache(
                clean_t, names=[f"blocks.{layer}.hook_resid_pre" for layer in range(n_layers)]
            )
        resid = [cache[f"blocks.{layer}.hook_resid_pre"] for layer in range(n_layers)]
        counter.forward += 6
        grads = [probe_gradients(model, clean_t, sub.metric, drop=d) for d in drops]
        counter.forward += len(drops)
        counter.backward += len(drops)
        with torch.no_grad():
            start = 0
            for port in graph.ports:
                n_up = len(graph.upstream_of(port))
                est = _edge_estimates(model, graph, port, deltas, resid, geo, grads, qk_fix, group)
                terms = n_layers if port.kind == "output" else n_layers - 1
                edge_sum[start : start + n_up] += _combine(est, grad_drop, terms).double().sum(-1)
                start += n_up
            for i, port in enumerate(node_ports):
                est = _node_estimates(port, clean, corrupted, geo, grads, qk_fix, group)
                node_sum[i] += _combine(est, grad_drop, n_layers - 1).double().sum()
        bar.update(sub.n_prompts)
    bar.close()
    nodes = {p.name: node_sum[i].item() / task.n_prompts for i, p in enumerate(node_ports)}
    return edge_sum / task.n_prompts, nodes, counter


def atp_star(
    model: Model,
    task: Task,
    *,
    qk_fix: bool = True,
    grad_drop: bool = True,
    batch_size: int | None = None,
    progress: bool = False,
    seed: int = 0,
) -> Circuit:
    """AtP* edge scores (the edge-level variant; see module docstring), with the paper's
    node-level scores in `config["node_scores"]` (port label -> score).

    batch_size: prompts per minibatch; None (default) sizes it by memory
    (`default_batch_size`)."""
    torch.manual_seed(seed)
    start = time.perf_counter()
    if batch_size is None:
        batch_size = default_batch_size(model, task, grad_drop)
    scores, nodes, counter = _run(
        model, task, qk_fix=qk_fix, grad_drop=grad_drop, batch_size=batch_size, progress=progress
    )
    return Circuit.from_scores(
        build_graph(model, readout=task.readout),
        task=task.name,
        method=_method_name(qk_fix, grad_drop),
        scores=scores,
        config={
            "qk_fix": qk_fix,
            "grad_drop": grad_drop,
            "level": "edge variant of AtP* (QK fix and GradDrop per edge); node_scores: the "
            "paper's node level (q/k/v per head over all positions, MLP outputs)",
            "node_scores": nodes,
            "batch_size": batch_size,
            "seed": seed,
            "runtime_s": time.perf_counter() - start,
            **counter.as_dict(),
        },
    )


def atp_star_nodes(
    model: Model,
    task: Task,
    *,
    qk_fix: bool = True,
    grad_drop: bool = True,
    batch_size: int | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Node-level AtP* (the paper's definition at head x {q, k, v} and MLP granularity): one
    row per node with columns node (port label), kind, layer, index, score. `batch_size` as
    in `atp_star`."""
    if batch_size is None:
        batch_size = default_batch_size(model, task, grad_drop)
    _, nodes, _ = _run(
        model, task, qk_fix=qk_fix, grad_drop=grad_drop, batch_size=batch_size, progress=progress
    )
    return _node_frame(model, task, nodes)


def _node_frame(model: Model, task: Task, values: dict[str, float]) -> pd.DataFrame:
    ports = [p for p in build_graph(model, readout=task.readout).ports if p.kind != "output"]
    return pd.DataFrame(
        {
            "node": [p.name for p in ports],
            "kind": [p.kind for p in ports],
            "layer": [p.layer for p in ports],
            "index": [p.index for p in ports],
            "score": [values[p.name] for p in ports],
        }
    )


def _replace_slice(source: torch.Tensor, index: int | None):
    def hook(act, *, hook):
        act = act.clone()
        if index is None:
            act[:] = source
        else:
            act[:, :, index] = source[:, :, index]
        return act

    return hook


@torch.no_grad()
def node_patching_reference(model: Model, task: Task, *, batch_size: int = 64) -> pd.DataFrame:
    """The exact effects AtP* estimates: each node of `atp_star_nodes` (a head's q, k or v
    activation over all positions, an MLP's output) patched alone to its corrupted value; score
    = mean metric(patched) - mean metric(clean). Same rows as `atp_star_nodes`."""
    graph = build_graph(model, readout=task.readout)
    ports = [p for p in graph.ports if p.kind != "output"]
    sums = dict.fromkeys((p.name for p in ports), 0.0)
    for sub in task_batches(task, batch_size):
        clean_t = sub.clean_tokens.to(model.device)
        corrupted = node_values(model, sub.corrupted_tokens.to(model.device))
        base = sub.metric(sub.run(model, clean_t)).double().sum().item()
        for p in ports:
            if p.kind == "mlp":
                name, index = f"blocks.{p.layer}.mlp.hook_out", None
            else:
                name, index = f"blocks.{p.layer}.attn.hook_{p.kind}", p.index
            with model.intervene({name: _replace_slice(corrupted[name], index)}):
                value = sub.metric(sub.run(model, clean_t)).double().sum().item()
            sums[p.name] += value - base
    return _node_frame(model, task, {k: v / task.n_prompts for k, v in sums.items()})


__all__ = ["atp_star", "atp_star_nodes", "node_patching_reference"]
