"""Executors for long analyses: in-process (default) or on Ray, with sharded, resumable runs.

Every long analysis accepts `executor=` ("inprocess", "ray", or an `Executor` instance) and
cuts its work into `Shard`s; `run_sharded` runs the shards still missing from a (possibly
resumed) sharded run in the store. See docs/scale-out.md. Ray itself is imported only when a
`RayExecutor` is created (`pip install 'attention-workbench[ray]'`).
"""

from __future__ import annotations

from workbench.executors.base import (
    EXECUTOR_NAMES,
    Executor,
    InProcessExecutor,
    ModelSpec,
    Shard,
    ShardJob,
    digest,
    make_shards,
)
from workbench.executors.ray_executor import RayExecutor
from workbench.executors.resolve import resolve_executor
from workbench.executors.shards import ShardedOutcome, as_store, open_sharded_run, run_sharded

__all__ = [
    "EXECUTOR_NAMES",
    "Executor",
    "InProcessExecutor",
    "ModelSpec",
    "RayExecutor",
    "Shard",
    "ShardJob",
    "ShardedOutcome",
    "as_store",
    "digest",
    "make_shards",
    "open_sharded_run",
    "resolve_executor",
    "run_sharded",
]
