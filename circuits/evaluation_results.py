"""Result types of `circuits.evaluation`: faithfulness, completeness, the size curve, ROC.

Each is a frozen `workbench.results.Result` with a run-store `kind`, `plot_kinds`,
`to_frame()` and `plot()`. `FaithfulnessResult` and `CompletenessResult` still answer the old
dict keys (`result["faithfulness"]`) with a `DeprecationWarning`, for one release.

Caveats: `plot()` draws only the stored numbers; ROC curves hold one row per top-k cut, so a
graph with many edges makes a long table.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from workbench.results import Result

if TYPE_CHECKING:
    import plotly.graph_objects as go


class _GapResult:
    """Mixin of the two gap shares (faithfulness, completeness): one-row `to_frame`, a bar
    plot of the clean, corrupted and intervened mean metrics, and `result[key]` for the keys
    of the dict these results used to be (deprecated). Subclasses name their share field
    (`_share`) and their intervened metric (`_intervened`: field name, bar label)."""

    _share: ClassVar[str]
    _intervened: ClassVar[tuple[str, str]]

    def __getitem__(self, key: str) -> Any:
        names = [f.name for f in fields(self)]  # type: ignore[arg-type]
        if key not in names:
            raise KeyError(key)
        warnings.warn(
            f"{type(self).__name__}[{key!r}] is deprecated; use the attribute .{key}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        """The numbers as a plain dict (the fields, by name)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    def to_frame(self) -> pd.DataFrame:
        """One row holding every field."""
        return pd.DataFrame([self.to_dict()])

    def plot(self, kind: str | None = "metrics", **kwargs: Any) -> go.Figure:
        """`metrics`: the clean, corrupted and intervened mean metrics as bars."""
        import plotly.graph_objects as go

        _check_kind(kind, self.plot_kinds)  # type: ignore[attr-defined]
        field, label = self._intervened
        bars = {
            "clean": self.clean_metric,  # type: ignore[attr-defined]
            "corrupted": self.corrupted_metric,  # type: ignore[attr-defined]
            label: getattr(self, field),
        }
        share = getattr(self, self._share)
        fig = go.Figure(go.Bar(x=list(bars), y=list(bars.values())))
        fig.update_layout(
            title=f"{self.model_name} {self.task}: {self._share} {share:.3f}",  # type: ignore[attr-defined]
            yaxis_title="mean metric",
            **kwargs,
        )
        return fig


def _check_kind(kind: str | None, allowed: tuple[str, ...]) -> None:
    if kind not in (None, *allowed):
        raise ValueError(f"kind: unknown plot kind {kind!r}; choose from {list(allowed)}")


@dataclass(frozen=True)
class FaithfulnessResult(_GapResult, Result):
    """Share of the clean->corrupted metric gap the circuit alone recovers (everything outside
    it patched to corrupted): `(circuit_metric - corrupted_metric) / (clean - corrupted)`."""

    kind: ClassVar[str] = "faithfulness"
    plot_kinds: ClassVar[tuple[str, ...]] = ("metrics",)
    _share: ClassVar[str] = "faithfulness"
    _intervened: ClassVar[tuple[str, str]] = ("circuit_metric", "circuit only")

    model_name: str
    task: str
    method: str
    faithfulness: float
    circuit_metric: float
    clean_metric: float
    corrupted_metric: float
    n_edges: int
    edge_share: float


@dataclass(frozen=True)
class CompletenessResult(_GapResult, Result):
    """Share of the gap lost when only the circuit's edges are patched to corrupted:
    `(clean_metric - without_circuit_metric) / (clean - corrupted)`."""

    kind: ClassVar[str] = "completeness"
    plot_kinds: ClassVar[tuple[str, ...]] = ("metrics",)
    _share: ClassVar[str] = "completeness"
    _intervened: ClassVar[tuple[str, str]] = ("without_circuit_metric", "without circuit")

    model_name: str
    task: str
    method: str
    completeness: float
    without_circuit_metric: float
    clean_metric: float
    corrupted_metric: float
    n_edges: int


@dataclass(frozen=True)
class FaithfulnessCurve(Result):
    """Faithfulness of the top-k edges by |score| for several k; `curve` has one row per k:
    n_edges, edge_share, metric, faithfulness."""

    kind: ClassVar[str] = "faithfulness_curve"
    plot_kinds: ClassVar[tuple[str, ...]] = ("curve",)

    model_name: str
    task: str
    method: str
    curve: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The curve table (a copy)."""
        return self.curve.copy()

    def plot(self, kind: str | None = "curve", **kwargs: Any) -> go.Figure:
        """`curve`: faithfulness against the number of kept edges."""
        import plotly.graph_objects as go

        _check_kind(kind, self.plot_kinds)
        fig = go.Figure(
            go.Scatter(x=self.curve["n_edges"], y=self.curve["faithfulness"], mode="lines+markers")
        )
        fig.update_layout(
            title=f"{self.model_name} {self.task} ({self.method}): faithfulness by circuit size",
            xaxis_title="edges kept (top-k by |score|)",
            yaxis_title="faithfulness",
            **kwargs,
        )
        return fig


@dataclass(frozen=True)
class RocResult(Result):
    """|score| as a detector of a reference circuit's edges: `auc` (Mann-Whitney, ties counted
    half) and `curve` (n_edges, fpr, tpr when keeping the top-k edges, k = 0..n)."""

    kind: ClassVar[str] = "roc"
    plot_kinds: ClassVar[tuple[str, ...]] = ("roc",)

    model_name: str
    method: str
    auc: float
    curve: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The ROC table (a copy): n_edges, fpr, tpr."""
        return self.curve.copy()

    def plot(self, kind: str | None = "roc", **kwargs: Any) -> go.Figure:
        """`roc`: true against false positive rate, with the chance diagonal."""
        import plotly.graph_objects as go

        _check_kind(kind, self.plot_kinds)
        fig = go.Figure(go.Scatter(x=self.curve["fpr"], y=self.curve["tpr"], mode="lines"))
        fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot"}, name="chance")
        fig.update_layout(
            title=f"{self.model_name} ({self.method or 'scores'}): ROC, AUC {self.auc:.3f}",
            xaxis_title="false positive rate",
            yaxis_title="true positive rate",
            showlegend=False,
            **kwargs,
        )
        return fig
