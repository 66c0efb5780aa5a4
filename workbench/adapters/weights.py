"""Per-head attention weights in float64, read from the bridge's raw HuggingFace modules.

A model adapter (`workbench.adapters`), shared by the head-anatomy analyses (head SVD, sparse
attention decomposition, taxonomy, entropy collapse). Nothing here changes the model: the
weights are read from `bridge.original_model.state_dict()` (names with the bridge's
`._original_component` segments removed, i.e. the standard HF names: `c_attn`/`c_proj` for GPT-2, `q_proj`/`k_proj`/`v_proj`/
`o_proj` for Llama-style models, `query`/`key`/`value`/`attention.output.dense` for BERT), so a
shared model is never switched into compatibility mode. The weights returned are therefore
*raw HF weights*, not TransformerLens compatibility-mode folded weights.

Conventions (row vectors, as TransformerLens): `q = x~ @ W_Q_aug` with the augmented input
`x~ = [normalised residual; 1]` of length `d_model + 1`:

- pre-LN decoders (GPT-2 LayerNorm, Llama RMSNorm): the normalised residual is
  `(x - mean(x)) / sqrt(var(x) + eps)` (LayerNorm) or `x / sqrt(mean(x^2) + eps)` (RMSNorm);
  the norm's gain `g` and bias `beta` are folded here: `W_Q_eff = diag(g) W_Q`,
  `b_Q_eff = beta W_Q + b_Q` (same for K and V). The last row of `W_Q_aug` is `b_Q_eff`.
- post-LN encoders (BERT): the attention input is already a layer-norm output, so the
  "normalised residual" is the layer input itself and the weights are used unchanged.

RoPE models (`rotary=True`): the weights here are position-free; the rotation at a position is
`rotation_matrices` (q_rot = q @ R(pos)), HF's rotate-half convention. Grouped-query attention:
query head h reads key/value head `h // (n_heads // n_key_value_heads)`.

Caveats: supported architectures are GPT-2, Llama-family (q_proj/k_proj/v_proj/o_proj with a
plain RMSNorm, optional q/k/v biases) and BERT; anything else raises ValueError naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from workbench.model import Model

WEIGHTS_NOTE = (
    "raw HuggingFace weights in float64 (not compatibility-mode folded); the pre-attention "
    "norm's gain/bias are folded into W_Q/W_K/W_V by this analysis (x~ = [normalised residual; 1])"
)


@dataclass(frozen=True)
class HeadWeights:
    """Effective float64 weights of one attention head (see module docstring)."""

    layer: int
    head: int
    kv_head: int
    W_Q: np.ndarray  # [d_model + 1, d_head], last row = effective bias
    W_K: np.ndarray  # [d_model + 1, d_head]
    W_V: np.ndarray  # [d_model + 1, d_head]
    W_O: np.ndarray  # [d_head, d_model]
    norm: str  # "layernorm", "rmsnorm" (pre-LN) or "post-layernorm" (input already normalised)
    eps: float
    rotary: bool

    @property
    def d_head(self) -> int:
        """Head dimension (columns of `W_Q`)."""
        return self.W_Q.shape[1]


def architecture(model: Model) -> str:
    """ "gpt2", "llama" or "bert" from the HF weight names; ValueError otherwise."""
    names = _state(model).keys()
    if "transformer.h.0.attn.c_attn.weight" in names:
        return "gpt2"
    llama = ("model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.o_proj.weight")
    if all(n in names for n in llama) and "model.layers.0.input_layernorm.bias" not in names:
        return "llama"  # plain RMSNorm in front of q/k/v/o projections
    if any(n.endswith("encoder.layer.0.attention.self.query.weight") for n in names):
        return "bert"
    kind = type(model.bridge.original_model).__name__
    raise ValueError(f"model: head anatomy supports GPT-2, Llama and BERT weights, not {kind}")


def kv_head_of(model: Model, head: int) -> int:
    """The key/value head a query head reads under grouped-query attention."""
    return head // (model.n_heads // model.n_key_value_heads)


def _state(model: Model) -> dict[str, torch.Tensor]:
    sd = model.bridge.original_model.state_dict()
    return {k.replace("._original_component", ""): v for k, v in sd.items()}


def _f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _bert_prefix(sd: dict) -> str:
    return next(n for n in sd if n.endswith("encoder.layer.0.attention.self.query.weight")).split(
        "encoder.layer.0."
    )[0]


def _raw_projections(model: Model, layer: int) -> dict[str, np.ndarray]:
    """Raw `[d_model, width]` projections (x @ W + b) of one layer, plus norm parameters."""
    sd, arch, d = _state(model), architecture(model), model.d_model
    zeros = np.zeros
    if arch == "gpt2":
        p = f"transformer.h.{layer}."
        qkv, qkv_b = _f64(sd[p + "attn.c_attn.weight"]), _f64(sd[p + "attn.c_attn.bias"])
        return {
            "Q": qkv[:, :d],
            "K": qkv[:, d : 2 * d],
            "V": qkv[:, 2 * d :],
            "bQ": qkv_b[:d],
            "bK": qkv_b[d : 2 * d],
            "bV": qkv_b[2 * d :],
            "O": _f64(sd[p + "attn.c_proj.weight"]),
            "bO": _f64(sd[p + "attn.c_proj.bias"]),
            "gain": _f64(sd[p + "ln_1.weight"]),
            "beta": _f64(sd[p + "ln_1.bias"]),
            "eps": float(model.bridge.original_model.config.layer_norm_epsilon),
            "norm": "layernorm",
        }
    if arch == "llama":
        p = f"model.layers.{layer}.self_attn."

        def lin(name: str) -> tuple[np.ndarray, np.ndarray]:
            w = _f64(sd[p + name + ".weight"]).T  # [d_model, width]
            b = sd.get(p + name + ".bias")
            return w, zeros(w.shape[1]) if b is None else _f64(b)

        (q, bq), (k, bk), (v, bv), (o, bo) = (
            lin(n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")
        )
        cfg = model.bridge.original_model.config
        return {
            "Q": q,
            "K": k,
            "V": v,
            "bQ": bq,
            "bK": bk,
            "bV": bv,
            "O": o,
            "bO": bo,
            "gain": _f64(sd[f"model.layers.{layer}.input_layernorm.weight"]),
            "beta": zeros(d),
            "eps": float(getattr(cfg, "rms_norm_eps", 1e-6)),
            "norm": "rmsnorm",
        }
    p = f"{_bert_prefix(sd)}encoder.layer.{layer}.attention."

    def lin_b(name: str) -> tuple[np.ndarray, np.ndarray]:
        return _f64(sd[p + name + ".weight"]).T, _f64(sd[p + name + ".bias"])

    (q, bq), (k, bk), (v, bv) = (lin_b(f"self.{n}") for n in ("query", "key", "value"))
    o, bo = lin_b("output.dense")
    return {
        "Q": q,
        "K": k,
        "V": v,
        "bQ": bq,
        "bK": bk,
        "bV": bv,
        "O": o,
        "bO": bo,
        "gain": np.ones(d),
        "beta": zeros(d),
        "eps": 0.0,
        "norm": "post-layernorm",
    }


def head_weights(model: Model, layer: int, head: int) -> HeadWeights:
    """Effective float64 weights of (layer, head), norm gain/bias folded (module docstring)."""
    layer, head = model.check_head(layer, head)
    raw, dh = _raw_projections(model, layer), model.d_head
    kv = kv_head_of(model, head)
    q_cols, kv_cols = slice(head * dh, (head + 1) * dh), slice(kv * dh, (kv + 1) * dh)

    def augmented(w: np.ndarray, b: np.ndarray, cols: slice) -> np.ndarray:
        w_eff = raw["gain"][:, None] * w[:, cols]  # [d_model, d_head]
        b_eff = raw["beta"] @ w[:, cols] + b[cols]  # [d_head]
        return np.vstack([w_eff, b_eff[None]])  # [d_model + 1, d_head]

    return HeadWeights(
        layer=layer,
        head=head,
        kv_head=kv,
        W_Q=augmented(raw["Q"], raw["bQ"], q_cols),
        W_K=augmented(raw["K"], raw["bK"], kv_cols),
        W_V=augmented(raw["V"], raw["bV"], kv_cols),
        W_O=raw["O"][q_cols, :],  # [d_head, d_model]
        norm=raw["norm"],
        eps=raw["eps"],
        rotary=architecture(model) == "llama",
    )


def input_norm(model: Model, layer: int) -> tuple[str, float]:
    """`(kind, eps)` of the norm in front of `layer`'s attention (see `normalise`)."""
    raw = _raw_projections(model, layer)
    return raw["norm"], raw["eps"]


def output_weights(model: Model, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """`(W_O [head, d_head, d_model], b_O [d_model])` of a layer, float64."""
    raw = _raw_projections(model, layer)
    w_o = raw["O"].reshape(model.n_heads, model.d_head, model.d_model)  # [head, d_head, d_model]
    return w_o, raw["bO"]


def bert_output_norms(model: Model, layer: int) -> dict[str, np.ndarray | float]:
    """BERT post-LN parameters of a layer: the attention-output and the block-output norms."""
    sd = _state(model)
    p = f"{_bert_prefix(sd)}encoder.layer.{layer}."
    return {
        "attn_gain": _f64(sd[p + "attention.output.LayerNorm.weight"]),
        "attn_beta": _f64(sd[p + "attention.output.LayerNorm.bias"]),
        "out_gain": _f64(sd[p + "output.LayerNorm.weight"]),
        "out_beta": _f64(sd[p + "output.LayerNorm.bias"]),
        "eps": float(model.bridge.original_model.config.layer_norm_eps),
    }


def embedding_matrix(model: Model) -> np.ndarray:
    """Token embedding `W_E [d_vocab, d_model]`, float64."""
    sd, arch = _state(model), architecture(model)
    if arch == "bert":
        return _f64(sd[f"{_bert_prefix(sd)}embeddings.word_embeddings.weight"])
    return _f64(sd["transformer.wte.weight" if arch == "gpt2" else "model.embed_tokens.weight"])


def unembedding_matrix(model: Model) -> np.ndarray:
    """Unembedding `W_U [d_model, d_vocab]` with the final norm's gain folded in (decoders)."""
    arch = architecture(model)
    if arch == "bert":
        raise ValueError("model: no trained unembedding for encoders (MLM head is not used)")
    sd = _state(model)
    tied = embedding_matrix(model).T  # [d_model, d_vocab]
    w_u = _f64(sd["lm_head.weight"]).T if "lm_head.weight" in sd else tied  # [d_model, d_vocab]
    gain = _f64(sd["transformer.ln_f.weight" if arch == "gpt2" else "model.norm.weight"])
    return gain[:, None] * w_u  # [d_model, d_vocab]


def normalise(x: np.ndarray, norm: str, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """`(normalised x, scale)` over the last axis, float64 (`post-layernorm`: unchanged)."""
    if norm == "post-layernorm":
        return x, np.ones(x.shape[:-1] + (1,))
    if norm == "layernorm":
        centred = x - x.mean(-1, keepdims=True)
        scale = np.sqrt((centred**2).mean(-1, keepdims=True) + eps)  # [..., 1]
        return centred / scale, scale
    scale = np.sqrt((x**2).mean(-1, keepdims=True) + eps)  # [..., 1]
    return x / scale, scale


def rotation_matrices(cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """`[pos, d_head, d_head]` matrices R with `q_rot = q @ R` (HF rotate-half RoPE).

    `rotate_half(q) = cat(-q[half:], q[:half]) = q @ P`; `q_rot = q*cos + rotate_half(q)*sin`.
    """
    d_head = cos.shape[-1]
    half = d_head // 2
    perm = np.zeros((d_head, d_head))
    perm[np.arange(half) + half, np.arange(half)] = -1.0
    perm[np.arange(half), np.arange(half) + half] = 1.0
    eye = np.eye(d_head)
    return eye[None] * cos[:, None, :] + perm[None] * sin[:, None, :]  # [pos, d_head, d_head]
