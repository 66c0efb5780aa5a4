"""`HeadSearchResult`: what `HeadHunter.fit` found, and percentile-bootstrap intervals.

The result holds the greedy search history (select split), the per-layer scores, the mean
score per split and setting, and every held-out prompt's score per setting (no guidance, the
searched heads, layer-level guidance, random heads per draw), so `intervals()` can give
percentile-bootstrap intervals over held-out prompts without recomputing anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from workbench.heads import Head
from workbench.results import Result

if TYPE_CHECKING:
    import plotly.graph_objects as go


def bootstrap_mean_interval(
    values: np.ndarray, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap over the prompts (rows) of `values` `[prompt]`:
    `n_boot` resamples of row indices with replacement (`numpy.random.default_rng(seed)`),
    the interval is the (alpha/2, 1-alpha/2) quantiles of the resampled means (the same
    resampling as `circuits.bootstrap.bootstrap_interval`, which this layer may not import)."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(values), size=(n_boot, len(values)))  # [n_boot, prompt]
    means = values[rows].mean(axis=1)  # [n_boot]
    alpha = 1.0 - level
    if not np.isfinite(means).all():
        return float(values.mean()), float("nan"), float("nan")
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(values.mean()), float(low), float(high)


SETTINGS = ("no_guidance", "searched_heads", "layer_guidance", "random_heads")


@dataclass(frozen=True)
class HeadSearchResult(Result):
    """Greedy search history, layer baselines and held-out comparison of guidance settings.

    `heldout_scores` (long: setting, draw, row, score) holds every held-out prompt's score per
    setting (`draw` numbers the random-head draws, -1 elsewhere); `comparison` the means per
    split and setting (random heads: mean over prompts and draws); `inflated` marks an
    objective that guidance raises by construction (`ioi_logit_diff`)."""

    kind: ClassVar[str] = "head_search"
    plot_kinds: ClassVar[tuple[str, ...]] = ("comparison", "history")
    model_name: str
    objective: str
    method: str
    u: float
    w: float
    alpha: float
    heads: tuple[Head, ...]  # stored as [layer, head] pairs, read back as `Head`s
    best_layer: int
    history: pd.DataFrame  # round, layer, head, score (select split), chosen
    layers: pd.DataFrame  # layer, select, heldout
    comparison: dict = field(default_factory=dict)  # {split: {setting: mean score}}
    inflated: bool = False
    heldout_scores: pd.DataFrame | None = None  # setting, draw, row, score
    random_heads: tuple[str, ...] = ()  # each draw's heads, "L0H1,L1H2"

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", tuple(Head.parse(h) for h in self.heads))

    def to_frame(self) -> pd.DataFrame:
        return self.history

    def per_prompt(self) -> pd.DataFrame:
        """`[row x setting]` held-out scores; random heads averaged over the draws per prompt."""
        if self.heldout_scores is None or self.heldout_scores.empty:
            raise ValueError("heldout_scores: this result has no per-prompt held-out scores")
        table = self.heldout_scores.pivot_table(
            index="row", columns="setting", values="score", aggfunc="mean"
        )
        return table[[s for s in SETTINGS if s in table.columns]]

    def intervals(self, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
        """Percentile-bootstrap intervals over held-out prompts (`bootstrap_mean_interval`):
        per setting the mean score, and the paired difference setting - no_guidance."""
        table = self.per_prompt()
        rows = []
        for setting in table.columns:
            mean, low, high = bootstrap_mean_interval(
                table[setting].to_numpy(), n_boot=n_boot, seed=seed, level=level
            )
            diff = table[setting].to_numpy() - table["no_guidance"].to_numpy()
            d_mean, d_low, d_high = bootstrap_mean_interval(
                diff, n_boot=n_boot, seed=seed, level=level
            )
            rows.append(
                {
                    "setting": setting,
                    "n_prompts": len(table),
                    "mean": mean,
                    "low": low,
                    "high": high,
                    "diff_vs_none": d_mean,
                    "diff_low": d_low,
                    "diff_high": d_high,
                }
            )
        return pd.DataFrame(rows)

    def tables(self) -> dict[str, pd.DataFrame]:
        rows = [
            {"split": split, "setting": setting, "score": score}
            for split, scores in self.comparison.items()
            for setting, score in scores.items()
        ]
        tables = {"main": self.history, "layers": self.layers, "comparison": pd.DataFrame(rows)}
        if self.heldout_scores is not None:
            tables["heldout_scores"] = self.heldout_scores
        return tables

    def plot(self, kind: str | None = None, **kwargs: Any) -> go.Figure:
        """`comparison` (default): held-out score per setting; `history`: candidate scores."""
        import plotly.express as px

        kind = kind or "comparison"
        if kind == "comparison":
            frame = self.tables()["comparison"]
            fig = px.bar(frame, x="setting", y="score", color="split", barmode="group")
        elif kind == "history":
            frame = self.history.assign(
                head_name=lambda d: [
                    str(Head(layer, head))
                    for layer, head in zip(d["layer"], d["head"], strict=True)
                ]
            )
            fig = px.scatter(frame, x="head_name", y="score", color="round", symbol="chosen")
        else:
            raise ValueError(f"kind: unknown plot {kind!r}; choose comparison or history")
        note = " (inflated by construction)" if self.inflated else ""
        fig.update_layout(
            title=f"{self.model_name}: head search on {self.objective}{note}", **kwargs
        )
        return fig


__all__ = ["SETTINGS", "HeadSearchResult", "bootstrap_mean_interval"]
