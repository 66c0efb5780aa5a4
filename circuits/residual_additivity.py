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
cached per model) and raises `ValueError` naming the gap. `check_writer_sum(patcher)` then
checks the whole decomposition the patcher uses - every writer's output (each head's
`hook_z @ W_O` slice, each MLP's output, the embeddings) must sum to the final residual
(`ln_final.hook_in`) up to a constant over positions (the attention output biases, which no
writer owns and which cancel in every delta) - on the same probe, so a family whose per-head split differs from the
model's own computation is refused rather than patched wrongly (measured: 1e-7 to 3e-7 of the
residual on the 17 additive families of docs/architectures.md).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from workbench.model import Model

RELATIVE_TOLERANCE = 1e-4
_GAPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_WRITER_GAPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _probe(model: Model) -> torch.Tensor:
    vocab = int(model.cfg.d_vocab)
    return (torch.arange(8) % max(vocab - 1, 1) + 1)[None].to(model.device)  # [1, 8]


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
    with torch.no_grad():
        _, cache = model.run_with_cache(_probe(model), names=names)
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


def writer_sum_gap(patcher) -> float:
    """max |ln_final input - sum of the patcher's writer outputs - its mean over positions| /
    max |ln_final input| on the probe (pre-LN and parallel decoders; `patcher` is a `circuits.edge_patching.EdgePatcher`)."""
    model = patcher.model
    if model.bridge in _WRITER_GAPS:
        return _WRITER_GAPS[model.bridge]
    probe = _probe(model)
    with torch.no_grad():
        total = patcher.writer_outputs(probe).double().sum(0)  # [1, pos, d_model]
        _, cache = model.run_with_cache(probe, names=["ln_final.hook_in"])
    final = cache["ln_final.hook_in"].double()  # [1, pos, d_model]
    # the attention output biases b_O are not any writer's: they are the same at every
    # position (and in every run, so they cancel in every delta); remove that constant
    rest = final - total  # [1, pos, d_model]
    rest = rest - rest.mean(dim=1, keepdim=True)
    gap = rest.abs().max().item() / max(final.abs().max().item(), 1e-30)
    _WRITER_GAPS[model.bridge] = gap
    return gap


def check_writer_sum(patcher) -> None:
    """ValueError unless the patcher's writer outputs sum to the model's final residual."""
    gap = writer_sum_gap(patcher)
    if gap > RELATIVE_TOLERANCE:
        raise ValueError(
            f"model: the edge graph's writers (embeddings, per-head hook_z @ W_O, MLP outputs) "
            f"do not sum to {patcher.model.name}'s final residual (gap {gap:.2g} of its size), "
            f"so per-edge deltas would be wrong (use node activation patching instead)"
        )


__all__ = ["additivity_gap", "check_additive_residual", "check_writer_sum", "writer_sum_gap"]
