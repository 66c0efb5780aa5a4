"""`workbench corpus-stats --executor ray` on the private Ray the CLI starts itself (no
`--address`), run as a subprocess: every Ray process listens on loopback only, `--json` stdout
parses even when a worker is SIGKILLed mid-run (Ray's "worker died" line goes to stderr), and a
driver SIGKILLed mid-run resumes from the store without recomputing the shards it stored. The
numbers always equal the uninterrupted in-process run exactly."""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.statistics.corpus_stats import corpus_stats
from workbench.store import RunStore
from workbench.tasks.ioi_prompts import generate_ioi_prompts

pytestmark = pytest.mark.slow
if importlib.util.find_spec("ray") is None:  # not imported here: see conftest.py (auth token)
    pytest.skip("the ray extra is not installed (pip install .[ray])", allow_module_level=True)
psutil = pytest.importorskip("psutil")  # a dependency of Ray

TEXTS = [p.text for p in generate_ioi_prompts(48, seed=11)]
N_SHARDS = 12  # 48 documents, 4 per shard
WAIT_S = 300  # bound on every wait for the subprocess (a slow, shared machine)


@pytest.fixture(scope="module")
def expected(zoo_model):
    """The uninterrupted in-process run, as the CLI's `--json` reports it."""
    stats = corpus_stats(zoo_model("tiny-ioi"), TEXTS, docs_per_shard=4)
    return stats.per_head.to_dict(orient="records")


def _command(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        "WORKBENCH_STORE": str(tmp_path / "store"),
    }
    env.pop("RAY_ADDRESS", None)  # the private Ray, never a cluster someone else runs
    args = ["corpus-stats", "tiny-ioi", "--texts", str(texts), "--docs-per-shard", "4"]
    return [sys.executable, "-m", "workbench.cli", *args, "--executor", "ray", "--json"], env


def _stored(store: Path) -> dict[str, os.stat_result]:
    """Each stored shard file (staged or published) by name."""
    return {p.name: p.stat() for p in store.rglob("shards/*.parquet")}


def _wait_for_a_stored_shard(proc: subprocess.Popen, store: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not _stored(store):
        if proc.poll() is not None:
            pytest.fail(f"the CLI ended before storing a shard: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail("no shard was stored in time")
        time.sleep(0.05)


def _tree(proc: subprocess.Popen) -> list:
    """The CLI process and all its descendants (the private Ray's processes)."""
    root = psutil.Process(proc.pid)
    return [root, *root.children(recursive=True)]


def _start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen, processes: list) -> None:
    """SIGKILL the CLI if it still runs, and every Ray process seen under it (psutil checks
    each is still the same process, so a reused pid is left alone)."""
    with contextlib.suppress(psutil.Error):
        processes = [*processes, *_tree(proc)]
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=60)


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)  # "::ffff:127.0.0.1"
    return (mapped or address).is_loopback


def _listening(processes: list) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every listening TCP socket and bound UDP socket."""
    found = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            name = process.name()
            for conn in process.net_connections(kind="inet"):
                unconnected_udp = conn.status == psutil.CONN_NONE and not conn.raddr
                if conn.status == psutil.CONN_LISTEN or unconnected_udp:
                    found.append((name, conn.laddr.ip, conn.laddr.port))
    return found


def _kill_a_busy_worker(proc: subprocess.Popen) -> int:
    """SIGKILL an actor while it runs a shard (its process title says `.run`); its pid."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and proc.poll() is None:
        for process in _tree(proc):
            with contextlib.suppress(psutil.NoSuchProcess):
                if process.name().startswith("ray::_ModelWorker.run"):
                    process.kill()
                    return process.pid
        time.sleep(0.02)
    pytest.fail("no worker was seen running a shard")


def test_private_ray_listens_on_loopback_and_json_survives_a_killed_worker(tmp_path, expected):
    cmd, env = _command(tmp_path)
    proc = _start(cmd, env)
    processes = []
    try:
        _wait_for_a_stored_shard(proc, tmp_path / "store")
        processes = _tree(proc)
        sockets = _listening(processes)
        assert {"gcs_server", "raylet"} <= {name for name, _, _ in sockets}, sockets
        exposed = [s for s in sockets if not _is_loopback(s[1])]
        assert not exposed, f"Ray sockets on non-loopback addresses: {exposed}"

        _kill_a_busy_worker(proc)
        out, err = proc.communicate(timeout=WAIT_S)
    finally:
        _stop(proc, processes)
    assert proc.returncode == 0, err[-2000:]
    assert "A worker died or was killed" in err  # Ray's own line: on stderr, not stdout
    payload = json.loads(out)  # stdout is the JSON document and nothing else
    assert payload["executor"] == "ray" and payload["documents"] == len(TEXTS)
    assert payload["per_head"] == expected
    assert len(RunStore(tmp_path / "store").load_shards(payload["run_id"])) == N_SHARDS


def test_a_driver_killed_mid_run_resumes_from_the_store(tmp_path, expected):
    cmd, env = _command(tmp_path)
    store = tmp_path / "store"
    proc = _start(cmd, env)
    processes = []
    try:
        _wait_for_a_stored_shard(proc, store)
        processes = _tree(proc)
        proc.kill()  # SIGKILL the driver mid-run (then its private Ray, below)
        proc.communicate(timeout=WAIT_S)
    finally:
        _stop(proc, processes)
    before = _stored(store)
    assert 1 <= len(before) < N_SHARDS  # killed mid-run, after at least one stored shard
    (interrupted,) = RunStore(store).list_runs(include_incomplete=True)
    assert interrupted.status != "complete"

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=WAIT_S)
    assert again.returncode == 0, again.stderr[-2000:]
    payload = json.loads(again.stdout)
    assert payload["run_id"] == interrupted.run_id  # resumed, not started afresh
    assert payload["per_head"] == expected
    after = _stored(store)
    assert len(after) == N_SHARDS
    for name, stat in before.items():  # the shards stored before the kill were not rewritten
        assert (after[name].st_ino, after[name].st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
