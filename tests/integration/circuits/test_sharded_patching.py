"""Per-edge patching cut into edge shards (`executor=`, `edges_per_shard=`): identical scores to
the unsharded in-process run, resumable sharded runs in the store, and the CLI flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from circuits import build_graph, exhaustive_patching, path_patching, trace
from workbench.executors import InProcessExecutor
from workbench.store import RunStore
from workbench.tasks import make_task


def test_edge_shards_give_the_unsharded_scores_exactly(zoo_model):
    model = zoo_model("tiny-ioi")
    task = make_task("ioi", model, n=4, seed=8)
    plain = exhaustive_patching(model, task, batch_size=3)  # executor="inprocess", one shard
    sharded = exhaustive_patching(
        model, task, batch_size=3, executor=InProcessExecutor(), edges_per_shard=23
    )
    assert torch.equal(sharded.scores, plain.scores) and sharded.edges == plain.edges
    assert (plain.config["n_shards"], sharded.config["n_shards"]) == (1, 5)
    assert sharded.config["n_forward"] == plain.config["n_forward"] + 2 * 2 * 4  # 2 batches
    assert plain.scores.abs().max() > 0.1  # real effects, not an all-zero table


def test_trace_passes_the_executor_and_a_subset_keeps_its_edges(ioi):
    model, task = ioi
    labels = list(build_graph(model, readout=task.readout).edge_labels)
    chosen = labels[3:40:4]
    full = trace(model, task, method="exhaustive", executor="inprocess", edges_per_shard=60)
    part = trace(
        model, task, method="path", edges=chosen, executor=InProcessExecutor(), edges_per_shard=3
    )
    index = [labels.index(e) for e in chosen]
    assert torch.equal(part.scores[index], full.scores[index])
    assert int(part.included.sum()) == len(chosen) and (part.scores[~part.included] == 0).all()


class StoppingExecutor(InProcessExecutor):
    """In process, recording the edges it patches; Ctrl-C after `stop_after` shards."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.patched: list[int] = []
        self.stop_after, self.shards = stop_after, 0

    def run(self, job, shards, on_result):
        for shard in shards:
            if self.shards == self.stop_after:
                raise KeyboardInterrupt("stopped by the test")
            self.shards += 1
            self.patched += shard.items
            on_result(shard, job.fn(job.model, shard))


def test_an_interrupted_stored_run_resumes_with_the_missing_shards(ioi, tmp_path):
    model, task = ioi
    edges = list(build_graph(model, readout=task.readout).edge_labels)[:12]
    expected = path_patching(model, task, edges=edges)
    store, first = RunStore(tmp_path), StoppingExecutor(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        path_patching(model, task, edges=edges, edges_per_shard=4, executor=first, store=store)
    (interrupted,) = store.list_runs(include_incomplete=True)
    assert interrupted.status == "interrupted" and first.patched == list(range(8))
    second = StoppingExecutor()
    resumed = path_patching(
        model, task, edges=edges, edges_per_shard=4, executor=second, store=store
    )
    assert second.patched == list(range(8, 12)) and resumed.config["run_id"] == interrupted.run_id
    assert torch.equal(resumed.scores, expected.scores)
    assert store.get_run(interrupted.run_id).status == "complete"
    assert len(store.load_shards(interrupted.run_id)) == 3


def test_bad_sharding_arguments_raise(ioi):
    model, task = ioi
    with pytest.raises(ValueError, match="shard size"):
        path_patching(model, task, edges_per_shard=0)
    with pytest.raises(ValueError, match="executor: 'dask' is not one of"):
        path_patching(model, task, executor="dask")
    with pytest.raises(ValueError, match="address: only used with executor='ray'"):
        path_patching(model, task, address="127.0.0.1:6379")


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.slow
def test_cli_sharded_exhaustive_matches_the_api(zoo_model):
    proc = _cli(
        "circuit",
        "tiny-ioi",
        "ioi",
        "--method",
        "exhaustive",
        "--n",
        "4",
        "--per-shard",
        "30",
        "--show",
        "110",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["config"]["n_shards"] == 4
    model = zoo_model("tiny-ioi")
    expected = exhaustive_patching(model, make_task("ioi", model, n=4, seed=0))
    scores = dict(zip(expected.edges, expected.scores.tolist(), strict=True))
    assert {row["edge"]: row["score"] for row in payload["top_edges"]} == scores


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--method", "path", "--address", "127.0.0.1:1"), "--address: only used with"),
        (("--method", "eap", "--executor", "ray"), "--executor/--per-shard: only for"),
    ],
)
def test_cli_rejects_bad_executor_flags(args, message):
    proc = _cli("circuit", "tiny-ioi", "ioi", *args)
    assert proc.returncode == 2 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
