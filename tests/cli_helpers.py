"""Run the `workbench` command line in a subprocess, offline, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args: str, store=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m workbench.cli ARGS...` with HF_HUB_OFFLINE=1 and one torch thread;
    `store` sets $WORKBENCH_STORE."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    if store is not None:
        env["WORKBENCH_STORE"] = str(store)
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
