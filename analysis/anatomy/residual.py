"""The attention input of a layer, normalised, and split into upstream components (float64).

Used by the sparse attention decomposition. One forward pass caches only the hooks needed:

- `x_norm [pos, d_model]`: the normalised residual the layer's attention reads (`x~` without
  its constant 1): `(x - mean) / scale` (LayerNorm), `x / scale` (RMSNorm) or, for post-LN
  encoders (BERT), the layer input itself; computed in float64 from `blocks.{l}.hook_resid_pre`.
- `scores [head, query, key]`: the model's raw scores q.k (before the 1/sqrt(d_head) scaling)
  from its own `hook_q`/`hook_k` (`hook_rot_q`/`hook_rot_k` on RoPE models; grouped-query heads
  read their kv head), and `pattern [head, query, key]`. Not `hook_attn_scores`: on the BERT
  bridge (TransformerLens 4.3) that hook carries the post-softmax pattern, not the scores;
  on decoders it equals `attn_scale * q.k` (checked in the tests).
- `components`: name -> `[pos, d_model]` vectors in the same normalised frame that sum to
  `x_norm`: "embed" (and "pos_embed" on GPT-2), every earlier head "L{m}H{h}" (`hook_z @ W_O`),
  each layer's output bias "L{m} attn bias" and "L{m} mlp"; divided by the layer-norm scale of
  the full residual (and centred for LayerNorm). For BERT (post-LN) every layer norm between
  the component and the layer is linearised at its observed scale (exact, as a norm is affine
  once its scale is fixed), adding its bias as "L{m} attn-LN bias" / "L{m} out-LN bias".
  `component_error` is the largest deviation of the components' raw sum from the hooked
  residual (a float32-level check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from workbench.adapters import weights
from workbench.heads import Head

if TYPE_CHECKING:
    from workbench.model import Model


@dataclass(frozen=True)
class AttentionInput:
    x_norm: np.ndarray  # [pos, d_model]
    scores: np.ndarray  # [head, query, key] raw q.k
    pattern: np.ndarray  # [head, query, key]
    cos: np.ndarray | None  # [pos, d_head] (RoPE models)
    sin: np.ndarray | None  # [pos, d_head]
    components: dict[str, np.ndarray] | None  # name -> [pos, d_model]
    component_error: float


def prompt_tokens(model: Model, prompt: str | torch.Tensor) -> torch.Tensor:
    """`[1, pos]` tokens of one prompt (a string or a 1-D / `[1, pos]` token tensor)."""
    if isinstance(prompt, str):
        return model.to_tokens(prompt)
    tokens = torch.as_tensor(prompt)
    if tokens.dim() == 1:
        tokens = tokens[None]
    if tokens.dim() != 2 or tokens.shape[0] != 1:
        raise ValueError(f"prompt: expected one prompt, got tokens of shape {tuple(tokens.shape)}")
    return tokens.long()


def _f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


@torch.no_grad()
def attention_input(
    model: Model, tokens: torch.Tensor, layer: int, *, components: bool = False
) -> AttentionInput:
    """The normalised input of `layer`'s attention, scores and, optionally, its components."""
    arch = weights.architecture(model)
    rotary = arch == "llama"
    resid_name = f"blocks.{layer}.hook_resid_pre"
    qk = ("hook_rot_q", "hook_rot_k") if rotary else ("hook_q", "hook_k")
    names = [resid_name, f"blocks.{layer}.attn.hook_pattern"]
    names += [f"blocks.{layer}.attn.{n}" for n in qk]
    if rotary:
        names += ["rotary_emb.hook_cos", "rotary_emb.hook_sin"]
    if components:
        names += ["hook_embed"] if arch != "bert" else ["blocks.0.hook_resid_pre"]
        names += ["hook_pos_embed"] if arch == "gpt2" else []
        for m in range(layer):
            names += [f"blocks.{m}.attn.hook_z", f"blocks.{m}.hook_mlp_out"]
    _, cache = model.run_with_cache(tokens, names=list(dict.fromkeys(names)))
    resid = _f64(cache[resid_name][0])  # [pos, d_model]
    norm_kind, eps = weights.input_norm(model, layer)
    x_norm, scale = weights.normalise(resid, norm_kind, eps)  # [pos, d_model], [pos, 1]
    parts, error = None, 0.0
    if components:
        raw = _raw_components(model, cache, layer, arch)
        if arch == "bert":
            raw = _bert_linearised(model, cache, layer, raw)
        total = sum(raw.values())  # [pos, d_model]
        error = float(np.abs(total - resid).max())
        centre = norm_kind == "layernorm"
        parts = {
            name: ((c - c.mean(-1, keepdims=True)) if centre else c) / scale
            for name, c in raw.items()
        }
    q = _f64(cache[names[2]][0])  # [pos, head, d_head]
    k = _f64(cache[names[3]][0])  # [pos, kv_head, d_head]
    k = np.repeat(k, model.n_heads // k.shape[1], axis=1)  # [pos, head, d_head]
    pick = (lambda n: _f64(cache[n][0])) if rotary else (lambda n: None)
    return AttentionInput(
        x_norm=x_norm,
        scores=np.einsum("qhd,khd->hqk", q, k),  # [head, query, key]
        pattern=_f64(cache[names[1]][0]),  # [head, query, key]
        cos=pick("rotary_emb.hook_cos"),
        sin=pick("rotary_emb.hook_sin"),
        components=parts,
        component_error=error,
    )


def _layer_parts(cache: dict, model: Model, m: int) -> dict[str, np.ndarray]:
    """Per-head outputs, output bias and MLP output of layer m, raw (un-normalised)."""
    w_o, b_o = weights.output_weights(model, m)  # [head, d_head, d_model], [d_model]
    z = _f64(cache[f"blocks.{m}.attn.hook_z"][0])  # [pos, head, d_head]
    per_head = np.einsum("phd,hdm->hpm", z, w_o)  # [head, pos, d_model]
    parts = {str(Head(m, h)): per_head[h] for h in range(model.n_heads)}
    parts[f"L{m} attn bias"] = np.broadcast_to(b_o, per_head.shape[1:]).copy()
    return parts


def _raw_components(model: Model, cache: dict, layer: int, arch: str) -> dict[str, np.ndarray]:
    if arch == "bert":
        return {"embed": _f64(cache["blocks.0.hook_resid_pre"][0])}  # post-embedding-LN input
    out = {"embed": _f64(cache["hook_embed"][0])}
    if arch == "gpt2":
        out["pos_embed"] = _f64(cache["hook_pos_embed"][0])
    for m in range(layer):
        out.update(_layer_parts(cache, model, m))
        out[f"L{m} mlp"] = _f64(cache[f"blocks.{m}.hook_mlp_out"][0])
    return out


def _linearised_norm(
    stream: dict, gain: np.ndarray, beta: np.ndarray, eps: float, bias_name: str
) -> dict:
    """Apply a LayerNorm at the observed scale of the summed stream to every component."""
    total = sum(stream.values())  # [pos, d_model]
    centred = total - total.mean(-1, keepdims=True)
    scale = np.sqrt((centred**2).mean(-1, keepdims=True) + eps)  # [pos, 1]
    out = {n: gain * (c - c.mean(-1, keepdims=True)) / scale for n, c in stream.items()}
    out[bias_name] = np.broadcast_to(beta, total.shape).copy()
    return out


def _bert_linearised(model: Model, cache: dict, layer: int, stream: dict) -> dict:
    """Carry components through each earlier post-LN block (norms linearised at their scale)."""
    for m in range(layer):
        norms = weights.bert_output_norms(model, m)
        stream = {**stream, **_layer_parts(cache, model, m)}
        stream = _linearised_norm(
            stream, norms["attn_gain"], norms["attn_beta"], norms["eps"], f"L{m} attn-LN bias"
        )
        stream[f"L{m} mlp"] = _f64(cache[f"blocks.{m}.hook_mlp_out"][0])
        stream = _linearised_norm(
            stream, norms["out_gain"], norms["out_beta"], norms["eps"], f"L{m} out-LN bias"
        )
    return stream
