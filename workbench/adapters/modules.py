"""The raw HuggingFace module behind a TransformerBridge component.

`hf_module(bridge, "blocks.0.ln1")` is the `nn.Module` the bridge component at that path wraps
(TransformerLens 4 keeps it as `original_component`), for code that must call or read the
original module itself (e.g. a frozen layer norm in edge patching).
"""

from __future__ import annotations

from typing import Any


def hf_module(bridge: Any, name: str) -> Any:
    """The HF module wrapped by the bridge component at dotted path `name`."""
    return bridge.get_submodule(name).original_component


__all__ = ["hf_module"]
