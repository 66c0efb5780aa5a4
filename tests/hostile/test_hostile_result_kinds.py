"""Hostile input around result kinds: `workbench figure run --kind` with a plot kind the stored
result type does not draw (canonical and old-kind runs), unknown kinds asked of the registry,
and results the store cannot file without being told their kind or model.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

import analysis
from workbench.cli import main
from workbench.results import Result, result_type
from workbench.store import RunStore

PROMPT = "When Mary and John went to the store"


@dataclass(frozen=True)
class NamelessResult(Result):
    """A result with neither a kind nor a model name."""

    values: tuple[float, ...]

    def to_frame(self) -> pd.DataFrame:
        """One row per value."""
        return pd.DataFrame({"value": list(self.values)})

    def plot(self, kind: str | None = None, **kwargs: Any) -> Any:
        """Not drawn."""
        raise NotImplementedError


@pytest.fixture(scope="module")
def stats(zoo_model):
    return analysis.attention_stats(zoo_model("tiny-ioi"), [PROMPT])


@pytest.mark.parametrize(
    ("stored_kind", "plot_kind", "message"),
    [
        (None, "nonsense", "--kind: 'nonsense' is not a plot kind of attention_stats runs"),
        (None, "graph", "--kind: 'graph' is not a plot kind of attention_stats runs"),
        ("stats", "spectrum", "--kind: 'spectrum' is not a plot kind of attention_stats runs"),
        (None, "", None),  # an empty --kind means the default plot
    ],
)
def test_figure_run_refuses_a_plot_kind_the_stored_type_lacks(
    stats, tmp_path, capsys, stored_kind, plot_kind, message
):
    store = RunStore(tmp_path / "store")
    run_id = store.save(stats)
    if stored_kind is not None:  # as an older workbench filed it
        with sqlite3.connect(store.index_path) as db:
            db.execute("UPDATE runs SET kind = ? WHERE run_id = ?", (stored_kind, run_id))
    out = tmp_path / "fig.html"
    argv = ["figure", "run", run_id, "--store", str(store.root), "-o", str(out)]
    code = main([*argv, "--kind", plot_kind])
    err = capsys.readouterr().err
    if message is None:
        assert code == 0 and out.is_file()
        return
    assert code == 2 and not out.exists()
    assert err.count("\n") == 1 and message in err and "heatmap" in err


@pytest.mark.parametrize(
    "kind",
    ["", "no_such_kind", "Attention_Stats", "attention-stats", "corpus stats", "\x00", None, ["x"]],
)
def test_unknown_kinds_are_named(kind):
    with pytest.raises(ValueError, match=re.escape(f"kind: unknown result kind {kind!r}")):
        result_type(kind)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "kind: NamelessResult has no kind; pass kind="),
        ({"kind": ""}, "kind: NamelessResult has no kind; pass kind="),
        ({"kind": "probe"}, "model: NamelessResult has no model_name; pass model="),
        ({"kind": "probe", "model": "m", "config": {"f": print}}, "config is not JSON"),
    ],
)
def test_store_refuses_a_result_it_cannot_file(tmp_path, kwargs, message):
    store = RunStore(tmp_path)
    with pytest.raises(ValueError, match=message):
        store.save(NamelessResult((1.0,)), **kwargs)
    assert store.list_runs() == []
