"""The dashboard's server log stays quiet: no line per HTTP request unless `--access-log`.

Each case runs the real `workbench app` command in a subprocess on a free port, waits for its
startup message, makes a few requests (page, layout, a callback-dependencies fetch and a
missing route) and stops it; then reads what the process wrote to stdout and stderr.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PATHS = ["/", "/_dash-layout", "/_dash-dependencies", "/no-such-page-xyz"]
ACCESS_LINE = re.compile(r'"(GET|POST) /\S* HTTP/1\.[01]" \d{3}')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_and_request(tmp_path: Path, *flags: str) -> str:
    """stdout + stderr of `workbench app` after a few requests."""
    port = _free_port()
    env = {**os.environ, "WORKBENCH_STORE": str(tmp_path / "store"), "OMP_NUM_THREADS": "1"}
    log = tmp_path / "log.txt"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "app", "--port", str(port), *flags],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 240
            while "dashboard ready at" not in log.read_text():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, (
                    "the dashboard did not start:\n" + log.read_text()
                )
                time.sleep(0.5)
            statuses = []
            for path in PATHS:
                for _ in range(50):  # the server may need a moment after the message
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as reply:
                            statuses.append(reply.status)
                        break
                    except urllib.error.HTTPError as err:
                        statuses.append(err.code)
                        break
                    except urllib.error.URLError:
                        time.sleep(0.2)
            assert statuses[:3] == [200, 200, 200], statuses
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return log.read_text()


def test_the_access_log_is_off_by_default(tmp_path):
    text = _serve_and_request(tmp_path)
    assert "dashboard ready at" in text
    assert not ACCESS_LINE.search(text), text
    assert not any(path in line for line in text.splitlines() for path in PATHS[1:]), text


def test_access_log_prints_one_line_per_request(tmp_path):
    text = _serve_and_request(tmp_path, "--access-log")
    lines = [line for line in text.splitlines() if ACCESS_LINE.search(line)]
    for path in PATHS:
        assert any(f"GET {path} HTTP" in line for line in lines), (path, text)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--access-log=yes", "argument --access-log: ignored explicit argument 'yes'"),
        ("--access-logs", "unrecognized arguments: --access-logs"),
    ],
)
def test_a_misspelt_access_log_flag_is_a_usage_error(flag, message):
    proc = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "app", flag],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"workbench: error: {message}"]
