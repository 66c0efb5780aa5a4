"""`workbench entropy-bound` and `workbench training` on zoo models: JSON on stdout with the
library's numbers, text mode readable, `--save` files the run under its kind."""

from __future__ import annotations

import json

import pytest

from analysis.training_dynamics import entropy_bound, loss_plateau
from workbench.cli import main
from workbench.store import RunStore


def _json(capsys, argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_entropy_bound_json_and_save(capsys, zoo_model, tmp_path):
    argv = ["entropy-bound", "planted-induction", "--text", "a b c a b", "--json"]
    payload = _json(capsys, [*argv, "--save", "--store", str(tmp_path)])
    expected = entropy_bound(zoo_model("planted-induction"), texts=["a b c a b"])
    assert payload["holds"] is True and payload["checkpoints"] == ["final"]
    assert payload["min_margin"] == pytest.approx(expected.min_margins())
    assert len(payload["heads"]) == 8
    runs = RunStore(str(tmp_path)).list_runs()
    assert [r.kind for r in runs] == ["entropy_bound"] and runs[0].run_id == payload["run_id"]


def test_training_json_and_text(capsys, zoo_model):
    payload = _json(
        capsys, ["training", "tiny-induction", "--n", "2", "--new-tokens", "3", "--json"]
    )
    expected = loss_plateau(zoo_model("tiny-induction"), n=2, new_tokens=3)
    assert [r["step"] for r in payload["checkpoints"]] == expected.curve.step.tolist()
    assert [r["loss"] for r in payload["checkpoints"]] == pytest.approx(expected.curve.loss)
    capsys.readouterr()
    assert main(["training", "tiny-induction", "--n", "2", "--new-tokens", "3"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("tiny-induction: loss plateau view") and "4000" in text
