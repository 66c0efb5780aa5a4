"""Edge attribution patching (EAP) and EAP with integrated gradients (EAP-IG).

EAP (Syed et al. 2023) estimates every edge's patching effect with one gradient:
`score(u -> p) = (out_u(patched) - out_u(base)) . dM/d input_p`, taken on the base run. Here the
gradient is read off edge weights: `EdgePatcher` rebuilds each port's input as
`resid - sum_e w_e * delta_u` and `dM/dw_e` at `w = 0` is exactly `-delta_u . dM/d input_p`.
One forward and one backward per minibatch score all edges.

EAP-IG (Hanna et al. 2024) averages that gradient over `ig_steps` points on the straight line
from the corrupted to the clean input embeddings (`alpha = k / ig_steps`, k = 1..ig_steps),
keeping `delta_u = out_u(clean) - out_u(corrupted)` fixed. With `ig_steps=1` the only point is
the clean input, so EAP-IG(1) is EAP. TransformerLens 4.3's `attribution_patch` raises
`NotImplementedError` for `ig_steps > 1`.

ig_path="edges" integrates along the edge weights instead: every edge patched by the same
fraction `alpha` (midpoints `(k - 0.5) / ig_steps`), each port seeing
`(1 - alpha) * actual + alpha * corrupted` upstream outputs, and scores
`integral dM/dw_e dalpha`. Its scores sum to `M(corrupted) - M(clean)` as the steps grow
(completeness), and it sees saturated attention that the input path misses (measured on
tiny-induction; see benchmarks/circuits.py).

direction: "noising" (default) takes gradients on the clean run and scores the effect of
patching an edge to its corrupted value (the sign convention of every `Circuit`);
"denoising" takes them on the corrupted run towards clean - TransformerLens'
`attribution_patch` convention, used for the parity test.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from circuits.circuit import Circuit
from circuits.edge_patching import EdgePatcher
from circuits.graph import build_graph
from circuits.pass_counter import PassCounter
from circuits.task_batches import task_batches

if TYPE_CHECKING:
    from workbench.model import Model
    from workbench.tasks import Task

DIRECTIONS = ("noising", "denoising")
IG_PATHS = ("inputs", "edges")


def edge_attribution(
    model: Model,
    task: Task,
    *,
    ig_steps: int = 5,
    ig_path: str = "inputs",
    direction: str = "noising",
    batch_size: int = 32,
    progress: bool = False,
    seed: int = 0,
) -> Circuit:
    """EAP-IG edge scores (`ig_steps=1`: plain EAP) averaged over the task's prompts."""
    if ig_path not in IG_PATHS:
        raise ValueError(f"ig_path: unknown path {ig_path!r}; choose from {IG_PATHS}")
    if not isinstance(ig_steps, int) or ig_steps < 1:
        raise ValueError(f"ig_steps: need an integer >= 1, got {ig_steps!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction: unknown direction {direction!r}; choose from {DIRECTIONS}")
    torch.manual_seed(seed)
    start, counter = time.perf_counter(), PassCounter()
    graph = build_graph(model, readout=task.readout)
    patcher = EdgePatcher(model, graph)
    total = torch.zeros(graph.n_edges, dtype=torch.float64)
    bar = tqdm(
        total=task.n_prompts * ig_steps,
        disable=not progress,
        desc="EAP" if ig_steps == 1 else f"EAP-IG ({ig_steps} steps)",
    )
    for sub in task_batches(task, batch_size):
        clean_tokens = sub.clean_tokens.to(model.device)
        corrupted_tokens = sub.corrupted_tokens.to(model.device)
        clean = patcher.writer_outputs(clean_tokens)  # [writer, batch, pos, d_model]
        corrupted = patcher.writer_outputs(corrupted_tokens)
        counter.forward += 2
        if direction == "noising":  # base run clean, patch towards corrupted
            base_tokens, base, other = clean_tokens, clean, corrupted
        else:  # base run corrupted, patch towards clean
            base_tokens, base, other = corrupted_tokens, corrupted, clean
        for k in range(1, ig_steps + 1):
            if ig_path == "inputs":
                alpha = k / ig_steps  # the last point is exactly the base run's input
                point = base[0] if k == ig_steps else other[0] + alpha * (base[0] - other[0])
                weights = torch.zeros(graph.n_edges, requires_grad=True)
                logits = patcher.forward(
                    base_tokens,
                    weights,
                    None,
                    deltas=base - other,
                    force=True,
                    input_override=point,
                )
            else:  # every edge patched by the same fraction (midpoint rule)
                weights = torch.full((graph.n_edges,), (k - 0.5) / ig_steps, requires_grad=True)
                logits = patcher.forward(base_tokens, weights, other, force=True)
            metric = sub.metric(logits).sum()
            (grad,) = torch.autograd.grad(metric, weights)
            total += grad.double()
            counter.forward += 1
            counter.backward += 1
            bar.update(sub.n_prompts)
    bar.close()
    return Circuit.from_scores(
        graph,
        task=task.name,
        method="eap" if ig_steps == 1 and ig_path == "inputs" else "eap-ig",
        scores=total / (task.n_prompts * ig_steps),
        config={
            "ig_steps": ig_steps,
            "ig_path": ig_path,
            "direction": direction,
            "batch_size": batch_size,
            "seed": seed,
            "runtime_s": time.perf_counter() - start,
            **counter.as_dict(),
        },
    )


def eap(model: Model, task: Task, **options) -> Circuit:
    """Edge attribution patching: `eap_ig` with one step (the clean point only)."""
    if "ig_steps" in options:
        raise ValueError("options: ig_steps is not an option of eap (use eap_ig)")
    return edge_attribution(model, task, ig_steps=1, **options)


eap.__wrapped__ = edge_attribution  # inspect.signature(eap) lists the accepted options
eap_ig = edge_attribution
