"""The `workbench` command line: JSON output, run management, one-line errors with exit 2."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import pytest

from tests.cli_helpers import run_cli
from workbench.results import Result
from workbench.store import RunStore


def test_models_json_lists_the_zoo_with_dimensions_and_card_metrics():
    proc = run_cli("models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) >= {"minilm", "tiny-ioi", "tiny-induction"}
    assert (rows["minilm"]["n_layers"], rows["minilm"]["n_heads"]) == (6, 12)
    assert rows["tiny-ioi"]["metrics"]["ioi_accuracy"] >= 0.98


def test_models_name_json_describes_a_loaded_model():
    proc = run_cli("models", "tiny-ioi", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["is_causal"] and info["n_layers"] == 2 and info["source"] == "zoo"


@dataclass(frozen=True)
class _Scores(Result):
    values: tuple[float, ...]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"i": range(len(self.values)), "value": self.values})

    def plot(self, kind=None, **kwargs) -> go.Figure:
        return go.Figure(go.Bar(y=list(self.values)))


def test_runs_list_show_delete_round_trip(tmp_path):
    run_id = RunStore(tmp_path).save(
        _Scores((1.0, 2.5)), kind="scores", model="tiny-ioi", config={"seed": 0}
    )
    listed = json.loads(run_cli("runs", "list", "--json", store=tmp_path).stdout)
    assert [r["run_id"] for r in listed] == [run_id]
    shown = run_cli("runs", "show", run_id, "--json", store=tmp_path)
    assert shown.returncode == 0 and json.loads(shown.stdout)["config"] == {"seed": 0}
    assert run_cli("runs", "delete", run_id, store=tmp_path).returncode == 0
    assert json.loads(run_cli("runs", "list", "--json", store=tmp_path).stdout) == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("models", "no-such-model"), "cannot fetch hub model 'no-such-model'"),
        (("models", "./missing/folder"), "no checkpoint folder"),
        (("runs", "show", "20260101-000000-deadbeef"), "20260101-000000-deadbeef"),
        (("runs", "delete", "../../etc"), "run"),
        (("frobnicate",), "invalid choice"),
        (("app", "--port", "0"), "--port"),
        (("app", "--port", "eighty"), "--port"),
        (("circuit", "tiny-ioi", "ioi", "--show", "-1"), "--show: expected an integer >= 0"),
        (("figure", "stats", "tiny-ioi", "x", "-o", "/proc/x.html"), "under /proc, /sys or /dev"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, needle):
    proc = run_cli(*args, store=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_debug_prints_the_traceback_above_the_one_error_line(tmp_path):
    proc = run_cli("--debug", "models", str(tmp_path / "no-config"), store=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("Traceback (most recent call last):")
    assert proc.stderr.splitlines()[-1].startswith("workbench: error: model: no checkpoint folder")


@pytest.mark.parametrize(
    ("spec", "heads"),
    [("L1H2,L0H3", [[1, 2], [0, 3]]), ("1.2", [[1, 2]]), ("l1h2 , a0.3", [[1, 2], [0, 3]])],
)
def test_guide_heads_take_l1h2_and_the_older_spellings(tmp_path, spec, heads):
    import analysis  # noqa: F401 - registers the guidance result type
    from workbench.heads import Head

    prompt = "When Mary and John went to the store, John gave a drink to"
    proc = run_cli(
        "guide",
        "tiny-ioi",
        prompt,
        "--heads",
        spec,
        "--max-new-tokens",
        "1",
        "--quiet",
        "--json",
        "--save",
        store=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["heads"] == [str(Head(*h)) for h in heads]  # written L1H2 in the JSON
    stored = RunStore(tmp_path).load_result(payload["run_id"])
    assert stored.heads == tuple(Head(*h) for h in heads)
    assert all(type(h) is Head for h in stored.heads)  # read back as Heads, not pairs
