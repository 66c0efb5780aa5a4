"""Triton backend vs the float64 reference (under TRITON_INTERPRET=1 on CPU, compiled on a GPU).

The interpreter tiles are 64 x 64, so sizes 65 and 130 cross query and key tile boundaries; the
interpreter costs about a second per call here, so the matrix is kept small (d_head 40 also
exercises the padded head dimension). The n=1024 case is marked slow.
"""

from __future__ import annotations

import pytest
import torch

from kernels import DEFAULT_STATS, SCALAR_STATS, STAT_NAMES, attention_with_stats


def to_cpu(out, stats):
    """(out, stats) moved to the CPU, for comparison with the reference."""
    fields = {name: getattr(stats, name) for name in STAT_NAMES}
    cpu_stats = type(stats)(
        **{name: None if value is None else value.cpu() for name, value in fields.items()},
        sink_tokens=stats.sink_tokens,
        mass_block=stats.mass_block,
    )
    return (None if out is None else out.cpu()), cpu_stats


def run_both(q, k, v, device, **kwargs):
    kwargs.setdefault("stats", STAT_NAMES)
    on_device = [t.to(device) for t in (q, k, v)]
    if kwargs.get("key_lengths") is not None:
        kwargs["key_lengths"] = kwargs["key_lengths"].to(device)
    out, stats = attention_with_stats(*on_device, backend="triton", **kwargs)
    assert out is None or out.device.type == device
    kwargs["key_lengths"] = (
        None if kwargs.get("key_lengths") is None else kwargs["key_lengths"].cpu()
    )
    reference = attention_with_stats(q, k, v, backend="reference", **kwargs)
    return to_cpu(out, stats), reference


@pytest.mark.parametrize(
    ("seq_q", "seq_k", "causal", "heads_kv", "d_head"),
    [
        (1, 1, True, 1, 32),
        (17, 17, True, 2, 40),
        (65, 65, True, 4, 32),
        (65, 65, False, 1, 32),
        (130, 130, True, 2, 32),
        (17, 130, True, 1, 32),
        (65, 130, False, 2, 40),
        (130, 17, False, 2, 32),
    ],
)
def test_matches_reference(
    make_qkv, assert_matches, triton_device, seq_q, seq_k, causal, heads_kv, d_head
):
    q, k, v = make_qkv(
        batch=1, heads_q=4, heads_kv=heads_kv, seq_q=seq_q, seq_k=seq_k, d_head=d_head
    )
    actual, reference = run_both(q, k, v, triton_device, causal=causal, mass_block=24)
    assert_matches(actual, reference, torch.float32)


@pytest.mark.parametrize(
    ("dtype", "causal"), [(torch.float16, True), (torch.bfloat16, True), (torch.bfloat16, False)]
)
def test_dtypes(make_qkv, assert_matches, triton_device, dtype, causal):
    q, k, v = make_qkv(batch=1, seq_q=70, seq_k=70, dtype=dtype)
    actual, reference = run_both(q, k, v, triton_device, causal=causal)
    assert actual[0].dtype == dtype
    assert_matches(actual, reference, dtype)


def test_key_lengths_sink_tokens_and_peaked_scores(make_qkv, assert_matches, triton_device):
    q, k, v = make_qkv(batch=3, heads_q=2, heads_kv=1, seq_q=100, seq_k=100)
    key_lengths = torch.tensor([100, 1, 70])
    actual, reference = run_both(
        q, k, v, triton_device, causal=True, key_lengths=key_lengths, sink_tokens=70, sm_scale=1.0
    )
    assert_matches(actual, reference, torch.float32)


@pytest.mark.parametrize("stats", [SCALAR_STATS, ("distance_hist",), ("block_mass", "sink")])
def test_stat_subsets_without_output(make_qkv, assert_matches, triton_device, stats):
    q, k, v = make_qkv(batch=1, heads_q=2, heads_kv=2, seq_q=65, seq_k=65)
    actual, reference = run_both(
        q, k, v, triton_device, causal=False, stats=stats, write_out=False, mass_block=16
    )
    assert actual[0] is None
    assert_matches(actual, reference, torch.float32)


@pytest.mark.slow
def test_long_sequence(make_qkv, assert_matches, triton_device):
    q, k, v = make_qkv(batch=1, heads_q=2, heads_kv=1, seq_q=1024, seq_k=1024, d_head=64)
    actual, reference = run_both(q, k, v, triton_device, causal=True, stats=DEFAULT_STATS)
    assert_matches(actual, reference, torch.float32)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("tiles", [(32, 16, 4, 1), (16, 32, 4, 1)])
def test_other_tile_shapes(make_qkv, assert_matches, triton_device, tiles, causal):
    """The GPU uses other tiles than the interpreter's 64 x 64: check uneven shapes too. Small
    tiles also put key blocks on both sides far (>= BLOCK_M + BLOCK_N) from the query block,
    which take the histogram's two-bucket path."""
    from kernels.contract import validate_inputs
    from kernels.triton_launcher import triton_attention

    q, k, v = make_qkv(batch=1, heads_q=2, heads_kv=1, seq_q=90, seq_k=100)
    kwargs = dict(
        causal=causal, sm_scale=None, backend="triton", stats=STAT_NAMES, key_lengths=None
    )
    kwargs.update(sink_tokens=20, mass_block=24, write_out=True, chunk_size=256)
    config = validate_inputs(*(t.to(triton_device) for t in (q, k, v)), **kwargs)
    actual = triton_attention(*(t.to(triton_device) for t in (q, k, v)), config, tiles=tiles)
    reference = attention_with_stats(q, k, v, **{**kwargs, "backend": "reference"})
    assert_matches(to_cpu(*actual), reference, torch.float32)


@pytest.mark.parametrize("backend", ["chunked", "triton"])
def test_non_contiguous_inputs(make_qkv, assert_matches, triton_device, backend):
    """Views straight from a [batch, pos, head, d_head] projection (strided, not contiguous)."""
    q, k, v = make_qkv(batch=2, heads_q=4, heads_kv=2, seq_q=70, seq_k=70, d_head=32)
    device = triton_device if backend == "triton" else "cpu"
    as_view = [t.transpose(1, 2).contiguous().to(device).transpose(1, 2) for t in (q, k, v)]
    assert not as_view[0].is_contiguous()
    out, stats = attention_with_stats(*as_view, causal=True, stats=STAT_NAMES, backend=backend)
    reference = attention_with_stats(q, k, v, causal=True, stats=STAT_NAMES, backend="reference")
    assert_matches(to_cpu(out, stats), reference, torch.float32)
