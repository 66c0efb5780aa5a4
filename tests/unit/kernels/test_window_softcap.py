"""Sliding-window attention, logit soft-capping and attention sinks in every backend.

The float64 reference is first checked against an independent eager computation built from
transformers' own mask function (`sliding_window_causal_mask_function`) and its soft-capping
formula, and its gpt-oss attention-sink softmax (a learned logit per head concatenated to the
scores, its column dropped after the softmax); then the chunked and Triton backends are checked against the reference on ragged sizes
that cross chunk / tile boundaries (chunk_size 8, Triton tiles 16 x 16), with grouped kv heads,
key_lengths and every statistic. Triton cases run under the interpreter on CPU: kept few and small.
"""

from __future__ import annotations

import math

import pytest
import torch

from kernels import STAT_NAMES, attention_with_stats

WINDOWS = (1, 3, 16, 64)
SOFTCAPS = (None, 5.0, 30.0)


def _transformers_eager(q, k, v, *, window, softcap, sinks=None):
    """Output, entropy, max-prob and sink of transformers' eager attention, in float64.

    The mask is transformers' `sliding_window_causal_mask_function` evaluated at absolute
    positions (queries are the last seq_q positions, as with a cache); the scores are capped as
    in Gemma-2's `eager_attention_forward`."""
    from transformers.masking_utils import causal_mask_function, sliding_window_causal_mask_function

    group = q.shape[1] // k.shape[1]
    keys = k.double().repeat_interleave(group, 1)  # [batch, head, key, d_head]
    values = v.double().repeat_interleave(group, 1)  # [batch, head, key, d_head]
    scores = q.double() @ keys.transpose(-1, -2) / math.sqrt(q.shape[-1])  # [b, h, query, key]
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    seq_q, seq_k = q.shape[2], k.shape[2]
    q_idx = torch.arange(seq_k - seq_q, seq_k)[:, None]  # [query, 1]
    kv_idx = torch.arange(seq_k)[None, :]  # [1, key]
    mask_function = causal_mask_function
    if window is not None:
        mask_function = sliding_window_causal_mask_function(window)
    visible = mask_function(0, 0, q_idx, kv_idx)  # [query, key]
    scores = scores.masked_fill(~visible, float("-inf"))  # [b, h, query, key]
    if sinks is None:
        pattern = scores.softmax(-1)  # [b, h, query, key]
    else:  # gpt-oss's eager_attention_forward
        column = sinks.double()[None, :, None, None].expand(q.shape[0], -1, seq_q, 1)
        pattern = torch.cat([scores, column], -1).softmax(-1)[..., :-1]  # [b, h, query, key]
    entropy = -torch.special.xlogy(pattern, pattern).sum(-1)  # [b, h, query]
    return pattern @ values, entropy, pattern.amax(-1), pattern[..., 0]


def _qkv(seq_q, seq_k, *, heads_q=4, heads_kv=2, d_head=16, scale=3.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(2, heads_q, seq_q, d_head, generator=gen) * scale  # [b, h, query, d_head]
    k = torch.randn(2, heads_kv, seq_k, d_head, generator=gen) * scale  # [b, h_kv, key, d_head]
    v = torch.randn(2, heads_kv, seq_k, d_head, generator=gen)  # [b, h_kv, key, d_head]
    return q, k, v


@pytest.mark.parametrize("softcap", SOFTCAPS)
@pytest.mark.parametrize("window", (None, *WINDOWS))
@pytest.mark.parametrize(("seq_q", "seq_k"), [(37, 37), (20, 53)])
def test_reference_matches_transformers_semantics(seq_q, seq_k, window, softcap):
    q, k, v = _qkv(seq_q, seq_k)
    out, stats = attention_with_stats(
        q, k, v, causal=True, backend="reference", window=window, softcap=softcap
    )
    expected = _transformers_eager(q, k, v, window=window, softcap=softcap)
    got = (out, stats.entropy, stats.max_prob, stats.sink)
    for name, actual, wanted in zip(
        ("out", "entropy", "max_prob", "sink"), got, expected, strict=True
    ):
        torch.testing.assert_close(actual.double(), wanted, atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize(("window", "softcap"), [(None, None), (3, None), (16, 5.0)])
def test_reference_sinks_match_transformers_semantics(window, softcap):
    q, k, v = _qkv(37, 37)
    sinks = torch.tensor([-2.0, 0.5, 3.0, 8.0])  # [heads_q]
    out, stats = attention_with_stats(
        q, k, v, causal=True, backend="reference", window=window, softcap=softcap, sinks=sinks
    )
    expected = _transformers_eager(q, k, v, window=window, softcap=softcap, sinks=sinks)
    got = (out, stats.entropy, stats.max_prob, stats.sink)
    for name, actual, wanted in zip(
        ("out", "entropy", "max_prob", "sink"), got, expected, strict=True
    ):
        torch.testing.assert_close(actual.double(), wanted, atol=1e-5, rtol=1e-5, msg=name)
    # lse includes the sink; the real keys' mass is 1 - p_sink < 1
    p_sink = torch.exp(sinks[None, :, None].double() - stats.lse.double())  # [b, h, query]
    mass = stats.distance_hist.sum(-1).double()  # [b, h, query]
    torch.testing.assert_close(mass + p_sink, torch.ones_like(mass), atol=1e-5, rtol=0)
    assert p_sink[:, 3].amax() > 0.5  # the sink is not negligible


def test_softcap_and_window_change_the_result():
    """The parity tests below can fail: a cap or a window that is ignored is visible."""
    q, k, v = _qkv(37, 37)
    plain = attention_with_stats(q, k, v, causal=True, backend="reference")[1].entropy
    capped = attention_with_stats(q, k, v, causal=True, backend="reference", softcap=5.0)
    windowed = attention_with_stats(q, k, v, causal=True, backend="reference", window=16)
    assert (plain - capped[1].entropy).abs().max() > 0.1
    assert (plain - windowed[1].entropy).abs().max() > 0.1


@pytest.mark.parametrize("softcap", SOFTCAPS)
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize(("seq_q", "seq_k"), [(37, 37), (20, 53), (70, 70)])
def test_chunked_matches_reference(assert_matches, seq_q, seq_k, window, softcap):
    q, k, v = _qkv(seq_q, seq_k, seed=seq_k)
    kwargs = dict(causal=True, stats=STAT_NAMES, window=window, softcap=softcap)
    kwargs.update(sink_tokens=2, mass_block=5)
    actual = attention_with_stats(q, k, v, backend="chunked", chunk_size=8, **kwargs)
    assert_matches(actual, attention_with_stats(q, k, v, backend="reference", **kwargs), q.dtype)


@pytest.mark.parametrize("window", [None, 1, 16])
@pytest.mark.parametrize(("seq_q", "seq_k"), [(37, 37), (20, 53)])
def test_chunked_sinks_match_reference(assert_matches, seq_q, seq_k, window):
    q, k, v = _qkv(seq_q, seq_k, seed=seq_q)
    sinks = torch.tensor([-30.0, 0.0, 2.5, 40.0])  # [heads_q]: negligible to dominant
    kwargs = dict(causal=True, stats=STAT_NAMES, window=window, sinks=sinks, sink_tokens=2)
    kwargs.update(softcap=5.0, key_lengths=torch.tensor([seq_k, seq_k - 13]), mass_block=5)
    actual = attention_with_stats(q, k, v, backend="chunked", chunk_size=8, **kwargs)
    assert_matches(actual, attention_with_stats(q, k, v, backend="reference", **kwargs), q.dtype)


@pytest.mark.parametrize("softcap", SOFTCAPS)
@pytest.mark.parametrize("seq", [17, 70])
def test_chunked_softcap_without_causal_mask(assert_matches, seq, softcap):
    q, k, v = _qkv(seq, seq, heads_kv=1)
    kwargs = dict(causal=False, stats=STAT_NAMES, softcap=softcap, mass_block=7)
    actual = attention_with_stats(q, k, v, backend="chunked", chunk_size=8, **kwargs)
    assert_matches(actual, attention_with_stats(q, k, v, backend="reference", **kwargs), q.dtype)


def test_rows_that_see_no_key(assert_matches):
    """Window plus key_lengths: padded queries past length + window - 1 see nothing. They get
    out 0, lse -inf and every other statistic 0, identically in every backend."""
    q, k, v = _qkv(30, 30)
    kwargs = dict(causal=True, stats=STAT_NAMES, window=3, key_lengths=torch.tensor([30, 6]))
    out, stats = attention_with_stats(q, k, v, backend="reference", **kwargs)
    empty = stats.lse[1, :, 8:]  # queries 8.. see keys > 5, all past length 6
    assert torch.isneginf(empty).all() and not torch.isinf(stats.lse[1, :, :8]).any()
    assert (out[1, :, 8:] == 0).all() and (stats.entropy[1, :, 8:] == 0).all()
    assert (stats.distance_hist[1, :, 8:] == 0).all()
    chunked = attention_with_stats(q, k, v, backend="chunked", chunk_size=4, **kwargs)
    assert_matches(chunked, (out, stats), q.dtype)


def test_window_statistics_cover_visible_keys_only():
    q, k, v = _qkv(40, 40)
    stats = attention_with_stats(q, k, v, causal=True, backend="chunked", window=3, chunk_size=8)[1]
    assert (stats.sink[:, :, 3:] == 0).all()  # key 0 is outside every later query's window
    assert (stats.sink[:, :, :3] > 0).all()
    assert (stats.mean_distance <= 2 + 1e-5).all()
    assert (stats.distance_hist[..., 3:] == 0).all()  # distances 0..2: buckets 0..2 only
    torch.testing.assert_close(stats.distance_hist.sum(-1), torch.ones_like(stats.sink))


@pytest.mark.parametrize(
    ("seq_q", "seq_k", "causal", "window", "softcap", "lengths", "sinks"),
    [
        (17, 17, True, 3, 5.0, None, None),
        (65, 65, True, 16, None, (65, 20), None),
        (17, 130, True, 64, 30.0, None, None),
        (65, 65, False, None, 5.0, None, None),
        (130, 130, True, 1, None, None, None),
        (65, 65, True, 3, None, (65, 20), (-1.0, 6.0)),
        (17, 40, False, None, None, None, (40.0, 0.5)),
    ],
)
def test_triton_matches_reference(
    assert_matches, triton_device, seq_q, seq_k, causal, window, softcap, lengths, sinks
):
    """Tiles of 16 x 16: windows start mid-tile, skip whole tiles, and cover several."""
    from kernels.contract import validate_inputs
    from kernels.triton_launcher import triton_attention

    q, k, v = _qkv(seq_q, seq_k, heads_q=2, heads_kv=1, d_head=24, seed=seq_q)
    key_lengths = None if lengths is None else torch.tensor(lengths)
    kwargs = dict(causal=causal, sm_scale=None, stats=STAT_NAMES, sink_tokens=2, mass_block=12)
    kwargs.update(write_out=True, chunk_size=256, window=window, softcap=softcap)
    kwargs["sinks"] = None if sinks is None else torch.tensor(sinks)
    device_args = [t.to(triton_device) for t in (q, k, v)]
    device_lengths = None if key_lengths is None else key_lengths.to(triton_device)
    config = validate_inputs(*device_args, backend="triton", key_lengths=device_lengths, **kwargs)
    out, stats = triton_attention(*device_args, config, tiles=(16, 16, 4, 1))
    fields = {name: getattr(stats, name).cpu() for name in STAT_NAMES}
    actual = (out.cpu(), type(stats)(**fields, sink_tokens=2, mass_block=12))
    reference = attention_with_stats(
        q, k, v, backend="reference", key_lengths=key_lengths, **kwargs
    )
    assert_matches(actual, reference, torch.float32)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 0}, r"window: expected an integer >= 1, got 0"),
        ({"window": -4}, r"window: expected an integer >= 1, got -4"),
        ({"window": True}, r"window: expected an integer >= 1, got True"),
        ({"window": 2.5}, r"window: expected an integer >= 1, got 2.5"),
        ({"window": "3"}, r"window: expected an integer >= 1, got '3'"),
        ({"window": 3, "causal": False}, r"window: a sliding window needs causal=True"),
        ({"softcap": 0.0}, r"softcap: must be finite and > 0, got 0.0"),
        ({"softcap": -5.0}, r"softcap: must be finite and > 0, got -5.0"),
        ({"softcap": float("inf")}, r"softcap: must be finite and > 0, got inf"),
        ({"softcap": float("nan")}, r"softcap: must be finite and > 0, got nan"),
        ({"softcap": True}, r"softcap: expected a float, got True"),
        ({"softcap": "5"}, r"softcap: expected a float, got '5'"),
        ({"sinks": [0.0, 1.0, 2.0, 3.0]}, r"sinks: expected a float tensor of 4 logits"),
        ({"sinks": torch.tensor([0, 1, 2, 3])}, r"sinks: expected a float tensor of 4 logits"),
        ({"sinks": torch.zeros(2)}, r"sinks: expected shape \(4,\) \(one logit per query"),
        ({"sinks": torch.zeros(1, 4)}, r"sinks: expected shape \(4,\)"),
        ({"sinks": torch.tensor([0.0, 1.0, float("nan"), 0.0])}, r"sinks: contains NaN or inf"),
        ({"sinks": torch.tensor([0.0, float("inf"), 0.0, 0.0])}, r"sinks: contains NaN or inf"),
    ],
)
@pytest.mark.parametrize("backend", ["chunked", "reference"])
def test_bad_window_or_softcap_is_refused(backend, kwargs, message):
    q, k, v = _qkv(5, 5)
    kwargs = {"causal": True, **kwargs}
    with pytest.raises(ValueError, match=message):
        attention_with_stats(q, k, v, backend=backend, **kwargs)
