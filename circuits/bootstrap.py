"""Percentile bootstrap over prompts: `bootstrap_interval(values, statistic, n_boot, seed)`.

The one resampling routine behind every interval the circuits package reports (faithfulness,
completeness, faithfulness curves, ROC AUC) and the one to use when rerunning benchmarks:

    from circuits.bootstrap import bootstrap_interval, ratio_of_means
    per_prompt = torch.stack([circuit, clean, corrupted], dim=1)  # [prompt, 3]
    ci = bootstrap_interval(per_prompt, faithfulness_ratio, n_boot=200, seed=0)
    ci.low, ci.high, ci.estimate

Method: `values` is `[prompt, ...]` (any trailing shape; rows are prompts, kept together so
paired per-prompt numbers stay paired). Each of `n_boot` resamples draws `n_prompts` row indices
uniformly with replacement (numpy `default_rng(seed)`, so a seed fixes every resample), applies
`statistic` to the resampled rows, and the interval is the (alpha/2, 1 - alpha/2) empirical
quantiles of those `n_boot` values (numpy's linear interpolation), alpha = 1 - `level`. The
estimate is `statistic` on the rows as given. This is the plain percentile bootstrap (Efron &
Tibshirani 1993, ch. 13), not BCa: with few prompts (< ~20) it undercovers.

Ratios: `faithfulness_ratio` is a ratio of means per resample, `(mean circuit - mean corrupted)
/ (mean clean - mean corrupted)` over the resampled prompts, the same estimator the point
value uses - not a mean of per-prompt ratios (which explodes on prompts with a tiny gap).

Caveats: a resample whose statistic is not finite (e.g. a resampled gap of exactly 0) makes the
interval `(nan, nan)` rather than silently dropping it; `n_nonfinite` says how many. The
interval reflects prompt-sampling noise only (the model and the method's own randomness are
fixed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

DEFAULT_N_BOOT = 200
DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval: `(low, high)` at `level`, from `n_boot` resamples of
    `n_prompts` prompts drawn with `seed`; `estimate` is the statistic on all prompts."""

    estimate: float
    low: float
    high: float
    level: float
    n_boot: int
    seed: int
    n_prompts: int
    n_nonfinite: int = 0

    @property
    def bounds(self) -> tuple[float, float]:
        """`(low, high)`."""
        return (self.low, self.high)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (floats may be nan)."""
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "level": self.level,
            "n_boot": self.n_boot,
            "seed": self.seed,
            "n_prompts": self.n_prompts,
            "n_nonfinite": self.n_nonfinite,
        }


def mean(values: np.ndarray) -> float:
    """Mean over prompts (the default statistic, for 1-D `values`)."""
    return float(np.mean(values))


def faithfulness_ratio(values: np.ndarray) -> float:
    """Ratio of means for `values` `[prompt, 3]` = (intervened, clean, corrupted) per prompt:
    `(mean intervened - mean corrupted) / (mean clean - mean corrupted)` (faithfulness)."""
    intervened, clean, corrupted = values.mean(axis=0)
    gap = clean - corrupted
    return float((intervened - corrupted) / gap) if gap != 0 else math.nan


def lost_share_ratio(values: np.ndarray) -> float:
    """Ratio of means for `values` `[prompt, 3]` = (intervened, clean, corrupted) per prompt:
    `(mean clean - mean intervened) / (mean clean - mean corrupted)` (completeness)."""
    intervened, clean, corrupted = values.mean(axis=0)
    gap = clean - corrupted
    return float((clean - intervened) / gap) if gap != 0 else math.nan


def resample_indices(n_prompts: int, n_boot: int, seed: int) -> np.ndarray:
    """The `[n_boot, n_prompts]` row indices every resample uses, fixed by `seed`."""
    _check_count("n_prompts", n_prompts)
    _check_count("n_boot", n_boot)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed: need an integer >= 0, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    return rng.integers(0, n_prompts, size=(n_boot, n_prompts))  # [n_boot, n_prompts]


def bootstrap_interval(
    values: torch.Tensor | np.ndarray | list[float],
    statistic: Callable[[np.ndarray], float] = mean,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    *,
    level: float = DEFAULT_LEVEL,
) -> Interval:
    """Percentile bootstrap interval of `statistic` over the rows (prompts) of `values`.

    `values`: `[prompt, ...]` numbers (torch, numpy or a list); `statistic(rows) -> float` gets
    a float64 numpy array of the same trailing shape (default: the mean of 1-D values).
    See the module docstring for the method and caveats.
    """
    array = _as_array(values)
    if not (isinstance(level, float | int) and not isinstance(level, bool) and 0 < level < 1):
        raise ValueError(f"level: need a number in (0, 1), got {level!r}")
    indices = resample_indices(array.shape[0], n_boot, seed)  # [n_boot, n_prompts]
    stats = np.array([statistic(array[rows]) for rows in indices], dtype=np.float64)  # [n_boot]
    return _interval(float(statistic(array)), stats, level, n_boot, int(seed), array.shape[0])


def interval_from_samples(
    estimate: float, samples: np.ndarray, *, level: float, seed: int, n_prompts: int
) -> Interval:
    """An `Interval` from precomputed bootstrap statistics `samples` `[n_boot]` (for callers
    that vectorise the resamples themselves over `resample_indices`)."""
    samples = np.asarray(samples, dtype=np.float64)
    return _interval(float(estimate), samples, level, len(samples), seed, n_prompts)


def _interval(
    estimate: float, stats: np.ndarray, level: float, n_boot: int, seed: int, n_prompts: int
) -> Interval:
    finite = np.isfinite(stats)
    bad = int((~finite).sum())
    if bad:
        low = high = math.nan
    else:
        alpha = 1.0 - level
        low, high = (float(q) for q in np.quantile(stats, [alpha / 2, 1 - alpha / 2]))
    return Interval(
        estimate=estimate,
        low=low,
        high=high,
        level=float(level),
        n_boot=n_boot,
        seed=seed,
        n_prompts=n_prompts,
        n_nonfinite=bad,
    )


def _as_array(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("values: need numbers with one row per prompt") from None
    if array.ndim == 0 or array.shape[0] == 0:
        raise ValueError(
            f"values: need at least one prompt (a [prompt, ...] array), got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError("values: contains nan or inf")
    return array


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: need an integer >= 1, got {value!r}")


__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_N_BOOT",
    "Interval",
    "bootstrap_interval",
    "faithfulness_ratio",
    "interval_from_samples",
    "lost_share_ratio",
    "mean",
    "resample_indices",
]
