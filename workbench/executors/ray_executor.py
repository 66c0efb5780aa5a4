"""`RayExecutor`: run shards on Ray, embedded on this machine or on an existing cluster.

One long-lived actor per worker loads the model once (`ModelSpec.load`) and then runs shard
after shard; the driver keeps every actor busy with one shard at a time and reports each finished
table through `on_result` as it arrives. Actors ask for one CPU each, and for one GPU each where
the cluster has GPUs (the model then loads on "cuda"). Actors are spread over the nodes.

Connecting: `address` (or `RAY_ADDRESS`) joins a running cluster (`ray start --head ...`);
without one, `ray.init()` starts a private Ray on this machine whose processes all listen on
127.0.0.1 only (no dashboard; see `ray_local.py`), which `close()` shuts down again.
`RAY_USAGE_STATS_ENABLED=0` is set unless the caller set it. Ray's own log lines stay off
stdout while connected: worker output is not forwarded (`log_to_driver=False`) and the errors
Ray prints in the driver (e.g. a worker died) go to stderr (`StdoutGuard`).

Failures: an actor killed mid-shard is restarted by Ray (`max_restarts`) and its shard retried
(`max_task_retries`); if Ray's own retries run out the driver replaces the actor and resubmits
the shard, up to `max_retries` times per shard. A shard's table is reported only once it is
complete, so nothing is lost or counted twice. Errors raised by the shard function itself are
not retried: they propagate as they are.

Caveats: shard functions and their module must be importable on every node (install the
package there); workers read `HF_HUB_OFFLINE` / `TRANSFORMERS_OFFLINE` / `HF_HOME` from the
driver. Ray is optional: without it, creating the executor raises one `ValueError`.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

from workbench.executors.base import ModelSpec, OnResult, Shard, ShardFn, ShardJob
from workbench.executors.ray_local import StdoutGuard, join_ray, start_private_ray

_FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "OMP_NUM_THREADS")


def import_ray() -> Any:
    """The `ray` module, or one clear `ValueError` when Ray is not installed."""
    try:
        import ray
    except ImportError as err:
        raise ValueError(
            "executor: 'ray' needs Ray, which is not installed here; install the extra with "
            "`pip install 'attention-workbench[ray]'` or use executor='inprocess'"
        ) from err
    return ray


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _ModelWorker:
    """The Ray actor body: holds one loaded model and runs shard functions on it."""

    def __init__(self, spec: ModelSpec, env: dict[str, str], device: str | None) -> None:
        os.environ.update(env)
        self.model = spec.load(device=device)

    def describe(self) -> dict[str, Any]:
        import ray

        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}

    def run(self, fn: ShardFn, shard: Shard) -> Any:
        return fn(self.model, shard)


class RayExecutor:
    """Runs shards on Ray actors (see the module docstring).

    Args:
        address: a cluster address ("127.0.0.1:6379", "ray://..."); default `RAY_ADDRESS`,
            else a private Ray started on this machine.
        num_workers: actors to start (default: one per CPU, or per GPU where there are GPUs,
            at most one per shard).
        max_retries: restarts per actor, task retries per shard, and resubmissions per shard.
    """

    name = "ray"

    def __init__(
        self, *, address: str | None = None, num_workers: int | None = None, max_retries: int = 3
    ) -> None:
        if num_workers is not None and (not _is_int(num_workers) or num_workers < 1):
            raise ValueError(f"num_workers: expected a positive integer, got {num_workers!r}")
        if not _is_int(max_retries) or max_retries < 0:
            raise ValueError(f"max_retries: expected a non-negative integer, got {max_retries!r}")
        self._ray = import_ray()
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.num_workers, self.max_retries = num_workers, max_retries
        self._owns_ray = False
        self._actors: list[Any] = []
        self._spec: ModelSpec | None = None

    # ------------------------------------------------------------------ connection and actors
    def _connect(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        StdoutGuard.install()  # before `ray.init`: Ray's error thread starts there
        try:
            if self.address:
                join_ray(ray, self.address)
            else:
                start_private_ray(ray)
        except BaseException:
            StdoutGuard.uninstall()
            raise
        self._owns_ray = True  # a connection this executor opened: `close()` ends it

    def _gpus_per_worker(self) -> int:
        return 1 if self._ray.cluster_resources().get("GPU", 0) >= 1 else 0

    def _new_actor(self, spec: ModelSpec) -> Any:
        gpus = self._gpus_per_worker()
        env = {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ}
        cls = self._ray.remote(_ModelWorker).options(
            num_cpus=1,
            num_gpus=gpus,
            max_restarts=self.max_retries,
            max_task_retries=self.max_retries,
            scheduling_strategy="SPREAD",
        )
        return cls.remote(spec, env, "cuda" if gpus else spec.device)

    def _ensure_actors(self, spec: ModelSpec, n_shards: int) -> None:
        if self._spec != spec:
            self._kill_actors()
            self._spec = spec
        resources = self._ray.cluster_resources()
        slots = resources.get("GPU", 0) if self._gpus_per_worker() else resources.get("CPU", 1)
        wanted = min(self.num_workers or max(1, int(slots)), n_shards)
        while len(self._actors) < wanted:
            self._actors.append(self._new_actor(spec))

    def _kill_actors(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor, no_restart=True)
        self._actors = []

    def workers(self) -> list[dict[str, Any]]:
        """`{"pid", "node_id"}` of each live actor (starts nothing)."""
        return self._ray.get([actor.describe.remote() for actor in self._actors])

    # ------------------------------------------------------------------ running
    def run(self, job: ShardJob, shards: Sequence[Shard], on_result: OnResult) -> None:
        """Run every shard on the actors, one in flight per actor, reporting each as it ends."""
        if not shards:  # the workers load their own model from `job.spec`
            return
        ray = self._ray
        self._connect()
        self._ensure_actors(job.spec, len(shards))
        queue, idle = deque(shards), deque(range(len(self._actors)))
        pending: dict[Any, tuple[int, Shard]] = {}
        failures: Counter[str] = Counter()
        while queue or pending:
            while queue and idle:
                slot, shard = idle.popleft(), queue.popleft()
                pending[self._actors[slot].run.remote(job.fn, shard)] = (slot, shard)
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            slot, shard = pending.pop(ref)
            try:
                frame = ray.get(ref)
            except ray.exceptions.RayActorError as err:  # the worker died beyond Ray's retries
                failures[shard.shard_id] += 1
                if failures[shard.shard_id] > self.max_retries:
                    raise RuntimeError(
                        f"shard {shard.shard_id}: worker died {failures[shard.shard_id]} times"
                    ) from err
                self._ray.kill(self._actors[slot], no_restart=True)
                self._actors[slot] = self._new_actor(job.spec)
                queue.appendleft(shard)
                idle.append(slot)
                continue
            idle.append(slot)
            if queue:  # keep the worker busy before the driver handles the result
                next_shard = queue.popleft()
                next_slot = idle.popleft()
                ref = self._actors[next_slot].run.remote(job.fn, next_shard)
                pending[ref] = (next_slot, next_shard)
            on_result(shard, frame)

    def close(self) -> None:
        """Stop the actors; disconnect (and stop a private Ray) if this executor connected."""
        if self._ray.is_initialized():
            self._kill_actors()
            if self._owns_ray:
                self._ray.shutdown()
        if self._owns_ray:
            StdoutGuard.uninstall()
        self._actors, self._owns_ray, self._spec = [], False, None

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
