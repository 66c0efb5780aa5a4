"""sigma-Reparam's lower bound on attention entropy (Zhai et al. 2023, arXiv 2303.06296).

The paper's theorem: for attention over T keys with logits `a_ij = x_i^T W x_j` (the paper's W is
`W_K W_Q^T`, with the 1/sqrt(d) scale absorbed), let `sigma = ||W||_2 ||X X^T||_2`. Then every
query row's attention entropy (nats) satisfies

    Ent(A_i) >= log(1 + (T-1) e^{-alpha}) + alpha (T-1) e^{-alpha} / (1 + (T-1) e^{-alpha}),
    alpha = sigma * sqrt(T / (T-1)),

equivalently `sigma sqrt(T(T-1)) e^{-alpha} / (1 + (T-1) e^{-alpha})` for the second term. The
proof only uses that the row's logit vector z has `||z||_2 <= sigma` (and `||X W^T x_i|| <=
||W|| ||X||^2 = ||W|| ||XX^T||`); the bound is the entropy of the extremal row that puts one
logit `alpha` above T-1 equal others, so it is tight. `entropy_lower_bound` is that function;
T = 1 gives 0 (one key, entropy 0).

Since softmax ignores a constant shift and the bound decreases in sigma, any sigma that bounds
`||z - c||_2` for some constant c is also valid; `row_sigma` uses the row's own centred logits
(the proof's inequality applied to the row itself: a labelled variant, the tightest of the
three the workbench reports).
"""

from __future__ import annotations

import numpy as np


def entropy_lower_bound(sigma: np.ndarray | float, n_keys: np.ndarray | int) -> np.ndarray:
    """The theorem's bound (nats) for logit spectral norm `sigma` over `n_keys` keys.

    Broadcasts; ValueError for a negative or non-finite sigma or fewer than one key.
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    keys = np.asarray(n_keys, dtype=np.float64)
    if not np.all(np.isfinite(sigma)) or np.any(sigma < 0):
        raise ValueError("sigma: expected finite values >= 0")
    if not np.all(np.isfinite(keys)) or np.any(keys < 1) or np.any(keys != np.round(keys)):
        raise ValueError("n_keys: expected whole numbers >= 1")
    sigma, keys = np.broadcast_arrays(sigma, keys)
    out = np.zeros(sigma.shape)
    many = keys > 1
    alpha = sigma[many] * np.sqrt(keys[many] / (keys[many] - 1))
    mass = (keys[many] - 1) * np.exp(-alpha)  # (T-1) e^{-alpha}
    out[many] = np.log1p(mass) + alpha * mass / (1 + mass)
    return out


def prefix_spectral_norms(matrix: np.ndarray) -> np.ndarray:
    """`[T]` spectral norms of the leading blocks `matrix[:i+1, :i+1]` of a `[T, T]` matrix."""
    return np.array(
        [np.linalg.norm(matrix[: i + 1, : i + 1], 2) for i in range(matrix.shape[0])]
    )  # [T]


def prefix_gram_norms(x: np.ndarray) -> np.ndarray:
    """`[T]` values `||X_{:i+1} X_{:i+1}^T||_2` (= the squared spectral norm of the prefix)."""
    gram = x @ x.T  # [T, T]
    return np.array(
        [np.linalg.eigvalsh(gram[: i + 1, : i + 1])[-1] for i in range(gram.shape[0])]
    )  # [T]


def row_sigma(logits: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """`[..., T]` norms of each row's visible logits minus their mean (`visible`: bool mask)."""
    count = visible.sum(-1, keepdims=True)  # [..., T, 1]
    z = np.where(visible, logits, 0.0)
    centred = np.where(visible, z - z.sum(-1, keepdims=True) / count, 0.0)
    return np.sqrt((centred**2).sum(-1))


def row_entropy(pattern: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row of an attention pattern, float64 (0 log 0 = 0)."""
    p = np.asarray(pattern, dtype=np.float64)
    safe = np.where(p > 0, p, 1.0)
    return -(np.where(p > 0, p * np.log(safe), 0.0)).sum(-1)


__all__ = [
    "entropy_lower_bound",
    "prefix_gram_norms",
    "prefix_spectral_norms",
    "row_entropy",
    "row_sigma",
]
