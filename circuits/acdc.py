"""ACDC-style greedy edge pruning (Conmy et al. 2023).

Start from the full model. Visit the ports from the readout back towards the input (reverse
topological order) and, for each edge into a port, try patching it to its corrupted value on
top of everything already removed. If the distance to the clean model grows by less than
`threshold`, the edge stays removed; otherwise it is restored. One forward pass per edge.

distance: "kl" - mean KL divergence of the clean model's next-token distribution from the
pruned model's, at the positions the task's metric reads (answer positions for IOI, the
second copy for induction, every position otherwise); "metric" - |mean metric(pruned) - mean
metric(clean)|. The edge's score is minus the growth in distance measured when it was tried:
a kept edge's |score| is that growth (>= threshold); a removed edge's is its growth clipped to
[0, threshold), so every kept edge ranks above every removed one (with threshold 0, kept edges
whose growth was exactly 0 tie with the removed ones). Growth is measured against a changing
baseline (everything removed so far), so it is not a single-edge effect. For an ROC, sweep the
threshold (`circuits.acdc_sweep.acdc_tau_sweep`) rather than ranking one run's scores.
Cost: 2 + one forward pass per edge (all prompts in one batch) per run.

Caveats: greedy and order-dependent like ACDC; one minibatch holds all prompts (the
intervention on each edge is evaluated on the whole task); encoder tasks (hidden-state
readout) need distance="metric".
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from circuits.circuit import Circuit
from circuits.edge_patching import EdgePatcher
from circuits.graph import build_graph
from circuits.pass_counter import PassCounter

if TYPE_CHECKING:
    from workbench.model import Model
    from workbench.tasks import Task

DISTANCES = ("kl", "metric")


def _read_positions(task: Task, logits: torch.Tensor) -> torch.Tensor:
    """`[batch, n, d_vocab]` logits at the positions the task's metric reads."""
    if hasattr(task, "answer_pos"):
        rows = torch.arange(logits.shape[0])
        return logits[rows, task.answer_pos][:, None]  # [batch, 1, d_vocab]
    if hasattr(task, "positions"):
        return logits[:, task.positions()]  # [batch, n, d_vocab]
    return logits


def _distance(task: Task, kind: str, clean_output: torch.Tensor):
    clean_metric = task.metric(clean_output).double().mean().item()
    if kind == "kl":
        clean_logprobs = _read_positions(task, clean_output).double().log_softmax(-1)

    def distance(logits: torch.Tensor) -> float:
        if kind == "metric":
            return abs(task.metric(logits).double().mean().item() - clean_metric)
        logprobs = _read_positions(task, logits).double().log_softmax(-1)
        kl = (clean_logprobs.exp() * (clean_logprobs - logprobs)).sum(-1)  # [batch, n]
        return kl.mean().item()

    return distance


@torch.no_grad()
def acdc(
    model: Model,
    task: Task,
    *,
    threshold: float = 0.01,
    distance: str = "kl",
    progress: bool = False,
    seed: int = 0,
) -> Circuit:
    """Greedy ACDC pruning; returns the kept edges as the circuit (see module docstring)."""
    if distance not in DISTANCES:
        raise ValueError(f"distance: unknown distance {distance!r}; choose from {DISTANCES}")
    if threshold < 0:
        raise ValueError(f"threshold: must be >= 0, got {threshold}")
    if distance == "kl" and task.readout is not None:
        raise ValueError(
            f"distance: 'kl' needs logits; task {task.name} reads {task.readout}, use 'metric'"
        )
    torch.manual_seed(seed)
    start, counter = time.perf_counter(), PassCounter()
    graph = build_graph(model, readout=task.readout)
    patcher = EdgePatcher(model, graph)
    clean = task.clean_tokens.to(model.device)
    source = patcher.writer_outputs(task.corrupted_tokens.to(model.device))
    clean_logits = task.run(model, clean)  # logits, or the readout for encoder tasks
    counter.forward += 2
    measure = _distance(task, distance, clean_logits)
    removed = torch.zeros(graph.n_edges)
    scores = torch.zeros(graph.n_edges, dtype=torch.float64)
    current = 0.0
    port_rank = {p.name: i for i, p in enumerate(graph.ports)}
    order = sorted(range(graph.n_edges), key=lambda e: -port_rank[graph.edges[e][1]])
    for e in tqdm(order, disable=not progress, desc="ACDC"):
        removed[e] = 1.0
        trial = measure(patcher.forward(clean, removed, source))
        counter.forward += 1
        growth = trial - current
        if growth < threshold:  # removed: |score| = growth clipped to [0, threshold)
            scores[e] = -min(max(growth, 0.0), math.nextafter(threshold, 0.0))
            current = trial
        else:  # kept: |score| = growth >= threshold
            scores[e] = -growth
            removed[e] = 0.0
    circuit = Circuit.from_scores(
        graph,
        task=task.name,
        method="acdc",
        scores=scores,
        config={
            "threshold": threshold,
            "distance": distance,
            "final_distance": current,
            "seed": seed,
            "runtime_s": time.perf_counter() - start,
            **counter.as_dict(),
        },
    )
    return dataclasses.replace(circuit, included=removed == 0)
