"""The result-kind registry (`workbench.results`): kinds to classes, old kind names, and
`RunStore.save` taking the kind, model and config from the result.

Every kind the workbench ships is exercised on real results in
tests/integration/workbench/test_result_kinds.py; here: the registry's rules on small results.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd
import pytest

from workbench.results import (
    KIND_ALIASES,
    Result,
    canonical_kind,
    result_kinds,
    result_type,
)
from workbench.store import RunStore


@dataclass(frozen=True)
class RegistryProbe(Result):
    """A small result with a kind of its own."""

    kind: ClassVar[str] = "registry_probe"
    plot_kinds: ClassVar[tuple[str, ...]] = ("bars",)

    model_name: str
    values: tuple[float, ...]
    config: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per value."""
        return pd.DataFrame({"value": list(self.values)})

    def plot(self, kind: str | None = "bars", **kwargs: Any) -> Any:
        """Bars of the values."""
        import plotly.graph_objects as go

        return go.Figure(go.Bar(y=list(self.values)))


@dataclass(frozen=True)
class KindlessProbe(Result):
    """A result without a kind (scripts, tests)."""

    values: tuple[float, ...]

    def to_frame(self) -> pd.DataFrame:
        """One row per value."""
        return pd.DataFrame({"value": list(self.values)})

    def plot(self, kind: str | None = None, **kwargs: Any) -> Any:
        """Not drawn."""
        raise NotImplementedError


def _probe() -> RegistryProbe:
    return RegistryProbe(model_name="tiny-ioi", values=(1.0, 2.0), config={"seed": 3})


def test_a_kind_finds_its_class_and_unknown_kinds_are_named():
    assert result_type("registry_probe") is RegistryProbe
    assert result_kinds()["registry_probe"] is RegistryProbe
    assert "KindlessProbe" not in {c.__qualname__ for c in result_kinds().values()}
    with pytest.raises(ValueError, match="unknown result kind 'no_such_kind'"):
        result_type("no_such_kind")


@pytest.mark.parametrize(
    ("old", "new"), [("corpus-stats", "corpus_stats"), ("stats", "attention_stats")]
)
def test_old_kind_names_map_to_the_canonical_ones(old, new):
    assert KIND_ALIASES[old] == new
    assert canonical_kind(old) == new and canonical_kind(new) == new


def test_a_second_class_may_not_take_a_kind():
    with pytest.raises(TypeError, match="registry_probe"):
        type("Impostor", (Result,), {"kind": "registry_probe", "__module__": "elsewhere"})
    assert result_type("registry_probe") is RegistryProbe


def test_save_takes_kind_model_and_config_from_the_result(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.save(_probe())
    info = store.get_run(run_id)
    assert (info.kind, info.model, info.config) == ("registry_probe", "tiny-ioi", {"seed": 3})
    assert store.load_result(run_id) == _probe()
    explicit = store.save(_probe(), kind="other_kind", model="m", config={})
    assert (store.get_run(explicit).kind, store.get_run(explicit).model) == ("other_kind", "m")


def test_save_needs_a_kind_and_a_model_for_a_kindless_result(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(ValueError, match="kind: KindlessProbe has no kind; pass kind="):
        store.save(KindlessProbe((1.0,)))
    with pytest.raises(ValueError, match="model: KindlessProbe has no model_name"):
        store.save(KindlessProbe((1.0,)), kind="probe")
    run_id = store.save(KindlessProbe((1.0,)), kind="probe", model="m")
    assert store.get_run(run_id).config == {}


@pytest.mark.parametrize(("old", "new"), sorted(KIND_ALIASES.items()))
def test_runs_stored_under_an_old_kind_read_back_canonical(tmp_path, old, new):
    store = RunStore(tmp_path)
    run_id = store.save(_probe(), kind="placeholder")
    with sqlite3.connect(store.index_path) as db:  # as an older workbench wrote it
        db.execute("UPDATE runs SET kind = ? WHERE run_id = ?", (old, run_id))
    reopened = RunStore(tmp_path)
    assert reopened.get_run(run_id).kind == new
    assert [r.kind for r in reopened.list_runs()] == [new]
    assert reopened.load_result(run_id) == _probe()


def test_writing_an_old_kind_stores_the_canonical_one(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.save(_probe(), kind="corpus-stats")
    with sqlite3.connect(store.index_path) as db:
        [(stored,)] = db.execute("SELECT kind FROM runs WHERE run_id = ?", (run_id,))
    assert stored == "corpus_stats"


def test_old_circuit_json_with_model_loads_as_model_name():
    import json

    import torch

    from circuits import Circuit

    circuit = Circuit(
        model_name="tiny-ioi",
        task="ioi",
        method="eap",
        edges=("input->L0H0<q>", "input->output"),
        scores=torch.tensor([0.5, -1.0], dtype=torch.float64),
        included=torch.tensor([True, False]),
    )
    body = json.loads(circuit.to_json())
    body["fields"] = {("model" if k == "model_name" else k): v for k, v in body["fields"].items()}
    old = Circuit.from_json(json.dumps(body))
    assert old.model_name == "tiny-ioi" and old.edges == circuit.edges
    assert Circuit.kind == "circuit" and Circuit.plot_kinds == ("graph",)
