"""Result types of `circuits.evaluation`: faithfulness, completeness, the size curve, ROC.

Each is a frozen `workbench.results.Result` with a run-store `kind`, `plot_kinds`,
`to_frame()` and `plot()`. `FaithfulnessResult` and `CompletenessResult` still answer the old
dict keys (`result["faithfulness"]`) with a `DeprecationWarning`, for one release.

Uncertainty: each share and AUC carries a percentile bootstrap interval over prompts
(`circuits.bootstrap`): `*_ci = (low, high)` at `ci_level`, from `n_boot` resamples drawn with
`bootstrap_seed` over `n_prompts` prompts (`None` / 0 when not computed, e.g. results stored
before intervals existed, or `n_boot=0`). Shares resample a ratio of means; the per-prompt
metrics they came from are kept in `per_prompt` (the run store writes them as a table). A
`(nan, nan)` interval means some resample had no clean-corrupted gap.

Caveats: `plot()` draws only the stored numbers; ROC curves hold one row per top-k cut, so a
graph with many edges makes a long table.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from workbench.results import Result

if TYPE_CHECKING:
    import plotly.graph_objects as go


class DeprecatedKeys:
    """Mixin: `result[key]` for the fields of results that used to be dicts, with a
    `DeprecationWarning` (for one release); `to_dict()` gives the fields by name."""

    _dict_skip: ClassVar[tuple[str, ...]] = ()

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
        """The numbers as a plain dict (the fields, by name; per-prompt tables left out)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)  # type: ignore[arg-type]
            if f.name not in self._dict_skip
        }


def ci_text(ci: tuple[float, float] | None, level: float, n_boot: int) -> str:
    """`" [low, high] (95% bootstrap, B=200)"`, or "" without an interval."""
    if ci is None:
        return ""
    return f" [{ci[0]:.3f}, {ci[1]:.3f}] ({level:.0%} bootstrap, B={n_boot})"


def per_prompt_frame(clean: Any, corrupted: Any, intervened: Any, name: str) -> pd.DataFrame:
    """Per-prompt metrics `[prompt]` as a table: prompt, clean, corrupted, `name`."""
    return pd.DataFrame(
        {
            "prompt": range(len(clean)),
            "clean": [float(v) for v in clean],
            "corrupted": [float(v) for v in corrupted],
            name: [float(v) for v in intervened],
        }
    )


class _GapResult(DeprecatedKeys):
    """Mixin of the two gap shares (faithfulness, completeness): one-row `to_frame`, a bar
    plot of the clean, corrupted and intervened mean metrics, and `result[key]` for the keys
    of the dict these results used to be (deprecated). Subclasses name their share field
    (`_share`) and their intervened metric (`_intervened`: field name, bar label)."""

    _share: ClassVar[str]
    _intervened: ClassVar[tuple[str, str]]
    _dict_skip: ClassVar[tuple[str, ...]] = ("per_prompt",)

    def to_frame(self) -> pd.DataFrame:
        """One row holding every field (the interval as `<share>_low`, `<share>_high`)."""
        row = self.to_dict()
        ci = row.pop(f"{self._share}_ci")
        row[f"{self._share}_low"], row[f"{self._share}_high"] = ci if ci else (None, None)
        return pd.DataFrame([row])

    def tables(self) -> dict[str, pd.DataFrame]:
        """`main` (`to_frame()`) and, when kept, `per_prompt` (the metrics per prompt)."""
        found = {"main": self.to_frame()}
        if self.per_prompt is not None:  # type: ignore[attr-defined]
            found["per_prompt"] = self.per_prompt.copy()  # type: ignore[attr-defined]
        return found

    def plot(self, kind: str | None = "metrics", **kwargs: Any) -> go.Figure:
        """`metrics`: the clean, corrupted and intervened mean metrics as bars; the title
        gives the share with its bootstrap interval."""
        import plotly.graph_objects as go

        _check_kind(kind, self.plot_kinds)  # type: ignore[attr-defined]
        field_name, label = self._intervened
        bars = {
            "clean": self.clean_metric,  # type: ignore[attr-defined]
            "corrupted": self.corrupted_metric,  # type: ignore[attr-defined]
            label: getattr(self, field_name),
        }
        share = getattr(self, self._share)
        interval = ci_text(
            getattr(self, f"{self._share}_ci"),
            self.ci_level,  # type: ignore[attr-defined]
            self.n_boot,  # type: ignore[attr-defined]
        )
        fig = go.Figure(go.Bar(x=list(bars), y=list(bars.values())))
        fig.update_layout(
            title=f"{self.model_name} {self.task}: {self._share} {share:.3f}{interval}",  # type: ignore[attr-defined]
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
    n_prompts: int = 0
    faithfulness_ci: tuple[float, float] | None = None
    n_boot: int = 0
    bootstrap_seed: int | None = None
    ci_level: float = 0.95
    per_prompt: pd.DataFrame | None = field(default=None, repr=False, compare=False)


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
    n_prompts: int = 0
    completeness_ci: tuple[float, float] | None = None
    n_boot: int = 0
    bootstrap_seed: int | None = None
    ci_level: float = 0.95
    per_prompt: pd.DataFrame | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class FaithfulnessCurve(Result):
    """Faithfulness of the top-k edges by |score| for several k; `curve` has one row per k:
    n_edges, edge_share, metric, faithfulness, and with intervals faithfulness_low,
    faithfulness_high (the same `n_boot` resamples, drawn with `bootstrap_seed`, at every k)."""

    kind: ClassVar[str] = "faithfulness_curve"
    plot_kinds: ClassVar[tuple[str, ...]] = ("curve",)

    model_name: str
    task: str
    method: str
    curve: pd.DataFrame
    n_prompts: int = 0
    n_boot: int = 0
    bootstrap_seed: int | None = None
    ci_level: float = 0.95

    def to_frame(self) -> pd.DataFrame:
        """The curve table (a copy)."""
        return self.curve.copy()

    def plot(self, kind: str | None = "curve", **kwargs: Any) -> go.Figure:
        """`curve`: faithfulness against the number of kept edges, with its bootstrap band."""
        import plotly.graph_objects as go

        _check_kind(kind, self.plot_kinds)
        x, y = self.curve["n_edges"], self.curve["faithfulness"]
        fig = go.Figure()
        band = ""
        if {"faithfulness_low", "faithfulness_high"} <= set(self.curve.columns):
            low, high = self.curve["faithfulness_low"], self.curve["faithfulness_high"]
            fig.add_scatter(x=x, y=high, mode="lines", line={"width": 0}, name="upper")
            fig.add_scatter(
                x=x,
                y=low,
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                name="lower",
                fillcolor="rgba(99, 110, 250, 0.2)",
            )
            band = f", {self.ci_level:.0%} bootstrap band (B={self.n_boot})"
        fig.add_scatter(x=x, y=y, mode="lines+markers", name="faithfulness")
        fig.update_layout(
            title=f"{self.model_name} {self.task} ({self.method}): faithfulness by circuit size"
            + band,
            xaxis_title="edges kept (top-k by |score|)",
            yaxis_title="faithfulness",
            showlegend=False,
            **kwargs,
        )
        return fig


@dataclass(frozen=True)
class RocResult(Result):
    """|score| as a detector of a reference circuit's edges: `auc` (Mann-Whitney, ties counted
    half) and `curve` (n_edges, fpr, tpr when keeping the top-k edges, k = 0..n). `auc_ci`:
    bootstrap interval over prompts of the per-prompt scores (the reference held fixed)."""

    kind: ClassVar[str] = "roc"
    plot_kinds: ClassVar[tuple[str, ...]] = ("roc",)

    model_name: str
    method: str
    auc: float
    curve: pd.DataFrame
    n_prompts: int = 0
    auc_ci: tuple[float, float] | None = None
    n_boot: int = 0
    bootstrap_seed: int | None = None
    ci_level: float = 0.95

    def to_frame(self) -> pd.DataFrame:
        """The ROC table (a copy): n_edges, fpr, tpr."""
        return self.curve.copy()

    def plot(self, kind: str | None = "roc", **kwargs: Any) -> go.Figure:
        """`roc`: true against false positive rate, with the chance diagonal; the title and an
        annotation give the AUC with its bootstrap interval."""
        import plotly.graph_objects as go

        _check_kind(kind, self.plot_kinds)
        interval = ci_text(self.auc_ci, self.ci_level, self.n_boot)
        fig = go.Figure(go.Scatter(x=self.curve["fpr"], y=self.curve["tpr"], mode="lines"))
        fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot"}, name="chance")
        fig.add_annotation(
            x=0.98,
            y=0.02,
            xanchor="right",
            yanchor="bottom",
            showarrow=False,
            text=f"AUC {self.auc:.3f}{interval}",
        )
        fig.update_layout(
            title=f"{self.model_name} ({self.method or 'scores'}): ROC, AUC {self.auc:.3f}"
            + interval,
            xaxis_title="false positive rate",
            yaxis_title="true positive rate",
            showlegend=False,
            **kwargs,
        )
        return fig
