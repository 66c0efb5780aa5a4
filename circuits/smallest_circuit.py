"""`smallest_faithful_circuit`: the smallest connected prune of a circuit reaching a target.

Searches `top_n` for `circuit.prune(top_n=...)` (connected: edges on input -> output paths,
`circuits.connected`) whose faithfulness (`circuits.evaluation`: everything outside the
circuit patched to corrupted, share of the clean->corrupted gap recovered) reaches `target`:
doubling 1, 2, 4, ... until one reaches it, then bisection between the last miss and the first
hit. Each evaluation is one patched pass over the task (2 forward passes per minibatch: the
corrupted writers' outputs and the patched run); identical pruned sets are evaluated once.

Caveats: bisection assumes faithfulness grows with size, which is typical but not guaranteed
(a larger prune can add an edge that hurts), so the answer is the smallest size *found*, with
every evaluated size listed in `evaluations`; a tiny clean-corrupted gap makes the ratio
unstable.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from circuits.evaluation import check_circuit, patched_metric

if TYPE_CHECKING:
    from circuits.circuit import Circuit
    from workbench.model import Model
    from workbench.tasks import Task


@torch.no_grad()
def smallest_faithful_circuit(
    model: Model,
    task: Task,
    circuit: Circuit,
    *,
    target: float = 0.8,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Smallest connected `circuit.prune(top_n=...)` with faithfulness >= `target`.

    Returns a JSON-ready dict: target, reached (False when even the whole graph falls short),
    top_n (pass it to `circuit.prune` to get the circuit), n_edges, edge_share, faithfulness,
    edges (the kept labels), evaluations (top_n, n_edges, faithfulness of every size tried),
    n_evaluations and n_forward (forward passes, the clean/corrupted baseline included).
    """
    if isinstance(target, bool) or not isinstance(target, int | float):
        raise ValueError(f"target: need a number in (0, 1], got {target!r}")
    if not (math.isfinite(target) and 0 < target <= 1):
        raise ValueError(f"target: need a number in (0, 1], got {target}")
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    check_circuit(model, circuit)
    summary = task.summary(model)
    clean, corrupted = summary["clean"], summary["corrupted"]
    passes_per_eval = 2 * math.ceil(task.n_prompts / batch_size)
    n = len(circuit.edges)
    seen: dict[bytes, float] = {}  # pruned set -> faithfulness
    evaluations: list[dict[str, Any]] = []

    def evaluate(top_n: int) -> tuple[Circuit, float]:
        pruned = circuit.prune(top_n=top_n)
        key = bytes(pruned.included.numpy())
        if key not in seen:
            value = patched_metric(model, task, ~pruned.included, batch_size=batch_size)
            seen[key] = (value - corrupted) / (clean - corrupted)
        evaluations.append({"top_n": top_n, "n_edges": pruned.n_edges, "faithfulness": seen[key]})
        return pruned, seen[key]

    miss, hit, k = 0, None, 1
    while n:
        pruned, value = evaluate(min(k, n))
        if value >= target:
            hit = (min(k, n), pruned, value)
            break
        miss = min(k, n)
        if k >= n:
            break
        k *= 2
    while hit is not None and hit[0] - miss > 1:
        mid = (miss + hit[0]) // 2
        pruned, value = evaluate(mid)
        if value >= target:
            hit = (mid, pruned, value)
        else:
            miss = mid
    if hit is None:  # not reached: report the largest size tried
        best = max(evaluations, key=lambda row: row["top_n"], default=None)
        top_n = best["top_n"] if best else 0
        hit = (top_n, circuit.prune(top_n=top_n), best["faithfulness"] if best else 0.0)
    top_n, pruned, value = hit
    return {
        "target": float(target),
        "reached": bool(value >= target),
        "top_n": top_n,
        "n_edges": pruned.n_edges,
        "edge_share": pruned.n_edges / n if n else 0.0,
        "faithfulness": float(value),
        "edges": pruned.kept_edges,
        "evaluations": evaluations,
        "n_evaluations": len(seen),
        "n_forward": 2 + passes_per_eval * len(seen),
    }


__all__ = ["smallest_faithful_circuit"]
