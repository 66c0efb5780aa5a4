"""`UniversalAttackResult`: one universal span evaluated on held-out prompts, beside random spans.

What `UniversalAttack(...).fit(model, search).evaluate(model, held_out)` returns and the run
store files under kind "universal_attack": the learned span (token ids and text), how it was
found (search prompt count and task seed, steps used, mean search loss per step, search success
rate), one row per held-out prompt (`prompts`: metric and success with the initial span and
with the learned span, targeted heads' entropy), the random-span baseline on the same prompts
(`baseline`, one row per prompt as `analysis.attacks.baseline.random_baseline` gives it; None
when it was turned off) and success rates with 95% percentile bootstrap intervals over the
held-out prompts (`success`, `success_before`, `baseline_rate`, `baseline_any`; each a dict
with `estimate`, `low`, `high`, `level`, `n_boot`, `seed`, `n_prompts`, `n_nonfinite`, the
fields of `circuits.bootstrap.Interval.to_dict()`).

The intervals are computed with `bootstrap_mean_interval` (`analysis.steering`), the analysis
layer's copy of `circuits.bootstrap.bootstrap_interval`'s resampling (this layer may not import
`circuits`): same seeded row draws, same quantiles, hence the same numbers for the same seed.

A stored payload is checked when it is read back (`__post_init__`): wrong types, a span whose
ids and length disagree, rates or interval bounds outside [0, 1], or
a success rate that is not the mean of the per-prompt rows raise `ValueError` naming the field,
so a corrupt or forged `result.json` is refused (`RunStore.load_result` names the file).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from analysis.steering.head_search_result import bootstrap_mean_interval
from workbench.heads import Head
from workbench.results import Result

if TYPE_CHECKING:
    import plotly.graph_objects as go

LEVEL = 0.95
PROMPT_COLUMNS = ("index", "metric_before", "metric_after", "success_before", "success")
BASELINE_COLUMNS = ("index", "draws", "successes", "rate", "any_success")
INTERVAL_KEYS = ("estimate", "low", "high", "level", "n_boot", "seed", "n_prompts")
RATE_LABELS = {
    "success": "universal span (held-out)",
    "success_before": "initial span (held-out)",
    "baseline_rate": "random span (one draw)",
    "baseline_any": "random spans (any of the draws)",
}


def rate_interval(values, *, n_boot: int, seed: int = 0) -> dict[str, Any]:
    """Mean of per-prompt `values` (0/1 successes or rates) with its 95% percentile bootstrap
    interval over prompts, in `circuits.bootstrap.Interval.to_dict()` form."""
    array = np.asarray(values, dtype=np.float64)  # [prompt]
    estimate, low, high = bootstrap_mean_interval(array, n_boot=n_boot, seed=seed, level=LEVEL)
    return {
        "estimate": estimate,
        "low": low,
        "high": high,
        "level": LEVEL,
        "n_boot": int(n_boot),
        "seed": int(seed),
        "n_prompts": len(array),
        "n_nonfinite": 0,
    }


def _bad(field: str, problem: str) -> ValueError:
    return ValueError(f"universal attack result: {field}: {problem}")


def _count(field: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _bad(field, f"need an integer >= {low}, got {value!r}")


def _check_interval(field: str, ci: Any, n_prompts: int, mean: float | None) -> None:
    if not isinstance(ci, dict) or any(k not in ci for k in INTERVAL_KEYS):
        raise _bad(field, f"need an interval with {', '.join(INTERVAL_KEYS)}")
    numbers = [ci[k] for k in ("estimate", "low", "high", "level")]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
        raise _bad(field, "estimate, low, high and level must be numbers")
    estimate, low, high = float(ci["estimate"]), float(ci["low"]), float(ci["high"])
    if not 0.0 <= estimate <= 1.0:
        raise _bad(field, f"rate {estimate!r} is outside [0, 1]")
    if not (math.isnan(low) and math.isnan(high)) and not 0.0 <= low <= high <= 1.0:
        raise _bad(field, f"interval [{low}, {high}] is not a range of rates in [0, 1]")
    if ci["n_prompts"] != n_prompts:
        raise _bad(field, f"n_prompts {ci['n_prompts']!r} differs from the {n_prompts} rows")
    if mean is not None and abs(estimate - mean) > 1e-9:
        raise _bad(field, f"estimate {estimate} is not the per-prompt mean {mean}")


def _check_frame(field: str, frame: Any, columns: tuple[str, ...]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise _bad(field, f"need a table, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise _bad(field, f"missing column(s) {', '.join(missing)}")
    if frame.empty:
        raise _bad(field, "no rows")


@dataclass(frozen=True)
class UniversalAttackResult(Result):
    """A universal span and its held-out evaluation beside the random baseline (module doc)."""

    kind: ClassVar[str] = "universal_attack"
    plot_kinds: ClassVar[tuple[str, ...]] = ("rates", "metric", "loss")
    model_name: str
    objective: str
    heads: tuple[Head, ...]  # stored as [layer, head] pairs, read back as `Head`s
    config: dict  # attack options, prompt counts and seeds, baseline draws, bootstrap settings
    span_tokens: tuple[int, ...]  # [n_adv] token ids of the learned span
    span_text: str
    n_search: int
    search_seed: int | None  # task seed of the search prompts (None: not given)
    held_out_seed: int | None  # task seed of the held-out prompts (None: not given)
    steps_used: int
    search_success_rate: float
    curve: tuple[float, ...]  # mean search loss per step (first: the initial span)
    prompts: pd.DataFrame  # one row per held-out prompt (see `UniversalAttack.evaluate`)
    success: dict  # held-out success rate with the learned span, with its interval
    success_before: dict  # held-out success rate with the initial span, with its interval
    baseline: pd.DataFrame | None = None  # random_baseline rows (None: no baseline)
    baseline_rate: dict | None = None  # mean per-draw success rate of random spans
    baseline_any: dict | None = None  # share of prompts where any random draw succeeded

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", tuple(Head.parse(h) for h in self.heads))
        object.__setattr__(self, "span_tokens", tuple(self.span_tokens))
        object.__setattr__(self, "curve", tuple(self.curve))
        for name in ("model_name", "objective", "span_text"):
            if not isinstance(getattr(self, name), str):
                raise _bad(name, "need text")
        if not isinstance(self.config, dict):
            raise _bad("config", "need an object")
        if not self.span_tokens:
            raise _bad("span_tokens", "empty span")
        for token in self.span_tokens:
            _count("span_tokens", token, 0)
        _count("n_search", self.n_search, 1)
        _count("steps_used", self.steps_used, 0)
        for name in ("search_seed", "held_out_seed"):
            if getattr(self, name) is not None:
                _count(name, getattr(self, name), 0)
        rate = self.search_success_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise _bad("search_success_rate", f"need a rate in [0, 1], got {rate!r}")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in self.curve):
            raise _bad("curve", "need numbers")
        if len(self.curve) != self.steps_used + 1:
            raise _bad("curve", f"{len(self.curve)} values for {self.steps_used} steps")
        _check_frame("prompts", self.prompts, PROMPT_COLUMNS)
        n = len(self.prompts)
        _check_interval("success", self.success, n, float(self.prompts["success"].mean()))
        before = float(self.prompts["success_before"].mean())
        _check_interval("success_before", self.success_before, n, before)
        parts = (self.baseline, self.baseline_rate, self.baseline_any)
        if any(p is None for p in parts) and any(p is not None for p in parts):
            raise _bad("baseline", "the baseline table and its two rates come together")
        if self.baseline is not None:
            _check_frame("baseline", self.baseline, BASELINE_COLUMNS)
            if list(self.baseline["index"]) != list(self.prompts["index"]):
                raise _bad("baseline", "its prompts are not the held-out prompts")
            mean_rate = float(self.baseline["rate"].mean())
            _check_interval("baseline_rate", self.baseline_rate, n, mean_rate)
            any_rate = float(self.baseline["any_success"].mean())
            _check_interval("baseline_any", self.baseline_any, n, any_rate)

    @property
    def n_held_out(self) -> int:
        """Number of held-out prompts the span was evaluated on."""
        return len(self.prompts)

    @property
    def success_rate(self) -> float:
        """Held-out success rate of the learned span (0..1)."""
        return float(self.success["estimate"])

    def rates(self) -> pd.DataFrame:
        """One row per rate: `name`, `label`, `estimate`, `low`, `high`, `level`, `n_prompts`
        (the held-out rates, then the random baseline's when there is one)."""
        rows = []
        for name, label in RATE_LABELS.items():
            ci = getattr(self, name)
            if ci is not None:
                rows.append({"name": name, "label": label, **{k: ci[k] for k in INTERVAL_KEYS}})
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, Any]:
        """JSON-ready headline numbers (what `workbench attack --universal --json` prints)."""
        frame = self.prompts

        def mean_or_none(column: str) -> float | None:
            value = float(frame[column].mean()) if column in frame else math.nan
            return None if math.isnan(value) else value

        out = {
            "model": self.model_name,
            "objective": self.objective,
            "heads": [str(h) for h in self.heads],
            "mode": "universal",
            "span": self.span_text,
            "span_tokens": list(self.span_tokens),
            "steps_used": self.steps_used,
            "n_search": self.n_search,
            "search_seed": self.search_seed,
            "search_success_rate": self.search_success_rate,
            "n_prompts": self.n_held_out,
            "held_out_seed": self.held_out_seed,
            "success": dict(self.success),
            "success_before": dict(self.success_before),
            "metric_before_mean": mean_or_none("metric_before"),
            "metric_after_mean": mean_or_none("metric_after"),
            "entropy_before_mean": mean_or_none("entropy_before"),
            "entropy_after_mean": mean_or_none("entropy_after"),
            "curve": list(self.curve),
            "prompts": frame.to_dict(orient="records"),
        }
        if self.baseline is not None:
            out["baseline"] = {
                "draws_per_prompt": int(self.baseline["draws"].iloc[0]),
                "success_rate_per_draw": dict(self.baseline_rate),
                "any_of_draws_success_rate": dict(self.baseline_any),
                "metric_mean": float(self.baseline["metric_mean"].mean()),
            }
        return out

    def to_frame(self) -> pd.DataFrame:
        return self.prompts

    def tables(self) -> dict[str, pd.DataFrame]:
        tables = {"main": self.prompts, "rates": self.rates()}
        if self.baseline is not None:
            tables["baseline"] = self.baseline
        return tables

    def plot(self, kind: str | None = None, **kwargs: Any) -> go.Figure:
        """`rates` (default): success rates (horizontal bars) with their 95% intervals as
        error bars; `metric`: task metric per held-out prompt with the initial and the learned
        span; `loss`: mean search loss per step."""
        import plotly.express as px
        import plotly.graph_objects as go

        kind = kind or "rates"
        title = f"{self.model_name}: universal {self.objective} span {self.span_text!r}"
        if kind == "rates":
            table = self.rates()
            fig = go.Figure(
                go.Bar(
                    x=table["estimate"],
                    y=table["label"],
                    orientation="h",
                    error_x={
                        "type": "data",
                        "symmetric": False,
                        "array": table["high"] - table["estimate"],
                        "arrayminus": table["estimate"] - table["low"],
                    },
                    text=[f"{v:.0%}" for v in table["estimate"]],
                    name="success rate",
                )
            )
            level = int(round(100 * LEVEL))
            title += (
                f"<br><sup>error bars: {level}% percentile bootstrap intervals over "
                f"{self.n_held_out} held-out prompts</sup>"
            )
            fig.update_layout(
                xaxis_title="success rate (share of held-out prompts)",
                xaxis_range=[0, 1.05],
                xaxis_tickformat=".0%",
                yaxis_autorange="reversed",
            )
        elif kind == "metric":
            frame = self.prompts.melt(
                id_vars="index", value_vars=["metric_before", "metric_after"], var_name="stage"
            )
            fig = px.bar(frame, x="index", y="value", color="stage", barmode="group")
            fig.update_layout(xaxis_title="held-out prompt", yaxis_title="task metric")
        elif kind == "loss":
            fig = go.Figure(go.Scatter(y=list(self.curve), mode="lines+markers", name="loss"))
            fig.update_layout(xaxis_title="step", yaxis_title="mean search loss")
        else:
            raise ValueError(f"kind: unknown plot {kind!r}; choose rates, metric or loss")
        fig.update_layout(title=title, **kwargs)
        return fig


__all__ = ["UniversalAttackResult", "rate_interval"]
