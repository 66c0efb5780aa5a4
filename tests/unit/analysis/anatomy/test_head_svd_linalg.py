"""Unit tests of the head-anatomy linear algebra: factored SVD against numpy, effective ranks,
and the sparse-decomposition selection rule."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.anatomy.linalg import effective_ranks, factored_svd, fewest_reaching
from workbench.adapters.weights import rotation_matrices


@pytest.mark.parametrize(("m", "r", "n"), [(9, 3, 7), (65, 16, 65), (20, 20, 5)])
def test_factored_svd_matches_numpy(m, r, n):
    rng = np.random.default_rng(m + r + n)
    left, right = rng.normal(size=(m, r)), rng.normal(size=(r, n))
    u, s, v = factored_svd(left, right)
    k = min(m, r, n)
    reference = np.linalg.svd(left @ right, compute_uv=False)[:k]
    np.testing.assert_allclose(s[:k], reference, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(u @ np.diag(s) @ v.T, left @ right, atol=1e-10)
    np.testing.assert_allclose(u[:, :k].T @ u[:, :k], np.eye(k), atol=1e-10)
    np.testing.assert_allclose(v[:, :k].T @ v[:, :k], np.eye(k), atol=1e-10)
    assert np.all(np.diff(s) <= 1e-12)
    assert np.all(u[np.abs(u).argmax(0), np.arange(u.shape[1])] > 0)  # sign convention


def test_effective_ranks_of_known_spectra():
    flat = effective_ranks(np.ones(8))
    assert flat["entropy_rank"] == pytest.approx(8.0)
    assert flat["energy_rank"] == 8  # 90% of 8 equal energies needs 8 (7/8 < 0.9)
    spike = effective_ranks(np.array([10.0, 0.0, 0.0]))
    assert spike == {"entropy_rank": pytest.approx(1.0), "energy_rank": 1}
    assert effective_ranks(np.array([3.0, 1.0]))["energy_rank"] == 1  # 9/10 reaches 90%
    assert effective_ranks(np.zeros(4)) == {"entropy_rank": 0.0, "energy_rank": 0}


def test_fewest_reaching_picks_the_minimal_signed_set():
    terms = np.array([1.0, 5.0, -2.0, 3.0, 0.5])  # total 7.5, 70% = 5.25
    assert fewest_reaching(terms, 0.7) == [1, 3]
    assert fewest_reaching(terms, 0.6) == [1]  # 5 >= 4.5
    assert fewest_reaching(-terms, 0.7) == [1, 3]  # negative score: same magnitudes
    assert fewest_reaching(terms, 1.0) == [1, 3]  # 8 >= 7.5: the rest cancels out
    assert fewest_reaching(np.array([1.0, 1.0, 1.0]), 1.0) == [0, 1, 2]
    assert fewest_reaching(np.zeros(3), 0.7) == []
    with pytest.raises(ValueError, match="share"):
        fewest_reaching(terms, 0.0)


def test_rotation_matrices_match_rotate_half():
    rng = np.random.default_rng(0)
    d_head, pos = 8, 5
    theta = rng.uniform(0, 6, size=(pos, d_head // 2))
    cos = np.cos(np.concatenate([theta, theta], -1))  # [pos, d_head]
    sin = np.sin(np.concatenate([theta, theta], -1))
    q = rng.normal(size=(pos, d_head))
    rotate_half = np.concatenate([-q[:, d_head // 2 :], q[:, : d_head // 2]], -1)
    expected = q * cos + rotate_half * sin
    got = np.einsum("pd,pde->pe", q, rotation_matrices(cos, sin))
    np.testing.assert_allclose(got, expected, atol=1e-12)
    r = rotation_matrices(cos, sin)
    np.testing.assert_allclose(r[2] @ r[2].T, np.eye(d_head), atol=1e-12)  # orthogonal
