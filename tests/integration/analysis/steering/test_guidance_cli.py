"""`workbench guide`: JSON output on a zoo decoder, one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import run_cli


@pytest.mark.slow
def test_guide_json_decodes_with_guidance():
    prompt = "When Mary and John went to the store , John gave a drink to"
    proc = run_cli(
        "guide",
        "tiny-ioi",
        prompt,
        "--heads",
        "L1H0,L1H2",
        "--w",
        "2",
        "--max-new-tokens",
        "3",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["heads"] == ["L1H0", "L1H2"] and len(payload["steps"]) == 3
    assert payload["steps"][0]["token_str"] == "Mary"  # guidance keeps the IOI answer
    assert all(step["shift_norm"] > 0 for step in payload["steps"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--heads", ""], "heads: no heads given"),
        (["--heads", "L1H0", "--u", "1.5"], "--u: perturbation strength must be in [0, 1]"),
    ],
)
def test_guide_bad_arguments_exit_2_with_one_line(args, message):
    proc = run_cli("guide", "tiny-ioi", "When Mary", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
