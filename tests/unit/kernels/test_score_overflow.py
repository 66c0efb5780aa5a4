"""Scores too large for a float32 softmax are refused by every backend; the largest accepted
ones still give exact statistics (a NaN or a wrong entropy is never returned silently)."""

from __future__ import annotations

import math

import pytest
import torch

from kernels import attention_with_stats
from kernels.contract import SCORE_LIMIT

BACKENDS = ("chunked", "triton", "reference")


def _device(backend: str, request) -> str:
    """The Triton backend's device (GPU or the interpreter on CPU); CPU for the others."""
    return request.getfixturevalue("triton_device") if backend == "triton" else "cpu"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("dtype", "scale"), [(torch.float32, 1e19), (torch.float32, 1e15), (torch.bfloat16, 1e19)]
)
def test_overflowing_scores_are_refused(backend, dtype, scale, make_qkv, request):
    device = _device(backend, request)
    q, k, v = (t.to(device) for t in make_qkv(dtype=torch.float32))
    q, k, v = (q * scale).to(dtype), (k * scale).to(dtype), v.to(dtype)
    with pytest.raises(ValueError, match=r"^q, k: attention scores overflow float32 \(.*\); scale"):
        attention_with_stats(q, k, v, causal=True, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_largest_accepted_scores_give_exact_statistics(backend, sign, request):
    """Every key identical, |score| just under SCORE_LIMIT: the pattern is exactly uniform over
    the visible keys, so entropy = log(visible), max_prob = 1/visible, lse = score + log(visible).
    """
    device = _device(backend, request)
    seq, d_head = 19, 16
    c = math.sqrt(SCORE_LIMIT) * 0.99
    q = torch.zeros(1, 2, seq, d_head, device=device)  # [batch, head, query, d_head]
    q[..., 0] = c
    k = torch.zeros(1, 2, seq, d_head, device=device)  # [batch, head, key, d_head]
    k[..., 0] = sign * c
    v = torch.randn(1, 2, seq, d_head, generator=torch.Generator().manual_seed(0)).to(device)
    out, stats = attention_with_stats(q, k, v, causal=True, sm_scale=1.0, backend=backend)
    visible = torch.arange(1, seq + 1, dtype=torch.float32, device=device)  # [query]
    for name in ("entropy", "max_prob", "lse", "sink"):
        assert torch.isfinite(getattr(stats, name)).all(), name
    torch.testing.assert_close(stats.entropy[0, 0], visible.log(), atol=2e-5, rtol=2e-5)
    torch.testing.assert_close(stats.max_prob[0, 0], 1 / visible, atol=2e-5, rtol=2e-5)
    expected_lse = sign * c * c + visible.log()  # [query]
    torch.testing.assert_close(stats.lse[0, 0].double(), expected_lse.double(), rtol=1e-6, atol=0)
    running_mean = v.cumsum(2) / visible[:, None]  # [batch, head, query, d_head]
    torch.testing.assert_close(out, running_mean, atol=2e-5, rtol=2e-5)
