"""Corpus statistics on a two-node Ray cluster that the test starts itself (`ray_cluster` in
conftest.py): results equal the in-process run exactly, also when a worker is killed with
SIGKILL mid-sweep."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from pandas.testing import assert_frame_equal

from analysis.corpus_stats import corpus_stats
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
    got = corpus_stats(zoo_model("tiny-ioi"), TEXTS, docs_per_shard=4, executor=executor,
                       store=store)  # fmt: skip
    _assert_same(got, in_process)
    workers = executor.workers()
    assert len({w["node_id"] for w in workers}) == 2  # one actor on each node
    assert len(store.load_shards(got.run_id)) == 12


def test_a_worker_killed_mid_sweep_changes_nothing(zoo_model, executor, in_process):
    from analysis.corpus_stats import aggregate, document_stats
    from workbench.executors import make_shards, run_sharded

    model = zoo_model("tiny-ioi")
    shards = make_shards(TEXTS, size=4, key="kill-test")
    victim = executor.workers()[0]["pid"]
    killed_after: list[int] = []

    def kill_once(shard) -> None:
        if not killed_after:  # shards remain, and the victim already holds its next one
            killed_after.append(shard.index)
            os.kill(victim, signal.SIGKILL)

    got = run_sharded(document_stats, shards, model=model, executor=executor, on_shard=kill_once)
    assert killed_after and victim not in {w["pid"] for w in executor.workers()}  # restarted
    expected = run_sharded(document_stats, shards, model=model)  # in process
    assert got.computed == len(got.frames) == len(shards) == 12
    for shard, frame, reference in zip(shards, got.frames, expected.frames, strict=True):
        assert sorted(frame["document"].unique()) == list(range(shard.start, shard.start + 4))
        assert_frame_equal(frame, reference, check_exact=True)
    per_head, hist = aggregate(got.frames, (0.05, 0.25, 0.5, 0.75, 0.95))
    assert_frame_equal(per_head, in_process.per_head, check_exact=True)
    assert torch.equal(hist, in_process.distance_hist)
