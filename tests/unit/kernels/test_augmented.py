"""Augmented flash-kernel route (kernels.augmented) vs the float64 reference and the chunked path.

Ragged sizes (no multiple of any kernel block), causal and not, GQA, peaked and diffuse rows,
statistic subsets with and without the output; calls the route does not serve (padding masks,
windows, soft-capping, sinks, mean_distance beyond its key limit, rows whose entropy bound is too
large) must give the chunked path's result, and "auto" must pick the route only where it serves.
"""

from __future__ import annotations

import pytest
import torch

from kernels import SCALAR_STATS, attention_with_stats
from kernels.augmented import (
    AUTO_STATS,
    ENTROPY_ATOL,
    MEAN_DISTANCE_MAX_KEYS,
    entropy_error_bound,
    serves,
    unsupported_reason,
)
from kernels.contract import validate_inputs

SIZES = [(1, 1), (17, 17), (65, 65), (130, 130), (17, 130), (130, 17)]
ATOL = {"out": 2e-5, "entropy": ENTROPY_ATOL}


def _config(q, k, v, **kwargs):
    kwargs.setdefault("stats", SCALAR_STATS)
    args = dict(sm_scale=None, backend="augmented", key_lengths=None, sink_tokens=1)
    args.update(mass_block=64, write_out=True, chunk_size=256)
    args.update(kwargs)
    return validate_inputs(q, k, v, **args)


def _check(actual, expected):
    (out, stats), (ref_out, ref_stats) = actual, expected
    if ref_out is None:
        assert out is None
    else:
        assert out.dtype == ref_out.dtype and out.shape == ref_out.shape
        torch.testing.assert_close(out.float(), ref_out.float(), atol=2e-5, rtol=2e-5)
    assert stats.requested() == ref_stats.requested()
    for name in stats.requested():
        value, ref = getattr(stats, name), getattr(ref_stats, name)
        assert value.dtype == torch.float32 and value.shape == ref.shape, name
        tol = ATOL.get(name, 2e-5)
        torch.testing.assert_close(
            value, ref, atol=tol, rtol=2e-5, msg=lambda m, n=name: f"{n}: {m}"
        )
    assert (stats.sink_tokens, stats.mass_block) == (ref_stats.sink_tokens, ref_stats.mass_block)


def _run(q, k, v, backend, **kwargs):
    kwargs.setdefault("stats", SCALAR_STATS)
    return attention_with_stats(q, k, v, backend=backend, **kwargs)


@pytest.mark.parametrize(("heads_q", "heads_kv"), [(4, 4), (4, 1)])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize(("seq_q", "seq_k"), SIZES)
def test_matches_reference(make_qkv, seq_q, seq_k, causal, heads_q, heads_kv):
    q, k, v = make_qkv(heads_q=heads_q, heads_kv=heads_kv, seq_q=seq_q, seq_k=seq_k)
    if causal and seq_q > seq_k:
        with pytest.raises(ValueError, match="seq_q"):
            _run(q, k, v, "augmented", causal=causal)
        return
    stats = SCALAR_STATS if causal else tuple(s for s in SCALAR_STATS if s != "mean_distance")
    if causal and seq_q == seq_k:
        assert serves(q, k, _config(q, k, v, causal=causal, stats=stats))
    reference = _run(q, k, v, "reference", causal=causal, stats=stats, sink_tokens=3)
    _check(_run(q, k, v, "augmented", causal=causal, stats=stats, sink_tokens=3), reference)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs(make_qkv, dtype):
    q, k, v = make_qkv(seq_q=65, seq_k=65, dtype=dtype)
    (out, stats), (ref_out, ref_stats) = (
        _run(q, k, v, backend, causal=True, stats=AUTO_STATS)
        for backend in ("augmented", "reference")
    )
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), ref_out.float(), atol=2e-2, rtol=2e-2)
    for name in AUTO_STATS:  # statistics are float32 from the rounded inputs, as the contract says
        torch.testing.assert_close(
            getattr(stats, name), getattr(ref_stats, name), atol=2e-5, rtol=2e-5
        )


@pytest.mark.parametrize("write_out", [True, False])
@pytest.mark.parametrize("stats", [("entropy",), ("sink", "sum_sq"), ("lse", "max_prob"), ()])
def test_subsets_and_write_out(make_qkv, stats, write_out):
    q, k, v = make_qkv(seq_q=70, seq_k=70)
    kwargs = dict(causal=True, stats=stats, write_out=write_out)
    result = _run(q, k, v, "augmented", **kwargs)
    assert (result[0] is None) == (not write_out)
    _check(result, _run(q, k, v, "reference", **kwargs))


@pytest.mark.parametrize("causal", [True, False])
def test_peaked_and_diffuse_rows(make_qkv, causal):
    """sm_scale 1 and q scaled x3 (scores of std ~17: near-one-hot rows, entropy bound 8.5e-5,
    still served), then sm_scale 1e-3 (near-uniform rows): the peaked entropy must respect the
    bound the route claims, and stay within ENTROPY_ATOL of the chunked path."""
    q, k, v = make_qkv(batch=1, seq_q=300, seq_k=300)
    stats = ("lse", "entropy", "max_prob", "sink", "sum_sq")
    assert serves(q * 3, k, _config(q * 3, k, v, causal=causal, sm_scale=1.0, stats=stats))
    peaked, reference, chunked = (
        _run(q * 3, k, v, backend, causal=causal, sm_scale=1.0, stats=stats)
        for backend in ("augmented", "reference", "chunked")
    )
    assert float(reference[1].entropy.min()) < 1e-3  # some rows really are near one-hot
    bound = entropy_error_bound(q * 3, k, 1.0)  # [batch, heads, query]
    err = (peaked[1].entropy - reference[1].entropy).abs()
    assert bool((err <= bound).all())
    torch.testing.assert_close(peaked[1].entropy, chunked[1].entropy, atol=ENTROPY_ATOL, rtol=0)
    for name in ("lse", "max_prob", "sink", "sum_sq"):  # exp(s - lse): rel. error ~ eps |s|
        torch.testing.assert_close(
            getattr(peaked[1], name), getattr(reference[1], name), atol=2e-5, rtol=2e-5
        )
    diffuse = _run(q, k, v, "augmented", causal=causal, sm_scale=1e-3, stats=stats)
    _check(diffuse, _run(q, k, v, "reference", causal=causal, sm_scale=1e-3, stats=stats))


def test_inaccurate_entropy_falls_back_to_chunked(make_qkv):
    q, k, v = make_qkv(batch=1, heads_q=2, heads_kv=2, seq_q=50, seq_k=50)
    q = q * 200  # scores ~ 1e3: lse - sum p s would cancel beyond ENTROPY_ATOL
    config = _config(q, k, v, causal=True, stats=("entropy",))
    assert unsupported_reason(q, k, config) is None and not serves(q, k, config)
    augmented = _run(q, k, v, "augmented", causal=True, stats=("entropy",))
    chunked = _run(q, k, v, "chunked", causal=True, stats=("entropy",))
    assert torch.equal(augmented[1].entropy, chunked[1].entropy)
    assert torch.equal(augmented[0], chunked[0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key_lengths": torch.tensor([40, 7])},
        {"window": 5},
        {"softcap": 3.0},
        {"sinks": torch.tensor([0.5, -1.0, 2.0, 0.0])},
        {"stats": ("entropy", "distance_hist")},
        {"sink_tokens": 65},
    ],
)
def test_unserved_calls_match_chunked(make_qkv, kwargs):
    q, k, v = make_qkv(seq_q=40, seq_k=40)
    kwargs = {"causal": True, **kwargs}
    assert unsupported_reason(q, k, _config(q, k, v, **kwargs)) is not None
    augmented, chunked = (_run(q, k, v, b, **kwargs) for b in ("augmented", "chunked"))
    assert torch.equal(augmented[0], chunked[0])
    for name in augmented[1].requested():
        assert torch.equal(getattr(augmented[1], name), getattr(chunked[1], name)), name


def test_mean_distance_limits(make_qkv):
    q, k, v = make_qkv(
        batch=1,
        heads_q=1,
        heads_kv=1,
        seq_q=MEAN_DISTANCE_MAX_KEYS + 1,
        seq_k=MEAN_DISTANCE_MAX_KEYS + 1,
    )
    long = _config(q, k, v, causal=True, stats=("mean_distance",))
    assert "mean_distance" in unsupported_reason(q, k, long)
    short = _config(
        q[:, :, :20], k[:, :, :20], v[:, :, :20], causal=False, stats=("mean_distance",)
    )
    assert "mean_distance" in unsupported_reason(q[:, :, :20], k[:, :, :20], short)


def test_auto_dispatch(make_qkv, monkeypatch):
    """auto takes the route only without the output, for AUTO_STATS subsets it serves, from
    AUTO_MIN_KEYS keys."""
    import kernels.augmented as augmented

    calls = []
    real = augmented.augmented_attention
    monkeypatch.setattr(augmented, "augmented_attention", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(augmented, "AUTO_MIN_KEYS", 32)
    q, k, v = make_qkv(seq_q=33, seq_k=33)
    _, stats = attention_with_stats(q, k, v, causal=True, stats=AUTO_STATS, write_out=False)
    assert calls == [1] and stats.requested() == AUTO_STATS
    attention_with_stats(q, k, v, causal=True, stats=AUTO_STATS)  # the output: chunked
    attention_with_stats(q, k, v, causal=True, write_out=False)  # histograms need the pattern
    short = (t[:, :, :31] for t in (q, k, v))
    attention_with_stats(*short, causal=True, stats=AUTO_STATS, write_out=False)
    attention_with_stats(q, k, v, causal=True, stats=AUTO_STATS, write_out=False, window=4)
    attention_with_stats(q * 300, k, v, causal=True, stats=AUTO_STATS, write_out=False)
    assert calls == [1]


def test_cuda_tensors_refused_or_cpu_only(make_qkv):
    q, k, v = make_qkv()
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="augmented"):
            attention_with_stats(q.cuda(), k.cuda(), v.cuda(), causal=True, backend="augmented")
    else:
        assert (
            attention_with_stats(q, k, v, causal=True, backend="augmented")[0].device.type == "cpu"
        )


@pytest.mark.parametrize("causal", [True, False])
def test_max_prob_pass_in_several_chunks(make_qkv, monkeypatch, causal):
    """A tiny score budget splits the max_prob pass into 16-row chunks (ragged last one)."""
    import kernels.augmented as augmented

    monkeypatch.setattr(augmented, "MAX_SCORE_ELEMENTS", 1)
    q, k, v = make_qkv(seq_q=70, seq_k=70)
    kwargs = dict(causal=causal, stats=("max_prob",), write_out=False, sm_scale=0.7)
    _check(_run(q, k, v, "augmented", **kwargs), _run(q, k, v, "reference", **kwargs))
