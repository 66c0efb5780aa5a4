"""Shared set-up: offline mode, Triton's CPU interpreter, zoo models loaded once per session.

`@triton.jit` decides between interpreted and compiled when triton is first imported, and loading
any model imports triton (through transformers). So without CUDA the interpreter is switched on
here, before any test module is collected; with CUDA, Triton kernels run compiled.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="session")
def zoo_model():
    """`zoo_model(name)` -> a `Model`, loaded once per session. Tests must not leave hooks."""
    from workbench import load_model

    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = load_model(name)
        return cache[name]

    return get
