"""Small float64 linear-algebra helpers for the head-anatomy analyses.

- `factored_svd(left, right)`: the thin SVD of `left @ right` through TransformerLens'
  `FactoredMatrix` (never forms the product's SVD on the full matrix), with a deterministic
  sign convention (each left singular vector's largest-magnitude entry is positive, the right
  vector flipped with it), so the same weights always give the same components.
- `effective_ranks(s)`: the entropy effective rank `exp(H(s / sum s))` (Roy & Vetterli 2007)
  and the number of components holding 90% of the energy `sum s^2`.
- `fewest_reaching(terms, share)`: the sparse-attention-decomposition selection.
"""

from __future__ import annotations

import numpy as np
import torch
from transformer_lens import FactoredMatrix


def factored_svd(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(U [m, r], S [r], V [n, r])` with `U @ diag(S) @ V.T == left @ right`, float64.

    `left` is `[m, r]`, `right` is `[r, n]`; singular values are in decreasing order.
    """
    a = torch.as_tensor(np.asarray(left, dtype=np.float64))
    b = torch.as_tensor(np.asarray(right, dtype=np.float64))
    u, s, v = FactoredMatrix(a, b).svd()  # [m, r], [r], [n, r]
    u, s, v = u.numpy().copy(), s.numpy().copy(), v.numpy().copy()
    order = np.argsort(-s, kind="stable")
    u, s, v = u[:, order], s[order], v[:, order]
    pivot = np.abs(u).argmax(0)  # [r]
    signs = np.sign(u[pivot, np.arange(u.shape[1])])  # [r]
    signs[signs == 0] = 1.0
    return u * signs, s, v * signs


def effective_ranks(singular_values: np.ndarray, *, energy: float = 0.9) -> dict[str, float]:
    """`entropy_rank` = exp of the entropy of s / sum(s); `energy_rank` = fewest components
    whose s^2 reach `energy` of the total (0 for an all-zero spectrum)."""
    s = np.asarray(singular_values, dtype=np.float64)
    total = s.sum()
    if total <= 0:
        return {"entropy_rank": 0.0, "energy_rank": 0}
    p = s[s > 0] / total
    entropy_rank = float(np.exp(-(p * np.log(p)).sum()))
    cumulative = np.cumsum(s**2) / (s**2).sum()
    energy_rank = int(np.searchsorted(cumulative, energy - 1e-12) + 1)
    return {"entropy_rank": entropy_rank, "energy_rank": energy_rank}


def fewest_reaching(terms: np.ndarray, share: float) -> list[int]:
    """Indices of the fewest terms whose sum reaches `share` of `sum(terms)`.

    Terms are taken greedily in decreasing order of their signed contribution in the
    direction of the total (which is optimal for reaching a threshold on the sum); if the
    total is 0 no term is needed. Returned in the order they were taken.
    """
    if not 0 < share <= 1:
        raise ValueError(f"share: must be in (0, 1], got {share}")
    terms = np.asarray(terms, dtype=np.float64)
    total = terms.sum()
    if total == 0:
        return []
    direction = np.sign(total)
    order = np.argsort(-(terms * direction), kind="stable")
    cumulative = np.cumsum(terms[order] * direction)  # [d_head]
    target = share * abs(total)
    count = int(np.argmax(cumulative >= target * (1 - 1e-12)) + 1)  # first prefix reaching it
    return [int(i) for i in order[:count]]
