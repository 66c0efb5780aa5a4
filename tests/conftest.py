"""Shared fixtures: offline mode, and zoo models loaded once per test session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402


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
