"""Corpus statistics on a two-node Ray cluster that the test starts itself (`ray start --head`
plus a second node joining by address, one CPU each, bound to 127.0.0.1, usage stats off,
a private auth token): results equal the in-process run exactly, also when a worker is killed
with SIGKILL mid-sweep.

Teardown kills exactly the processes of this cluster (those whose command line names its
private temp dir, and their children), never other Ray processes on the machine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from pandas.testing import assert_frame_equal

from analysis.corpus_stats import corpus_stats
from workbench.store import RunStore
from workbench.tasks.ioi_prompts import generate_ioi_prompts

pytestmark = pytest.mark.slow

TEXTS = [p.text for p in generate_ioi_prompts(48, seed=11)]
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cluster_pids(temp_dir: str) -> set[int]:
    """Processes whose command line names `temp_dir`, with all their descendants."""
    parents, mine = {}, set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            parents[int(entry.name)] = int(
                (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            )
        except (OSError, IndexError, ValueError):
            continue
        if temp_dir in cmdline:
            mine.add(int(entry.name))
    while True:
        children = {pid for pid, ppid in parents.items() if ppid in mine} - mine
        if not children:
            return mine - {os.getpid()}
        mine |= children


def _stop_cluster(temp_dir: str) -> None:
    for pid in _cluster_pids(temp_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def ray_cluster():
    """The address of a fresh two-node cluster; the driver environment is set to reach it."""
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(16), "OMP_NUM_THREADS": "1"}  # fmt: skip
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # before Ray is imported: it reads RAY_AUTH_MODE once, at import
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install .[ray])")
    temp_dir = tempfile.mkdtemp(prefix="wbray", dir="/tmp")  # short: Unix socket paths
    address = f"127.0.0.1:{_free_port()}"
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    try:
        for cmd in (
            [RAY, "start", "--head", f"--port={address.split(':')[1]}", f"--temp-dir={temp_dir}",
             "--include-dashboard=false", *common],
            [RAY, "start", f"--address={address}", *common],
        ):  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr[-2000:]
        yield address
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        _stop_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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
