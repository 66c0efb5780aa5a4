"""The float64 reference against independent ground truth: torch SDPA and closed forms.

Every backend is also checked on uniform attention (q = 0), where each statistic has a closed
form, so the reference is not only compared with itself.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kernels import STAT_NAMES, attention_with_stats, distance_buckets


def sdpa(q, k, v, *, causal, key_lengths=None):
    """torch's scaled_dot_product_attention with our bottom-right causal mask and key lengths."""
    seq_q, seq_k = q.shape[2], k.shape[2]
    query = torch.arange(seq_q)[:, None] + (seq_k - seq_q)  # [query, 1] in key coordinates
    key = torch.arange(seq_k)[None, :]  # [1, key]
    mask = (key <= query) if causal else torch.ones(seq_q, seq_k, dtype=torch.bool)
    mask = mask[None, None]  # [1, 1, query, key]
    if key_lengths is not None:
        mask = mask & (key < key_lengths[:, None])[:, None, None, :]  # [batch, 1, query, key]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)


@pytest.mark.parametrize("backend", ["reference", "chunked"])
@pytest.mark.parametrize(
    ("seq_q", "seq_k", "causal"),
    [(17, 17, True), (17, 40, True), (40, 17, False), (65, 65, False)],
)
def test_out_equals_sdpa(make_qkv, backend, seq_q, seq_k, causal):
    q, k, v = make_qkv(seq_q=seq_q, seq_k=seq_k)
    key_lengths = torch.tensor([seq_k, seq_k // 2 + 1])
    for lengths in (None, key_lengths):
        out, _ = attention_with_stats(
            q, k, v, causal=causal, backend=backend, key_lengths=lengths, chunk_size=16
        )
        expected = sdpa(q, k, v, causal=causal, key_lengths=lengths)
        torch.testing.assert_close(out, expected, atol=2e-6, rtol=2e-6)


def uniform_expectations(seq: int, sink_tokens: int, mass_block: int) -> dict[str, torch.Tensor]:
    """Closed forms for causal attention with all scores equal: row i is uniform over keys 0..i."""
    n_buckets = distance_buckets(seq)
    rows = {name: [] for name in STAT_NAMES}
    for i in range(seq):
        visible = i + 1
        distances = list(range(visible))  # |i - j| for j = 0..i
        hist = [0.0] * n_buckets
        for d in distances:
            hist[0 if d == 0 else int(math.floor(math.log2(d))) + 1] += 1 / visible
        blocks = [0.0] * -(-seq // mass_block)
        for j in range(visible):
            blocks[j // mass_block] += 1 / visible
        rows["lse"].append(math.log(visible))
        rows["entropy"].append(math.log(visible))
        rows["max_prob"].append(1 / visible)
        rows["sink"].append(min(sink_tokens, visible) / visible)
        rows["mean_distance"].append(sum(distances) / visible)
        rows["sum_sq"].append(1 / visible)
        rows["distance_hist"].append(hist)
        rows["block_mass"].append(blocks)
    return {name: torch.tensor(values, dtype=torch.float32) for name, values in rows.items()}


@pytest.mark.parametrize("backend", ["reference", "chunked", "triton"])
def test_uniform_attention_closed_forms(backend, request):
    seq, sink_tokens, mass_block = 70, 3, 8
    q = torch.zeros(1, 2, seq, 16)  # all scores 0: uniform over the visible keys
    k = torch.randn(1, 1, seq, 16, generator=torch.Generator().manual_seed(1))
    v = torch.randn(1, 1, seq, 16, generator=torch.Generator().manual_seed(2))
    if backend == "triton":
        device = request.getfixturevalue("triton_device")
        q, k, v = (t.to(device) for t in (q, k, v))
    out, stats = attention_with_stats(
        q,
        k,
        v,
        causal=True,
        backend=backend,
        stats=STAT_NAMES,
        sink_tokens=sink_tokens,
        mass_block=mass_block,
        chunk_size=16,
    )
    expected = uniform_expectations(seq, sink_tokens, mass_block)
    for name in STAT_NAMES:
        value = getattr(stats, name)[0, 1].cpu()  # [query(, width)] for head 1
        torch.testing.assert_close(value, expected[name], atol=1e-5, rtol=1e-5, msg=name)
    running_mean = v[0, 0].cpu().cumsum(0) / torch.arange(1, seq + 1)[:, None]  # [query, d_head]
    torch.testing.assert_close(out[0, 1].cpu(), running_mean, atol=1e-5, rtol=1e-5)


def test_distance_buckets():
    assert [distance_buckets(n) for n in (1, 2, 3, 4, 5, 8, 9, 1024, 1025)] == [
        1,
        2,
        3,
        3,
        4,
        4,
        5,
        11,
        12,
    ]
