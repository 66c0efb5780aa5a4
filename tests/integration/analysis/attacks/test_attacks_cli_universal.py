"""`workbench attack --universal` and the random baseline on tiny-ioi: JSON with intervals,
a baseline next to the success rate, and no IOI name in the span unless `--allow-names`."""

from __future__ import annotations

import json

from workbench.cli import main
from workbench.tasks.ioi_prompts import NAMES

FAST = ["--steps", "1", "--batch-size", "8", "--baseline-draws", "3", "--n-boot", "50"]


def _run(capsys, *args: str) -> dict:
    code = main(["attack", "tiny-ioi", "--quiet", "--json", *FAST, *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def _inside(interval: dict) -> bool:
    return interval["low"] <= interval["estimate"] <= interval["high"]


def test_universal_json_reports_held_out_rate_with_interval_and_baseline(capsys):
    payload = _run(capsys, "--universal", "--search-prompts", "2", "--n-prompts", "4")
    assert payload["mode"] == "universal" and payload["n_search"] == 2
    assert payload["n_prompts"] == len(payload["prompts"]) == 4
    assert _inside(payload["success"]) and payload["success"]["n_prompts"] == 4
    rate = sum(row["success"] for row in payload["prompts"]) / 4
    assert payload["success"]["estimate"] == rate
    base = payload["baseline"]
    assert base["draws_per_prompt"] == 3 and _inside(base["success_rate_per_draw"])
    assert not set(payload["span"].split()) & set(NAMES)


def test_per_prompt_json_has_interval_and_baseline(capsys):
    payload = _run(capsys, "--n-prompts", "2", "--allow-names")
    assert payload["mode"] == "per_prompt" and payload["config"]["ban_names"] is False
    assert _inside(payload["success"]) and payload["success"]["estimate"] == payload["success_rate"]
    assert payload["baseline"]["draws_per_prompt"] == 3
