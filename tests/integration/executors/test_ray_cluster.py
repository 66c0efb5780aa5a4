"""Corpus statistics on a two-node Ray cluster that the test starts itself (`ray_cluster` in
conftest.py): results equal the in-process run exactly, also when a worker is killed with
SIGKILL mid-shard, and that shard really is run again (the shard function leaves a file per
attempt)."""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
from pandas.testing import assert_frame_equal

from analysis.statistics.corpus_stats import corpus_stats, document_stats
from workbench.store import RunStore
from workbench.tasks.ioi_prompts import generate_ioi_prompts

pytestmark = pytest.mark.slow

TEXTS = [p.text for p in generate_ioi_prompts(48, seed=11)]


@pytest.fixture(scope="module")
def in_process(zoo_model):
    return corpus_stats(zoo_model("tiny-ioi"), TEXTS, docs_per_shard=4)


@pytest.fixture(scope="module")
def executor(ray_cluster):
    from workbench.executors import RayExecutor

    with RayExecutor(address=ray_cluster, max_retries=2) as ray_executor:
        yield ray_executor


def _assert_same(got, expected) -> None:
    assert_frame_equal(got.per_head, expected.per_head, check_exact=True)
    assert torch.equal(got.distance_hist, expected.distance_hist)


def test_two_node_sweep_equals_the_in_process_run(zoo_model, executor, in_process, tmp_path):
    store = RunStore(tmp_path)
    got = corpus_stats(
        zoo_model("tiny-ioi"), TEXTS, docs_per_shard=4, executor=executor, store=store
    )
    _assert_same(got, in_process)
    workers = executor.workers()
    assert len({w["node_id"] for w in workers}) == 2  # one actor on each node
    assert len(store.load_shards(got.run_id)) == 12


def recorded_document_stats(model, shard, *, log_dir):
    """`document_stats`, leaving `<shard_id>.<pid>.start` before and `.end` after (one pair per
    attempt, by the worker that made it). While `hold.<pid>` exists, the worker waits after
    `.start`, with a `.held` marker: the test kills it there, surely mid-shard."""
    stem = Path(log_dir) / f"{shard.shard_id}.{os.getpid()}"
    hold = Path(log_dir) / f"hold.{os.getpid()}"
    Path(f"{stem}.start").touch()
    if hold.exists():
        Path(f"{stem}.held").touch()
        for _ in range(12000):  # at most two minutes, should the test never kill it
            if not hold.exists():
                break
            time.sleep(0.01)
    frame = document_stats(model, shard)
    Path(f"{stem}.end").touch()
    return frame


def _attempts(log_dir: Path) -> dict[str, list[tuple[int, bool]]]:
    """shard id -> [(pid, finished)] for every attempt the workers started."""
    attempts: dict[str, list[tuple[int, bool]]] = {}
    for start in log_dir.glob("*.start"):
        shard_id, pid = start.name.removesuffix(".start").rsplit(".", 1)
        finished = start.with_suffix(".end").exists()
        attempts.setdefault(shard_id, []).append((int(pid), finished))
    return attempts


def test_a_worker_killed_mid_shard_is_retried_and_changes_nothing(
    zoo_model, executor, in_process, tmp_path
):
    import ray.cloudpickle

    from analysis.statistics.corpus_stats import aggregate
    from workbench.executors import make_shards, run_sharded

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers lack tests/
    model = zoo_model("tiny-ioi")
    shards = make_shards(TEXTS, size=4, key="kill-test")
    shard_fn = functools.partial(recorded_document_stats, log_dir=str(tmp_path))
    victim = executor.workers()[0]["pid"]
    hold = tmp_path / f"hold.{victim}"
    hold.touch()  # the victim waits inside its first shard until it is killed
    killed: list[str] = []

    def kill_once(_shard) -> None:  # after the other worker's first shard
        for _ in range(12000 if not killed else 0):
            held = list(tmp_path.glob(f"*.{victim}.held"))
            if held:
                os.kill(victim, signal.SIGKILL)
                killed.append(held[0].name.split(".")[0])
                break
            time.sleep(0.01)
        hold.unlink(missing_ok=True)

    got = run_sharded(shard_fn, shards, model=model, executor=executor, on_shard=kill_once)
    assert killed and victim not in {w["pid"] for w in executor.workers()}  # restarted
    attempts = _attempts(tmp_path)
    (interrupted,) = killed
    tries = attempts[interrupted]
    assert len(tries) == 2 and (victim, False) in tries  # the killed try never finished ...
    assert any(done for pid, done in tries if pid != victim)  # ... the restarted actor's did
    assert [len(attempts[s.shard_id]) for s in shards].count(1) == len(shards) - 1
    expected = run_sharded(document_stats, shards, model=model)  # in process
    assert got.computed == len(got.frames) == len(shards) == 12
    for shard, frame, reference in zip(shards, got.frames, expected.frames, strict=True):
        assert sorted(frame["document"].unique()) == list(range(shard.start, shard.start + 4))
        assert_frame_equal(frame, reference, check_exact=True)
    per_head, hist = aggregate(got.frames, (0.05, 0.25, 0.5, 0.75, 0.95))
    assert_frame_equal(per_head, in_process.per_head, check_exact=True)
    assert torch.equal(hist, in_process.distance_hist)
