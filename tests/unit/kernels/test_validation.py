"""Bad input to attention_with_stats raises ValueError naming the offending argument."""

from __future__ import annotations

import pytest
import torch

from kernels import attention_with_stats


def q_k_v(seq_q=8, seq_k=8, heads_q=4, heads_kv=2, d_head=16, dtype=torch.float32):
    return (
        torch.randn(2, heads_q, seq_q, d_head, dtype=dtype),
        torch.randn(2, heads_kv, seq_k, d_head, dtype=dtype),
        torch.randn(2, heads_kv, seq_k, d_head, dtype=dtype),
    )


def with_nan(t):
    t = t.clone()
    t[0, 0, 0, 0] = float("nan")
    return t


def with_inf(t):
    t = t.clone()
    t[1, 0, 3, 2] = float("inf")
    return t


q, k, v = q_k_v()
CASES = {
    "q not 4-D": ((q[0], k, v), {}, "q"),
    "k not 4-D": ((q, k[0], v), {}, "k"),
    "batch mismatch": ((q, k[:1], v[:1]), {}, "k"),
    "d_head mismatch": ((q, k[..., :8], v[..., :8]), {}, "k"),
    "seq_k mismatch between k and v": ((q, k, v[:, :, :5]), {}, "v"),
    "heads not divisible": ((q, *q_k_v(heads_kv=3)[1:]), {}, "k"),
    "dtype mismatch": ((q, k.half(), v.half()), {}, "k"),
    "unsupported dtype": (tuple(t.double() for t in (q, k, v)), {}, "q"),
    "int tensor": ((q, k, v.int()), {}, "v"),
    "empty q": ((q[:, :, :0], k, v), {}, "q"),
    "empty k": ((q, k[:, :, :0], v[:, :, :0]), {}, "k"),
    "nan in q": ((with_nan(q), k, v), {}, "q"),
    "inf in v": ((q, k, with_inf(v)), {}, "v"),
    "causal with seq_q > seq_k": (q_k_v(seq_q=9), {}, "seq_q"),
    "unknown stat": ((q, k, v), {"stats": ["entropy", "kurtosis"]}, "stats"),
    "stats as a string": ((q, k, v), {"stats": "entropy"}, "stats"),
    "unknown backend": ((q, k, v), {"backend": "cuda"}, "backend"),
    "sink_tokens 0": ((q, k, v), {"sink_tokens": 0}, "sink_tokens"),
    "mass_block 0": ((q, k, v), {"mass_block": 0}, "mass_block"),
    "chunk_size 0": ((q, k, v), {"chunk_size": 0}, "chunk_size"),
    "sm_scale nan": ((q, k, v), {"sm_scale": float("nan")}, "sm_scale"),
    "key_lengths shape": ((q, k, v), {"key_lengths": torch.tensor([8])}, "key_lengths"),
    "key_lengths zero": ((q, k, v), {"key_lengths": torch.tensor([8, 0])}, "key_lengths"),
    "key_lengths too long": ((q, k, v), {"key_lengths": torch.tensor([9, 8])}, "key_lengths"),
    "key_lengths float": ((q, k, v), {"key_lengths": torch.tensor([8.0, 8.0])}, "key_lengths"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_raises_value_error_naming_argument(case):
    tensors, kwargs, argument = CASES[case]
    kwargs = {"causal": True, **kwargs}
    with pytest.raises(ValueError, match=rf"\b{argument}\b"):
        attention_with_stats(*tensors, **kwargs)


def test_triton_needs_cuda_or_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="backend"):
        attention_with_stats(q, k, v, causal=True, backend="triton")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device type")
def test_device_mismatch():
    with pytest.raises(ValueError, match="k"):
        attention_with_stats(q, k.cuda(), v.cuda(), causal=True)
