"""`attention_stats` with the Triton backend agrees with the chunked torch backend on real models.

On a CUDA machine the model runs on the GPU (compiled kernel, fp32 dot products in TF32, hence
the looser tolerance there); without one the kernel runs on CPU tensors through the Triton
interpreter, which must be switched on before the kernel module is first imported.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

from analysis.attention_stats import attention_stats
from kernels import STAT_NAMES

PROMPTS = [
    "def add(a, b): return a + b\ndef add(a, b): return a + b\n",
    "import os",
]


@pytest.fixture
def triton_model(zoo_model, monkeypatch):
    if torch.cuda.is_available():
        from workbench import load_model

        return load_model("tiny-induction", device="cuda"), 2e-3
    interpreted = os.environ.get("TRITON_INTERPRET") == "1"
    if not interpreted and any(name.startswith("kernels.triton") for name in sys.modules):
        pytest.skip("the Triton kernel was imported without TRITON_INTERPRET=1")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    return zoo_model("tiny-induction"), 1e-5


@pytest.mark.slow
def test_triton_backend_matches_chunked_on_tiny_induction(triton_model):
    model, tolerance = triton_model
    kwargs = {"stats": STAT_NAMES, "mass_block": 8, "batch_size": 2}
    triton = attention_stats(model, PROMPTS, backend="triton", **kwargs)
    chunked = attention_stats(model, PROMPTS, backend="chunked", **kwargs)
    assert triton.config["backend"] == "triton"
    for name in STAT_NAMES:
        torch.testing.assert_close(
            getattr(triton, name),
            getattr(chunked, name),
            atol=tolerance,
            rtol=tolerance,
            equal_nan=True,
            msg=name,
        )
