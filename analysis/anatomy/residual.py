"""The attention input of a layer, normalised, and split into upstream components (float64).

Used by the sparse attention decomposition. One forward pass caches only the hooks needed:

- `x_norm [pos, d_model]`: the normalised residual the layer's attention reads (`x~` without
  its constant 1): `(x - mean) / scale` (LayerNorm), `x / scale` (RMSNorm) or, for post-LN
  encoders (BERT), the layer input itself; computed in float64 from `blocks.{l}.hook_resid_pre`.
- `scores [head, query, key]`: the model's raw scores q.k (before the attention scaling) from
  its own hooks: `hook_rot_q`/`hook_rot_k` where the bridge fires them (Llama family, Qwen,
  Gemma: rotated, and q/k-normed on Qwen-3), `hook_q`/`hook_k` without RoPE (GPT-2, OPT, BERT;
  OPT's HF code scales q after `q_proj`, so its raw score is unscaled too), else (GPT-NeoX,
  Phi-3, Falcon, whose bridges fire no rotated-q hook) `hook_attn_scores * sqrt(d_head)`; GPT-J
  (whose `hook_attn_scores` holds the pattern): `hook_q`/`hook_k` rotated by transformers' own
  GPT-J `apply_rotary_pos_emb`.
  Grouped-query heads read their kv head. `pattern [head, query, key]` from `hook_pattern`.
  `hook_attn_scores` is not used without RoPE: on the BERT bridge (TransformerLens 4.3) it
  carries the post-softmax pattern. `cos`/`sin` `[pos, rotary_dim]` (`weights.rotary_cos_sin`).
- `components`: name -> `[pos, d_model]` vectors in the same normalised frame that sum to
  `x_norm`: "embed" (and "pos_embed" with learned positions: GPT-2, OPT), every earlier head
  "L{m}H{h}" (`hook_z @ W_O`, raw writes from `weights.output_weights`), each layer's output
  bias "L{m} attn bias" and "L{m} mlp"; divided by the layer-norm scale of
  the full residual (and centred for LayerNorm). For BERT (post-LN) every layer norm between
  the component and the layer is linearised at its observed scale (exact, as a norm is affine
  once its scale is fixed), adding its bias as "L{m} attn-LN bias" / "L{m} out-LN bias".
  `component_error` is the largest deviation of the components' raw sum from the hooked
  residual (a float32-level check); above 1e-3 of the residual's scale the components are
  refused (NotImplementedError) rather than reported. Parallel blocks (GPT-NeoX, GPT-J, Falcon)
  add their attention and MLP outputs to the same residual, so the bookkeeping is unchanged;
  Gemma-2's post-attention norms make the writes non-additive and are refused.
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


def _score_hooks(model: Model, layer: int) -> tuple[list[str], str]:
    """Hook names the model's own raw scores come from, and how ("qk" or "scaled")."""
    lay = weights.layout(model)
    if lay.rot_hooks:  # rotated (and q/k-normed) q, k as the model computed them
        return [f"blocks.{layer}.attn.hook_rot_q", f"blocks.{layer}.attn.hook_rot_k"], "qk"
    if lay.rotary is None:
        return [f"blocks.{layer}.attn.hook_q", f"blocks.{layer}.attn.hook_k"], "qk"
    if lay.rotary == "interleaved":  # GPT-J: its hook_attn_scores holds the pattern
        return [f"blocks.{layer}.attn.hook_q", f"blocks.{layer}.attn.hook_k"], "gptj"
    return [f"blocks.{layer}.attn.hook_attn_scores"], "scaled"  # q_rot.k_rot / sqrt(d_head)


@torch.no_grad()
def attention_input(
    model: Model, tokens: torch.Tensor, layer: int, *, components: bool = False
) -> AttentionInput:
    """The normalised input of `layer`'s attention, scores and, optionally, its components."""
    lay = weights.layout(model)
    resid_name, pattern_name = f"blocks.{layer}.hook_resid_pre", f"blocks.{layer}.attn.hook_pattern"
    score_names, how = _score_hooks(model, layer)
    names = [resid_name, pattern_name, *score_names]
    if lay.rotary == "half":
        names += ["rotary_emb.hook_cos", "rotary_emb.hook_sin"]
    if components:
        if lay.post_attention_norm:
            raise NotImplementedError(
                f"model: {lay.family} normalises each attention/MLP output before the residual "
                "(post-attention norms), so upstream writers do not add up linearly"
            )
        names += ["hook_embed"] if not lay.post_ln else ["blocks.0.hook_resid_pre"]
        names += ["hook_pos_embed"] if lay.learned_positions else []
        for m in range(layer):
            names += [f"blocks.{m}.attn.hook_z", f"blocks.{m}.hook_mlp_out"]
    _, cache = model.run_with_cache(tokens, names=list(dict.fromkeys(names)))
    resid = _f64(cache[resid_name][0])  # [pos, d_model]
    norm_kind, eps = weights.input_norm(model, layer)
    x_norm, scale = weights.normalise(resid, norm_kind, eps)  # [pos, d_model], [pos, 1]
    parts, error = None, 0.0
    if components:
        raw = _raw_components(model, cache, layer, lay)
        if lay.post_ln:
            raw = _bert_linearised(model, cache, layer, raw)
        total = sum(raw.values())  # [pos, d_model]
        error = float(np.abs(total - resid).max())
        if error > 1e-3 * max(1.0, float(np.abs(resid).max())):
            raise NotImplementedError(
                f"model: the hooked upstream writers of layer {layer} do not sum to its input "
                f"(off by {error:.2e}); upstream contributions are not supported on {lay.family}"
            )
        centre = norm_kind == "layernorm"
        parts = {
            name: ((c - c.mean(-1, keepdims=True)) if centre else c) / scale
            for name, c in raw.items()
        }
    if how in ("qk", "gptj"):
        q = _f64(cache[score_names[0]][0])  # [pos, head, d_head]
        k = _f64(cache[score_names[1]][0])  # [pos, kv_head, d_head]
        if how == "gptj":
            q, k = _gptj_rotate(model, q), _gptj_rotate(model, k)
        k = np.repeat(k, model.n_heads // k.shape[1], axis=1)  # [pos, head, d_head]
        scores = np.einsum("qhd,khd->hqk", q, k)  # [head, query, key]
    else:
        d_head = weights.head_weights(model, layer, 0).d_head
        scores = _f64(cache[score_names[0]][0]) * np.sqrt(d_head)  # [head, query, key]
    cos = sin = None
    if lay.rotary is not None:
        cos, sin = weights.rotary_cos_sin(model, tokens.shape[1], cache)  # [pos, rotary_dim]
    return AttentionInput(
        x_norm=x_norm,
        scores=scores,
        pattern=_f64(cache[pattern_name][0]),  # [head, query, key]
        cos=cos,
        sin=sin,
        components=parts,
        component_error=error,
    )


def _gptj_rotate(model: Model, x: np.ndarray) -> np.ndarray:
    """`[pos, head, d_head]` rotated by transformers' own GPT-J RoPE (first rotary_dim dims)."""
    from transformers.models.gptj.modeling_gptj import apply_rotary_pos_emb

    table = next(
        m.embed_positions
        for m in model.bridge.original_model.modules()
        if hasattr(m, "embed_positions")
    )
    sin, cos = torch.split(table[: x.shape[0]].double()[None], table.shape[-1] // 2, dim=-1)
    rd = table.shape[-1]
    t = torch.from_numpy(x)[None]  # [1, pos, head, d_head]
    rotated = apply_rotary_pos_emb(t[..., :rd], sin, cos)  # [1, pos, head, rotary_dim]
    return torch.cat([rotated, t[..., rd:]], dim=-1)[0].numpy()


def _layer_parts(cache: dict, model: Model, m: int) -> dict[str, np.ndarray]:
    """Per-head outputs, output bias and MLP output of layer m, raw (un-normalised)."""
    w_o, b_o = weights.output_weights(model, m)  # [head, d_head, d_model], [d_model]
    z = _f64(cache[f"blocks.{m}.attn.hook_z"][0])  # [pos, head, d_head]
    per_head = np.einsum("phd,hdm->hpm", z, w_o)  # [head, pos, d_model]
    parts = {str(Head(m, h)): per_head[h] for h in range(model.n_heads)}
    parts[f"L{m} attn bias"] = np.broadcast_to(b_o, per_head.shape[1:]).copy()
    return parts


def _raw_components(
    model: Model, cache: dict, layer: int, lay: weights.Layout
) -> dict[str, np.ndarray]:
    if lay.post_ln:
        return {"embed": _f64(cache["blocks.0.hook_resid_pre"][0])}  # post-embedding-LN input
    out = {"embed": _f64(cache["hook_embed"][0])}
    if lay.learned_positions:
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
