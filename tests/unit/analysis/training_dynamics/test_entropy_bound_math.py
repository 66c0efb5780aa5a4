"""sigma-Reparam's entropy bound on synthetic logits: tight at the extremal row, never above
the entropy of any row with ||z|| <= sigma (random rows and a numerical minimiser), the right
limits (sigma = 0 gives log T, one key gives 0) and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from analysis.training_dynamics import bound_math as bm


def _entropy(z: np.ndarray) -> float:
    p = np.exp(z - z.max())
    p /= p.sum()
    return float(-(p * np.log(p)).sum())


@pytest.mark.parametrize(("sigma", "keys"), [(0.5, 2), (2.0, 5), (7.0, 16), (30.0, 40)])
def test_bound_is_attained_by_the_extremal_row(sigma, keys):
    # one logit sigma sqrt((T-1)/T), the other T-1 at -sigma / sqrt(T (T-1)): norm sigma
    z = np.full(keys, -sigma / np.sqrt(keys * (keys - 1)))
    z[0] = sigma * np.sqrt((keys - 1) / keys)
    assert np.linalg.norm(z) == pytest.approx(sigma)
    assert bm.entropy_lower_bound(sigma, keys) == pytest.approx(_entropy(z), rel=1e-10)


@pytest.mark.parametrize("keys", [2, 3, 8, 33])
def test_no_row_within_the_norm_goes_below_the_bound(keys):
    rng = np.random.default_rng(keys)
    for sigma in (0.3, 1.5, 4.0, 12.0):
        bound = float(bm.entropy_lower_bound(sigma, keys))
        rows = rng.normal(size=(500, keys))
        rows *= sigma * rng.uniform(0, 1, (500, 1)) / np.linalg.norm(rows, axis=1, keepdims=True)
        assert min(_entropy(z) for z in rows) >= bound - 1e-12
        # a local minimiser on the sphere ||z|| = sigma from random starts
        for start in rows[:2]:
            found = minimize(
                lambda v, s=sigma: _entropy(s * v / np.linalg.norm(v)), start, method="Nelder-Mead"
            )
            assert found.fun >= bound - 1e-9


def test_limits_monotonicity_and_broadcasting():
    keys = np.array([1, 2, 10, 100])
    np.testing.assert_allclose(bm.entropy_lower_bound(0.0, keys), np.log(keys))
    assert bm.entropy_lower_bound(50.0, 1) == 0.0
    sigmas = np.linspace(0, 40, 200)
    values = bm.entropy_lower_bound(sigmas, 12)
    assert np.all(np.diff(values) < 0) and values[-1] < 1e-12
    assert bm.entropy_lower_bound(np.ones((3, 4)), np.array([1, 2, 3, 4])).shape == (3, 4)


def test_prefix_norms_and_row_sigma():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4))
    gram = bm.prefix_gram_norms(x)
    for i in range(6):
        assert gram[i] == pytest.approx(np.linalg.norm(x[: i + 1], 2) ** 2)
    m = rng.normal(size=(6, 6))
    np.testing.assert_allclose(
        bm.prefix_spectral_norms(m), [np.linalg.norm(m[: i + 1, : i + 1], 2) for i in range(6)]
    )
    visible = np.tril(np.ones((6, 6), bool))
    sig = bm.row_sigma(m, visible)
    assert sig[0] == 0.0
    assert sig[3] == pytest.approx(np.linalg.norm(m[3, :4] - m[3, :4].mean()))
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(bm.row_entropy(p), [0.0, np.log(2)])


@pytest.mark.parametrize(
    ("sigma", "keys", "message"),
    [
        (-1.0, 3, "sigma: expected finite values >= 0"),
        (np.nan, 3, "sigma: expected finite values >= 0"),
        (1.0, 0, "n_keys: expected whole numbers >= 1"),
        (1.0, 2.5, "n_keys: expected whole numbers >= 1"),
    ],
)
def test_bad_arguments_are_named(sigma, keys, message):
    with pytest.raises(ValueError, match=message):
        bm.entropy_lower_bound(sigma, keys)
