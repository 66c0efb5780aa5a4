"""`circuits.bootstrap`: the percentile bootstrap over prompts, checked against references
outside it (a naive loop with Python's own indexing, scipy's percentile bootstrap, the normal
approximation of a mean's interval) and for its documented choices (ratio of means, seeds)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from circuits.bootstrap import (
    bootstrap_interval,
    faithfulness_ratio,
    interval_from_samples,
    lost_share_ratio,
    resample_indices,
)


def test_matches_a_naive_percentile_loop():
    values = np.random.default_rng(1).normal(size=37)
    ci = bootstrap_interval(values, n_boot=300, seed=5)
    rng = np.random.default_rng(5)  # the documented draw: one [n_boot, n] integer array
    draws = rng.integers(0, 37, size=(300, 37))
    naive = sorted(sum(values[i] for i in row) / 37 for row in draws)
    # numpy's linear quantile at 2.5% of 300 sorted values: position 0.025 * 299 = 7.475
    low = naive[7] + 0.475 * (naive[8] - naive[7])
    high = naive[291] + 0.525 * (naive[292] - naive[291])
    assert ci.low == pytest.approx(low, abs=1e-12)
    assert ci.high == pytest.approx(high, abs=1e-12)
    assert ci.estimate == pytest.approx(values.mean())
    assert (ci.n_boot, ci.seed, ci.n_prompts, ci.level) == (300, 5, 37, 0.95)


def test_agrees_with_scipy_and_the_normal_interval_for_a_mean():
    values = np.random.default_rng(2).exponential(size=400)
    ci = bootstrap_interval(values, n_boot=4000, seed=0)
    ref = stats.bootstrap(
        (values,), np.mean, n_resamples=4000, method="percentile", random_state=0
    ).confidence_interval
    se = values.std(ddof=1) / math.sqrt(len(values))
    assert ci.low == pytest.approx(ref.low, abs=0.2 * se)
    assert ci.high == pytest.approx(ref.high, abs=0.2 * se)
    assert ci.low == pytest.approx(values.mean() - 1.96 * se, abs=0.25 * se)
    assert ci.high == pytest.approx(values.mean() + 1.96 * se, abs=0.25 * se)


def test_seeded_and_reproducible():
    values = torch.randn(25, generator=torch.Generator().manual_seed(0))
    a = bootstrap_interval(values, n_boot=50, seed=3)
    assert a == bootstrap_interval(values, n_boot=50, seed=3)
    assert a.bounds != bootstrap_interval(values, n_boot=50, seed=4).bounds
    assert (resample_indices(25, 50, 3) == resample_indices(25, 50, 3)).all()


def test_rows_stay_paired_and_ratio_is_of_means():
    # per prompt: (intervened, clean, corrupted); prompt 1 has a tiny gap and a huge ratio
    rows = np.array([[1.0, 2.0, 0.0], [0.5, 0.01, 0.0], [3.0, 4.0, 0.0]])
    ci = bootstrap_interval(rows, faithfulness_ratio, n_boot=100, seed=0)
    assert ci.estimate == pytest.approx((4.5 / 3) / (6.01 / 3))  # not mean(0.5, 50, 0.75)
    lost = bootstrap_interval(rows, lost_share_ratio, n_boot=100, seed=0)
    assert lost.estimate == pytest.approx(1 - ci.estimate)
    # a constant share across prompts gives a degenerate interval: pairs were not mixed
    paired = np.array([[0.5 * g, g, 0.0] for g in (1.0, 2.0, 5.0, 7.0)])
    tight = bootstrap_interval(paired, faithfulness_ratio, n_boot=100, seed=0)
    assert tight.low == pytest.approx(0.5) and tight.high == pytest.approx(0.5)


def test_nonfinite_resamples_give_nan_not_a_biased_interval():
    rows = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])  # prompt 0 alone has no gap
    ci = bootstrap_interval(rows, faithfulness_ratio, n_boot=200, seed=0)
    assert ci.n_nonfinite > 0 and math.isnan(ci.low) and math.isnan(ci.high)
    assert ci.estimate == pytest.approx(0.0)


def test_interval_from_samples():
    ci = interval_from_samples(0.5, np.arange(101.0), level=0.9, seed=2, n_prompts=7)
    assert (ci.low, ci.high) == pytest.approx((5.0, 95.0))
    assert (ci.n_boot, ci.n_prompts, ci.level) == (101, 7, 0.9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": []}, "values: need at least one prompt"),
        ({"values": [1.0, math.nan]}, "values: contains nan or inf"),
        ({"values": [["a"]]}, "values: need numbers"),
        ({"values": [1.0], "n_boot": 0}, "n_boot: need an integer >= 1"),
        ({"values": [1.0], "seed": -1}, "seed: need an integer >= 0"),
        ({"values": [1.0], "level": 1.0}, "level: need a number in"),
    ],
)
def test_bad_input_names_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_interval(**kwargs)


def test_rank_auc_of_resamples_matches_the_pairwise_definition():
    from circuits.evaluation import _auc

    gen = torch.Generator().manual_seed(0)
    values = torch.randint(0, 6, (5, 40), generator=gen).double()  # [row, edge], many ties
    mask = torch.zeros(40, dtype=torch.bool)
    mask[::3] = True
    for row, auc in zip(values, _auc(values, mask), strict=True):
        pos, neg = row[mask], row[~mask]
        pairwise = ((pos[:, None] > neg) + 0.5 * (pos[:, None] == neg)).double().mean()
        assert auc == pytest.approx(float(pairwise), abs=1e-12)
