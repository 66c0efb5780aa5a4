"""The two-node Ray cluster fixture for the executor tests.

`ray_cluster` starts a fresh local cluster per test module (`ray start --head` plus a second
node joining by address, one CPU each, `--node-ip-address=127.0.0.1`, usage stats off, a
private auth token, the same for every module) and yields its address. Teardown kills exactly
the processes of this cluster (those whose command line names its private temp dir, and their
children), never other Ray processes.

Caveat: `ray start` (Ray 2.60) replaces `--node-ip-address=127.0.0.1` by the machine's own
address, and the cluster's servers then listen on all interfaces; a node joining by address
cannot be kept on loopback (see docs/scale-out.md). Only the private Ray that `RayExecutor`
starts itself is loopback-only (tests/integration/executors/test_ray_local.py).
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

RAY = str(Path(sys.executable).with_name("ray"))
# One token per test process: Ray keeps the token it first read, so every module's cluster
# must use the same one for the driver to connect to it.
AUTH_TOKEN = secrets.token_hex(16)


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
    env = {
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": AUTH_TOKEN,
        "OMP_NUM_THREADS": "1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # before Ray is imported: it reads RAY_AUTH_MODE once, at import
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install .[ray])")
    temp_dir = tempfile.mkdtemp(prefix="wbray", dir="/tmp")  # short: Unix socket paths
    address = f"127.0.0.1:{_free_port()}"
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    head = [f"--port={address.split(':')[1]}", f"--temp-dir={temp_dir}"]
    try:
        for cmd in (
            [RAY, "start", "--head", *head, "--include-dashboard=false", *common],
            [RAY, "start", f"--address={address}", *common],
        ):
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
