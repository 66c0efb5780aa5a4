"""`workbench attack`: JSON output on tiny-ioi, one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import run_cli


@pytest.mark.slow
def test_attack_json_reports_success_steps_and_head_statistics():
    proc = run_cli(
        "attack",
        "tiny-ioi",
        "--n-prompts",
        "2",
        "--steps",
        "8",
        "--batch-size",
        "32",
        "--heads",
        "L1H0,L1H2",
        "--seed",
        "3",
        "--quiet",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["objective"] == "flip" and len(payload["prompts"]) == 2
    assert 0.0 <= payload["success_rate"] <= 1.0
    assert all(row["steps_used"] <= 8 for row in payload["prompts"])
    assert {row["stage"] for row in payload["head_stats"]} == {"before", "after"}
    assert payload["config"]["seed"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--objective", "jailbreak"], "argument --objective: invalid choice"),
        (
            ["--heads", "", "--dissipation-weight", "1"],
            "heads: the attention-dissipation term needs",
        ),
    ],
)
def test_attack_bad_arguments_exit_2_with_one_line(args, message):
    proc = run_cli("attack", "tiny-ioi", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
