"""Executors: where the shards of a long analysis run.

An analysis cuts its work into `Shard`s (a tuple of items: documents, prompts, (layer, head)
pairs, edge sets) and hands a *shard function* `fn(model, shard) -> pandas.DataFrame` to an
executor. The executor runs every shard once and reports each finished table back to the driver
through `on_result(shard, frame)`, in completion order; the caller merges in shard order.

- `InProcessExecutor` (the default, "inprocess") runs the shards one after another on the
  caller's already-loaded `Model`.
- `RayExecutor` ("ray", in `ray_executor.py`) runs them on Ray actors that each load the model
  once from a `ModelSpec`.

Caveats: a shard function must be a module-level function (Ray pickles it by reference, so the
workers must be able to import its module) and must be deterministic: reruns, retries after a
killed worker and resumed runs all rely on a shard giving the same table every time. Shard ids
are deterministic (index plus a digest of the run key and the items), so a resumed run finds its
finished shards again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd

    from workbench.model import Model

ShardFn = Callable[["Model", "Shard"], "pd.DataFrame"]
OnResult = Callable[["Shard", "pd.DataFrame"], None]

EXECUTOR_NAMES = ("inprocess", "ray")


@dataclass(frozen=True)
class Shard:
    """One unit of work: its position, a deterministic id and the items it covers."""

    index: int
    shard_id: str
    items: tuple[Any, ...]
    start: int = 0  # position of items[0] in the full list of items


@dataclass(frozen=True)
class ShardJob:
    """What to run on every shard: `fn(model, shard)`, the model as a worker loads it
    (`spec`), and the driver's loaded model (`model`, used by in-process executors only)."""

    fn: ShardFn
    spec: ModelSpec
    model: Model | None = None


@dataclass(frozen=True)
class ModelSpec:
    """How a worker loads its own copy of the model (`load_model(name, device=...)`)."""

    name: str
    device: str | None = None

    @classmethod
    def from_model(cls, model: Model) -> ModelSpec:
        """The spec that reloads `model`: its zoo name or hub id, or its folder's absolute path."""
        local = model.source == "local" and model.path
        return cls(name=model.path if local else model.name)

    def load(self, *, device: str | None = None) -> Model:
        """Load the named model (on `device`, else the spec's device)."""
        from workbench.loading import load_model

        return load_model(self.name, device=device or self.device)


def digest(value: Any) -> str:
    """A short, stable hex digest of any JSON-serialisable value (sorted keys)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def make_shards(items: Sequence[Any], *, size: int, key: Any) -> list[Shard]:
    """Cut `items` into consecutive shards of at most `size`; ids are
    `<index:05d>-<digest(key, items)>`, so the same key and items always give the same ids."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"shard size: expected a positive integer, got {size!r}")
    items = list(items)
    if not items:
        raise ValueError("items: nothing to shard (empty list)")
    shards = []
    for index, start in enumerate(range(0, len(items), size)):
        chunk = tuple(items[start : start + size])
        shard_id = f"{index:05d}-{digest([key, list(chunk)])[:12]}"
        shards.append(Shard(index=index, shard_id=shard_id, items=chunk, start=start))
    return shards


@runtime_checkable
class Executor(Protocol):
    """Runs shard functions; see the module docstring."""

    name: str

    def run(self, job: ShardJob, shards: Sequence[Shard], on_result: OnResult) -> None:
        """Run `job.fn` on every shard once, calling `on_result(shard, frame)` in the driver as
        each finishes; raise if a shard cannot be completed."""
        ...

    def close(self) -> None:
        """Release workers and connections the executor started."""
        ...


class InProcessExecutor:
    """Runs every shard in this process, in order, on the caller's loaded model."""

    name = "inprocess"

    def run(self, job: ShardJob, shards: Sequence[Shard], on_result: OnResult) -> None:
        """Run `job.fn` on each shard in turn, in this process, on the job's model."""
        model = job.model if job.model is not None else job.spec.load()
        for shard in shards:
            on_result(shard, job.fn(model, shard))

    def close(self) -> None:
        """Nothing to release (no workers)."""
        return None
