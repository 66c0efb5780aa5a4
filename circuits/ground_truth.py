"""Exhaustive per-edge patching: the reference every other method is scored against.

`exhaustive_patching(model, task)` patches every edge of the graph alone (one forward pass per
edge and minibatch) and records the exact metric change; it is `path_patching` over all edges.
`reference_circuit(exhaustive, share=...)` turns it into a binary reference: the edges whose
exact effect is at least `share` of the task's clean->corrupted gap.

Caveat: exact for single-edge effects only; interactions between edges (ACDC's concern) are
not in it. Cost grows with the number of edges (110 on tiny-ioi, 222 on tiny-induction; a
parallel-block model has n_layers * n_heads fewer than its sequential twin, e.g. 102 against 110
for a 2-layer, 4-head GPT-NeoX); shard the edges over Ray (`executor="ray"`,
`edges_per_shard=`) to spread it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from circuits.circuit import Circuit
from circuits.patching import path_patching

if TYPE_CHECKING:
    from pathlib import Path

    from workbench.executors import Executor
    from workbench.model import Model
    from workbench.store import RunStore
    from workbench.tasks import Task


def exhaustive_patching(
    model: Model,
    task: Task,
    *,
    batch_size: int = 64,
    progress: bool = False,
    seed: int = 0,
    executor: str | Executor | None = "inprocess",
    address: str | None = None,
    edges_per_shard: int | None = None,
    store: RunStore | str | Path | None = None,
) -> Circuit:
    """Exact single-edge patching effect of every edge (method "exhaustive").

    `executor` / `address` / `edges_per_shard` / `store`: shard the edges over an executor
    (in process by default, or Ray) and optionally store the sharded run; see `path_patching`.
    The scores are the same for every sharding and executor.
    """
    return path_patching(
        model,
        task,
        batch_size=batch_size,
        progress=progress,
        seed=seed,
        method="exhaustive",
        executor=executor,
        address=address,
        edges_per_shard=edges_per_shard,
        store=store,
    )


def reference_circuit(exhaustive: Circuit, *, gap: float, share: float = 0.01) -> Circuit:
    """Edges whose exact effect magnitude is at least `share * |gap|` (gap: clean - corrupted)."""
    if not 0 < share < 1:
        raise ValueError(f"share: need 0 < share < 1, got {share}")
    keep = exhaustive.scores.abs() >= share * abs(gap)
    config = {**exhaustive.config, "reference_share": share, "gap": gap}
    return dataclasses.replace(exhaustive, included=keep, config=config)
