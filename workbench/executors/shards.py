"""Shard bookkeeping against the run store: run the shards an analysis still needs, keep each
finished table, and hand the tables back in shard order.

`run_sharded(fn, shards, model=..., executor=..., run=...)` is what an analysis calls. With a
`run` (a writer from `open_sharded_run`), shards already in the run (a resumed run) are read
back instead of recomputed, and every newly finished shard is written to the store as its own
Parquet file the moment it arrives, so an interrupted run loses at most the shards in flight.
Without a run the tables stay in memory. A shard reported twice (a retry racing a result)
is kept once.

Caveat: resumption matches runs by kind, model, config and shard ids, so the config must name
everything that changes the numbers (inputs digest, shard size, analysis parameters).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.executors.base import (
    Executor,
    ModelSpec,
    Shard,
    ShardFn,
    ShardJob,
)
from workbench.executors.resolve import resolve_executor

if TYPE_CHECKING:
    import pandas as pd

    from workbench.model import Model
    from workbench.store import RunStore, RunWriter


@dataclass(frozen=True)
class ShardedOutcome:
    """The shard tables in shard order, and how many were computed now vs reused."""

    frames: list[pd.DataFrame]
    computed: int
    reused: int


def as_store(store: RunStore | str | Path | None) -> RunStore | None:
    """A `RunStore` from a store, a folder, or None (no store)."""
    from workbench.store import RunStore

    if store is None or isinstance(store, RunStore):
        return store
    if isinstance(store, str | Path):
        return RunStore(store)
    raise ValueError(f"store: expected a RunStore or a folder, got {type(store).__name__}")


def open_sharded_run(
    store: RunStore, *, kind: str, model: str, config: dict[str, Any], shards: Sequence[Shard]
) -> RunWriter:
    """Start, or resume, the sharded run for these shards (a context manager: it commits on a
    clean exit, and is marked interrupted, ready to resume, on an exception)."""
    return store.begin_sharded_run(
        kind=kind, model=model, config=config, shard_ids=[s.shard_id for s in shards]
    )


def run_sharded(
    fn: ShardFn,
    shards: Sequence[Shard],
    *,
    model: Model,
    executor: str | Executor | None = "inprocess",
    address: str | None = None,
    run: RunWriter | None = None,
    progress: bool = False,
    desc: str = "shards",
    on_shard: Callable[[Shard], None] | None = None,
) -> ShardedOutcome:
    """Run `fn` on every shard not yet in `run` and return all tables in shard order.

    `on_shard(shard)` is called in this process after each new shard is stored.
    """
    from tqdm.auto import tqdm

    runner, owned = resolve_executor(executor, address=address)
    frames: dict[str, pd.DataFrame] = {}
    if run is not None:
        finished = run.finished_shards()
        frames = {s.shard_id: run.read_shard(s.shard_id) for s in shards if s.shard_id in finished}
    todo = [s for s in shards if s.shard_id not in frames]
    bar = tqdm(total=len(shards), initial=len(frames), desc=desc, disable=not progress)

    def keep(shard: Shard, frame: pd.DataFrame) -> None:
        if shard.shard_id in frames:  # reported twice: keep the first
            return
        if run is not None:
            run.write_shard(shard.shard_id, frame)
        frames[shard.shard_id] = frame
        bar.update(1)
        if on_shard is not None:
            on_shard(shard)

    try:
        if todo:
            runner.run(ShardJob(fn, ModelSpec.from_model(model), model), todo, keep)
    finally:
        bar.close()
        if owned:
            runner.close()
    missing = [s.shard_id for s in shards if s.shard_id not in frames]
    if missing:
        raise RuntimeError(f"executor {runner.name!r} left {len(missing)} shard(s) unfinished")
    return ShardedOutcome(
        frames=[frames[s.shard_id] for s in shards],
        computed=len(todo),
        reused=len(shards) - len(todo),
    )
