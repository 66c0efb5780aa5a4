"""Refuse edge interventions where the residual stream is not the sum of the graph's writers.

Edge patching (`circuits.edge_patching`) rebuilds a port's input as
`resid - sum_u w_u * (out_u - out_u^source)`, which is exact only if every block adds its
attention and MLP outputs to the residual unchanged: `block_out = block_in + attn_out +
mlp_out`. Families that normalise a sublayer's output before adding it (Gemma-2 and Gemma-3's
`post_attention_layernorm` / `post_feedforward_layernorm`, OLMo-2's post-sublayer norms) break
that identity, and per-head edge deltas would be silently wrong there (measured on a tiny random
Gemma-2: the writers' sum misses the final residual by 98% of its size). Post-LN encoders
(BERT) are handled separately by the frozen-LayerNorm path and are not checked here.

`check_additive_residual(model)` measures the identity on one short probe (one forward pass,
cached per model) and raises `ValueError` naming the gap.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from workbench.model import Model

RELATIVE_TOLERANCE = 1e-4
_GAPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def additivity_gap(model: Model) -> float:
    """max |block_out - block_in - attn_out - mlp_out| / max |block_out| over layers, on a probe."""
    bridge = model.bridge
    if bridge in _GAPS:
        return _GAPS[bridge]
    has_mlp = not bool(getattr(model.cfg, "attn_only", False))
    names = []
    for layer in range(model.n_layers):
        names += [f"blocks.{layer}.hook_in", f"blocks.{layer}.hook_out"]
        names += [f"blocks.{layer}.attn.hook_out"]
        names += [f"blocks.{layer}.mlp.hook_out"] if has_mlp else []
    missing = [name for name in names if name not in bridge.hook_dict]
    if missing:
        raise ValueError(
            f"model: edge-level interventions read each block's input, attention and MLP "
            f"outputs; {model.name} has no hook {missing[0]}"
        )
    vocab = int(model.cfg.d_vocab)
    probe = (torch.arange(8) % max(vocab - 1, 1) + 1)[None].to(model.device)  # [1, 8]
    with torch.no_grad():
        _, cache = model.run_with_cache(probe, names=names)
    gap, scale = 0.0, 0.0
    for layer in range(model.n_layers):
        out = cache[f"blocks.{layer}.hook_out"].double()  # [1, pos, d_model]
        parts = cache[f"blocks.{layer}.hook_in"].double() + cache[f"blocks.{layer}.attn.hook_out"]
        if has_mlp:
            parts = parts + cache[f"blocks.{layer}.mlp.hook_out"]
        gap = max(gap, (out - parts).abs().max().item())
        scale = max(scale, out.abs().max().item())
    _GAPS[bridge] = gap / max(scale, 1e-30)
    return _GAPS[bridge]


def check_additive_residual(model: Model) -> None:
    """ValueError unless each block adds its attention and MLP outputs to the residual as they
    are (pre-LN and parallel decoders; post-LN encoders are not checked)."""
    if not model.is_causal:
        return
    gap = additivity_gap(model)
    if gap > RELATIVE_TOLERANCE:
        raise ValueError(
            f"model: edge-level interventions need blocks that add their attention and MLP "
            f"outputs to the residual unchanged; {model.name}'s blocks transform them first "
            f"(e.g. post-sublayer norms: block_out - block_in - attn_out - mlp_out is "
            f"{gap:.2g} of the residual's size), so per-edge deltas would be wrong "
            f"(use node activation patching instead)"
        )


__all__ = ["additivity_gap", "check_additive_residual"]
