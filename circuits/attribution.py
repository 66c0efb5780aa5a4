"""Edge attribution patching (EAP) and EAP with integrated gradients (EAP-IG).

EAP (Syed et al. 2023) estimates every edge's patching effect with one gradient:
`score(u -> p) = (out_u(patched) - out_u(base)) . dM/d input_p`, taken on the base run. That is
`dM/dw_e` for an edge weight entering the port's input as `resid - w_e * delta_u`; it is formed
per port as the backward pass reaches it (`circuits.port_gradients`: one gradient per port, one
matmul against its upstream writers' differences, then freed), so memory grows with writers x
positions x d_model per minibatch, not with edges. One forward and one backward per minibatch
score all edges; `circuits.attribution_reference` keeps the equivalent weight-gradient form.

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
from circuits.port_gradients import port_scores
from circuits.task_batches import task_batches

if TYPE_CHECKING:
    from workbench.model import Model
    from workbench.tasks import Task

DIRECTIONS = ("noising", "denoising")
IG_PATHS = ("inputs", "edges")
BATCH_BYTES = 64 * 2**20  # default minibatch: writer differences of at most 64 MB


def edge_attribution(
    model: Model,
    task: Task,
    *,
    ig_steps: int = 5,
    ig_path: str = "inputs",
    direction: str = "noising",
    batch_size: int | None = None,
    progress: bool = False,
    seed: int = 0,
) -> Circuit:
    """EAP-IG edge scores (`ig_steps=1`: plain EAP) averaged over the task's prompts.

    batch_size: prompts per minibatch; None (default) sizes it so one minibatch's writer
    differences `[writer, batch, pos, d_model]` take at most `BATCH_BYTES` (at most 32
    prompts): GPT-2 small at 41 positions gets 3 prompts, the zoo's 2-layer models 32."""
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
    if batch_size is None:
        per_prompt = len(graph.writers) * task.clean_tokens.shape[1] * model.d_model * 4
        batch_size = max(1, min(32, BATCH_BYTES // per_prompt))
    total = torch.zeros(graph.n_edges, dtype=torch.float64)
    bar = tqdm(
        total=task.n_prompts * ig_steps,
        disable=not progress,
        desc="EAP" if ig_steps == 1 else f"EAP-IG ({ig_steps} steps)",
    )
    for sub in task_batches(task, batch_size):
        clean_tokens = sub.clean_tokens.to(model.device)
        corrupted_tokens = sub.corrupted_tokens.to(model.device)
        if direction == "noising":  # base run clean, patch towards corrupted
            base_tokens, other_tokens = clean_tokens, corrupted_tokens
        else:  # base run corrupted, patch towards clean
            base_tokens, other_tokens = corrupted_tokens, clean_tokens
        other = patcher.writer_outputs(other_tokens)  # [writer, batch, pos, d_model]
        if ig_path == "inputs":
            deltas = patcher.writer_outputs(base_tokens)  # [writer, batch, pos, d_model]
            base_input = deltas[0].clone()  # [batch, pos, d_model]
            deltas -= other
            other_input = other[0]  # [batch, pos, d_model]
            del other  # only the differences and the two inputs are needed
        counter.forward += 2
        for k in range(1, ig_steps + 1):
            if ig_path == "inputs":
                alpha = k / ig_steps  # the last point is exactly the base run's input
                point = (
                    base_input
                    if k == ig_steps
                    else other_input + alpha * (base_input - other_input)
                )
                scores = port_scores(
                    patcher, base_tokens, sub.metric, deltas=deltas, input_override=point
                )
            else:  # every edge patched by the same fraction (midpoint rule)
                alpha = (k - 0.5) / ig_steps
                scores = port_scores(patcher, base_tokens, sub.metric, source=other, alpha=alpha)
            total += scores
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
