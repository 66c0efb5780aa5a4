"""Per-position q and k of every head as the model's softmax sees them (rotated on RoPE models).

Used by the entropy bound (`analysis.training_dynamics.entropy_bound`, and through it the
entropy-collapse table). Bridges of the Llama family, Qwen and Gemma fire `hook_rot_q` /
`hook_rot_k`; the fused-QKV and GPT-J bridges (GPT-NeoX, Phi-3, Falcon, GPT-J) do not, but fire
the unrotated `hook_q` / `hook_k`, which are rotated here with the model's own cos/sin
(`workbench.adapters.weights.rotary_cos_sin`: the bridge's `rotary_emb` hooks, or GPT-J's
sinusoid table) and the family's style (rotate-half or interleaved pairs, partial rotary on the
first `rotary_dim` dims). Callers check the result reproduces `hook_pattern` before using it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from workbench.adapters import weights

if TYPE_CHECKING:
    from workbench.model import Model

_COS_SIN = ["rotary_emb.hook_cos", "rotary_emb.hook_sin"]


def qk_hook_names(model: Model, layer: int) -> list[str]:
    """The hooks `rotated_qk` reads for `layer` (pass them to `run_with_cache`)."""
    lay = weights.layout(model)
    base = f"blocks.{layer}.attn."
    if lay.rotary is not None and lay.rot_hooks:
        return [base + "hook_rot_q", base + "hook_rot_k"]
    names = [base + "hook_q", base + "hook_k"]
    return names + (_COS_SIN if lay.rotary == "half" else [])


def _f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def rotated_qk(model: Model, cache: Any, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """`(q [pos, head, d_head], k [pos, kv_head, d_head])` of batch item 0, float64."""
    lay = weights.layout(model)
    base = f"blocks.{layer}.attn."
    if lay.rotary is not None and lay.rot_hooks:
        return _f64(cache[base + "hook_rot_q"][0]), _f64(cache[base + "hook_rot_k"][0])
    q = _f64(cache[base + "hook_q"][0])  # [pos, head, d_head]
    k = _f64(cache[base + "hook_k"][0])  # [pos, kv_head, d_head]
    if lay.rotary is None:
        return q, k
    cos, sin = weights.rotary_cos_sin(model, q.shape[0], cache)  # [pos, rotary_dim]
    rot = weights.rotation_matrices(cos, sin, d_head=q.shape[-1], style=lay.rotary)
    q = np.einsum("phd,pde->phe", q, rot)  # [pos, head, d_head]
    k = np.einsum("phd,pde->phe", k, rot)  # [pos, kv_head, d_head]
    return q, k
