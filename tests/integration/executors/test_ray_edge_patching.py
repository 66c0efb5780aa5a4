"""Exhaustive per-edge patching sharded over a two-node Ray cluster (`ray_cluster` in
conftest.py): the merged scores equal the in-process run exactly, and every edge shard is
stored in the run store."""

from __future__ import annotations

import pytest
import torch

from circuits import exhaustive_patching
from workbench.store import RunStore
from workbench.tasks import make_task

pytestmark = pytest.mark.slow


def test_edge_sharded_exhaustive_patching_on_ray_equals_in_process(
    zoo_model, ray_cluster, tmp_path
):
    from workbench.executors import RayExecutor

    model = zoo_model("tiny-ioi")
    task = make_task("ioi", model, n=8, seed=3)
    expected = exhaustive_patching(model, task)  # in process, one shard
    store = RunStore(tmp_path)
    with RayExecutor(address=ray_cluster, max_retries=2) as ray_executor:
        got = exhaustive_patching(
            model, task, executor=ray_executor, edges_per_shard=28, store=store
        )
        assert len({w["node_id"] for w in ray_executor.workers()}) == 2  # both nodes worked
    assert got.edges == expected.edges
    assert torch.equal(got.scores, expected.scores)
    assert got.config["n_shards"] == 4
    run_id = got.config["run_id"]
    assert store.get_run(run_id).status == "complete"
    shards = store.load_shards(run_id)
    assert sorted(i for frame in shards.values() for i in frame["edge"]) == list(range(110))
