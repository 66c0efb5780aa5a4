"""Fixtures for the attention-kernel tests: random q/k/v and the tolerance table.

Without CUDA, TRITON_INTERPRET=1 is set here, at collection time, before these tests import the
kernel (lazily, through the dispatcher), so it runs on CPU tensors through the interpreter. If
something imported triton earlier in the session without it, the Triton tests skip and say so.
With CUDA the Triton tests run compiled on the GPU instead.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

# @triton.jit (triton's own library functions included) picks interpreted or compiled when its
# module is imported: once triton is imported without the interpreter, it cannot run on CPU.
INTERPRETER_USABLE = os.environ.get("TRITON_INTERPRET") == "1" or "triton" not in sys.modules
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from kernels import STAT_NAMES  # noqa: E402

# Max abs/rel error against the float64 reference, which sees the same (rounded) inputs. Stats are
# accumulated in float32 by every backend, so their tolerance does not depend on the input dtype;
# `out` is rounded to the input dtype (and the Triton kernel multiplies P in that dtype).
TOLERANCES = {
    torch.float32: {"out": 2e-5, "stats": 2e-5},
    torch.float16: {"out": 2e-3, "stats": 2e-5},
    torch.bfloat16: {"out": 1.6e-2, "stats": 2e-5},
}


@pytest.fixture
def triton_device() -> str:
    """Where the Triton backend runs: the GPU when there is one, else the interpreter on CPU."""
    if torch.cuda.is_available():
        return "cuda"
    if not INTERPRETER_USABLE:
        pytest.skip("triton was imported without TRITON_INTERPRET=1 before these tests")
    return "cpu"


@pytest.fixture
def make_qkv():
    """`make_qkv(batch, heads_q, heads_kv, seq_q, seq_k, d_head, dtype, seed)` -> (q, k, v)."""

    def make(
        batch=2, heads_q=4, heads_kv=2, seq_q=17, seq_k=17, d_head=32, dtype=torch.float32, seed=0
    ):
        gen = torch.Generator().manual_seed(seed)
        q = torch.randn(
            batch, heads_q, seq_q, d_head, generator=gen
        )  # [batch, head, query, d_head]
        k = torch.randn(batch, heads_kv, seq_k, d_head, generator=gen)  # [batch, head, key, d_head]
        v = torch.randn(batch, heads_kv, seq_k, d_head, generator=gen)  # [batch, head, key, d_head]
        return q.to(dtype), k.to(dtype), v.to(dtype)

    return make


@pytest.fixture
def assert_matches():
    """`assert_matches(actual, expected, dtype)`: compare (out, stats) pairs with the table."""

    def check(actual, expected, dtype):
        (out, stats), (ref_out, ref_stats) = actual, expected
        tol = TOLERANCES[dtype]
        if ref_out is None:
            assert out is None
        else:
            assert out.dtype == ref_out.dtype and out.shape == ref_out.shape
            torch.testing.assert_close(
                out.float(), ref_out.float(), atol=tol["out"], rtol=tol["out"]
            )
        for name in STAT_NAMES:
            value, ref = getattr(stats, name), getattr(ref_stats, name)
            if ref is None:
                assert value is None, name
                continue
            assert value.dtype == torch.float32 and value.shape == ref.shape, name
            torch.testing.assert_close(
                value, ref, atol=tol["stats"], rtol=tol["stats"], msg=lambda m, n=name: f"{n}: {m}"
            )
        assert (stats.sink_tokens, stats.mass_block) == (
            ref_stats.sink_tokens,
            ref_stats.mass_block,
        )

    return check
