"""Analyses of attention heads, one module per analysis, each with one public entry point."""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> module; imported on first use, so `import analysis` stays light.
_EXPORTS = {
    "attention_stats": "analysis.attention_stats",
    "HeadStats": "analysis.head_stats",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(_EXPORTS)
