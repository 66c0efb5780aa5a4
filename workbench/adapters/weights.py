"""Per-head attention weights in float64, measured from the model's own projection modules.

A model adapter (`workbench.adapters`), shared by the head-anatomy analyses (head SVD, sparse
attention decomposition, taxonomy, entropy collapse, SVD tracing). Nothing here changes the
model and a shared model is never switched into compatibility mode.

How the weights are read (layout-independent): every bridge attention component has `q`, `k`,
`v`, `o` projections (for fused-QKV families, GPT-2 `c_attn`, GPT-NeoX/Falcon
`query_key_value`, Phi-3 `qkv_proj`, these are the bridge's own split modules, which its forward
uses). Each projection is *probed*: the zero vector and the identity basis are fed through the
module the model runs, with its parameters cast to float64 (`torch.func.functional_call`), so
`W = f(I) - f(0)` and `b = f(0)` are its exact affine map whatever the storage layout (Conv1D or
Linear, fused or split, Falcon's multi-query split). Heads are the consecutive `d_head` columns
of that output (the head-major layout every HF attention reshapes to); grouped/multi-query
attention: query head h reads key/value head `h // (n_heads // n_kv_heads)`. The pre-attention
norm is probed the same way (`weight_probes.probe_norm`: gain and bias from `f(x)` and `f(-x)`,
the kind, LayerNorm or RMSNorm, from a third input), which covers Gemma's `(1 + w)` RMSNorm
without a rule for it. The tests check all of this against each HF module's own q/k/v and
transformers' eager attention, family by family. Probes are cached per bridge (the last two
layers, keyed by the parameters' storage and version, so edited weights are re-probed).

Conventions (row vectors, as TransformerLens): `q = x~ @ W_Q_aug` with `x~ = [n; 1]` of length
`d_model + 1`, where `n` is the normalised residual `(x - mean) / sqrt(var + eps)` (LayerNorm)
or `x / sqrt(mean(x^2) + eps)` (RMSNorm). The norm's gain `g` and bias `beta` are folded in:
`W_Q = diag(g) W`, `b_Q = beta W + b` (last row of `W_Q_aug`).

LayerNorm models (GPT-2, GPT-NeoX, OPT, GPT-J, Falcon) are also *centred*, as TransformerLens'
compatibility mode does (fold_ln + centre reading and writing weights): LayerNorm's output `n`
never has a component along the all-ones direction, so W_Q/W_K/W_V have it projected out of
their rows (`W - W.mean(0)`; nothing that reaches them changes) and W_O has it projected out of
its output (`W_O - W_O.mean(-1)`; every later reader is a LayerNorm, which removes it). The
QK/OV spectra are then those of the maps acting on what LayerNorm outputs (docs/anatomy.md).
`output_weights` stays raw (the exact writes, for residual bookkeeping). Post-LN encoders
(BERT): the attention input is the layer input itself; weights are used unchanged.

Rotary models: W_Q/W_K are position-free; `rotation_matrices` gives `R(pos)` with
`q_rot = q @ R(pos)`: rotate-half (GPT-NeoX, Llama family, Phi-3, Falcon) or GPT-J's interleaved
pairs, on the first `rotary_dim` dims only (partial rotary), identity on the rest. Qwen-3's
per-head q/k RMSNorm (`q_norm`/`k_norm`, applied before RoPE) is carried as gains
(`HeadWeights.q_norm_gain`), its per-position scale is data-dependent. Gemma-2's norm on the
attention output (`ln1_post`) is carried as `post_norm_gain`.

Supported families (validated in tests/integration/analysis/anatomy/test_anatomy_families.py):
see `SUPPORTED`; anything else raises ValueError naming it, and variants that cannot be
represented exactly (Falcon with ALiBi or the two-norm "new decoder architecture", post-LN OPT,
OPT with an embedding projection) raise NotImplementedError naming the reason.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from workbench.adapters.modules import hf_module
from workbench.adapters.weight_probes import probe_affine, probe_norm

if TYPE_CHECKING:
    from workbench.model import Model

SUPPORTED = (
    "bert",
    "falcon",
    "gemma",
    "gemma2",
    "gpt2",
    "gpt_neox",
    "gptj",
    "llama",
    "mistral",
    "opt",
    "phi3",
    "qwen2",
    "qwen3",
)
_LLAMA_LIKE = ("llama", "mistral", "qwen2")  # architecture() == "llama" (SVD tracing's contract)
_ROT_HOOKS = (*_LLAMA_LIKE, "qwen3", "gemma", "gemma2")  # bridges whose hook_rot_q/k fire

WEIGHTS_NOTE = (
    "raw HuggingFace weights in float64, probed from the model's own q/k/v/o modules (not "
    "compatibility-mode folded); the pre-attention norm's gain/bias are folded into "
    "W_Q/W_K/W_V (x~ = [normalised residual; 1]); LayerNorm models are centred as "
    "TransformerLens' compatibility mode (the all-ones direction projected out of the reading "
    "rows and of W_O's output)"
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
    W_O: np.ndarray  # [d_head, d_model] (centred output on LayerNorm models)
    norm: str  # "layernorm", "rmsnorm" (pre-LN) or "post-layernorm" (input already normalised)
    eps: float
    rotary: bool
    rotary_dim: int = 0  # dims rotated (the first ones); 0 without RoPE
    rotary_style: str | None = None  # "half" (rotate-half) or "interleaved" (GPT-J pairs)
    q_norm_gain: np.ndarray | None = None  # [d_head] Qwen-3 per-head q RMSNorm gain
    k_norm_gain: np.ndarray | None = None  # [d_head]
    qk_norm_eps: float = 0.0
    post_norm_gain: np.ndarray | None = None  # [d_model] Gemma-2 attention-output norm gain

    @property
    def d_head(self) -> int:
        """Head dimension (columns of `W_Q`)."""
        return self.W_Q.shape[1]


@dataclass(frozen=True)
class Layout:
    """What head anatomy needs to know about a family (from the config and the bridge)."""

    family: str  # HF model_type
    post_ln: bool  # BERT-style: attention reads the layer input itself
    rotary: str | None  # None, "half" or "interleaved"
    learned_positions: bool  # a positional embedding added to the residual (GPT-2, OPT)
    rot_hooks: bool  # hook_rot_q / hook_rot_k fire on this bridge
    qk_norm: bool  # per-head q/k norms (Qwen-3)
    post_attention_norm: bool  # a norm on the attention output before the residual (Gemma-2)


_LAYOUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LAYERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ROTARY_DIMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _config(model: Model) -> Any:
    return model.bridge.original_model.config


def layout(model: Model) -> Layout:
    """The model's `Layout`; ValueError / NotImplementedError for what is not supported."""
    bridge = model.bridge
    if bridge in _LAYOUTS:
        return _LAYOUTS[bridge]
    cfg = _config(model)
    family = str(getattr(cfg, "model_type", ""))
    if family not in SUPPORTED:
        kind = type(bridge.original_model).__name__
        raise ValueError(
            f"model: head anatomy supports the families {', '.join(SUPPORTED)}; "
            f"{kind} ({family or 'unknown type'}) is not one of them"
        )
    _refuse_variants(family, cfg)
    block = bridge.blocks[0]
    result = Layout(
        family=family,
        post_ln=family == "bert",
        rotary="interleaved"
        if family == "gptj"
        else ("half" if _has(bridge, "rotary_emb") else None),
        learned_positions=family in ("gpt2", "opt"),
        rot_hooks=family in _ROT_HOOKS,
        qk_norm=_has(block.attn, "q_norm") and _has(block.attn, "k_norm"),
        post_attention_norm=_has(block, "ln1_post"),
    )
    _LAYOUTS[bridge] = result
    return result


def _has(module: Any, name: str) -> bool:
    return name in dict(module.named_children())


def _refuse_variants(family: str, cfg: Any) -> None:
    if family == "falcon" and getattr(cfg, "alibi", False):
        raise NotImplementedError(
            "model: Falcon with ALiBi adds a position bias to the scores outside W_Q W_K^T; "
            "head anatomy does not model it"
        )
    if family == "falcon" and getattr(cfg, "new_decoder_architecture", False):
        raise NotImplementedError(
            "model: Falcon's new decoder architecture (grouped fused QKV, two parallel norms) "
            "is not validated for head anatomy"
        )
    if family == "opt" and not getattr(cfg, "do_layer_norm_before", True):
        raise NotImplementedError(
            "model: post-LN OPT (do_layer_norm_before=False) is not supported"
        )
    if family == "opt" and getattr(cfg, "word_embed_proj_dim", cfg.hidden_size) != cfg.hidden_size:
        raise NotImplementedError(
            "model: OPT with an embedding projection (word_embed_proj_dim != hidden_size) is "
            "not supported"
        )


def architecture(model: Model) -> str:
    """ "gpt2", "llama" (Llama, Mistral, Qwen-2: plain RMSNorm, full rotate-half RoPE) or
    "bert", else the family name (`Layout.family`); ValueError for unsupported models."""
    family = layout(model).family
    return "llama" if family in _LLAMA_LIKE else family


def kv_head_of(model: Model, head: int) -> int:
    """The key/value head a query head reads under grouped-query attention."""
    return head // (model.n_heads // model.n_key_value_heads)


def _fingerprint(modules: list[torch.nn.Module]) -> tuple:
    return tuple((p.data_ptr(), p._version) for m in modules for p in m.parameters())


def _layer(model: Model, layer: int) -> dict[str, Any]:
    """The probed projections and norms of one layer (cached per bridge, last two layers)."""
    lay = layout(model)
    bridge, d = model.bridge, model.d_model
    names = [f"blocks.{layer}.attn.{p}" for p in ("q", "k", "v", "o")]
    extra = [] if lay.post_ln else [f"blocks.{layer}.ln1"]
    extra += [f"blocks.{layer}.attn.q_norm", f"blocks.{layer}.attn.k_norm"] if lay.qk_norm else []
    extra += [f"blocks.{layer}.ln1_post"] if lay.post_attention_norm else []
    modules = {n: hf_module(bridge, n) for n in names + extra}
    key = (layer, _fingerprint(list(modules.values())))
    cache = _LAYERS.setdefault(bridge, {})
    if key in cache:
        return cache[key]
    out: dict[str, Any] = {}
    for letter, name in zip("QKV", names, strict=False):
        out[letter], out["b" + letter] = probe_affine(modules[name], d)
    width = out["Q"].shape[1]
    out["O"], out["bO"] = probe_affine(modules[names[3]], width)
    out["d_head"] = width // model.n_heads
    out["n_kv"] = out["K"].shape[1] // out["d_head"]
    if lay.post_ln:
        out.update(norm="post-layernorm", gain=np.ones(d), beta=np.zeros(d), eps=0.0)
    else:
        out.update(probe_norm(modules[extra[0]], d))
    if lay.qk_norm:
        q_norm = probe_norm(modules[f"blocks.{layer}.attn.q_norm"], out["d_head"])
        k_norm = probe_norm(modules[f"blocks.{layer}.attn.k_norm"], out["d_head"])
        if (q_norm["norm"], k_norm["norm"]) != ("rmsnorm", "rmsnorm"):
            raise NotImplementedError("model: only RMSNorm q/k norms are supported")
        out.update(q_gain=q_norm["gain"], k_gain=k_norm["gain"], qk_eps=q_norm["eps"])
        if q_norm["eps"] != k_norm["eps"]:
            raise NotImplementedError("model: q and k norms with different eps")
    if lay.post_attention_norm:
        post = probe_norm(modules[f"blocks.{layer}.ln1_post"], d)
        out["post_gain"] = post["gain"]
    if len(cache) >= 2:
        cache.pop(next(iter(cache)))
    cache[key] = out
    return out


def head_weights(model: Model, layer: int, head: int) -> HeadWeights:
    """Effective float64 weights of (layer, head): norm folded, centred for LayerNorm."""
    layer, head = model.check_head(layer, head)
    raw, lay = _layer(model, layer), layout(model)
    dh, n_kv = raw["d_head"], raw["n_kv"]
    kv = head // (model.n_heads // n_kv)
    q_cols, kv_cols = slice(head * dh, (head + 1) * dh), slice(kv * dh, (kv + 1) * dh)
    centre = raw["norm"] == "layernorm"

    def augmented(w: np.ndarray, b: np.ndarray, cols: slice) -> np.ndarray:
        w_eff = raw["gain"][:, None] * w[:, cols]  # [d_model, d_head]
        if centre:
            w_eff = w_eff - w_eff.mean(0, keepdims=True)  # all-ones direction projected out
        b_eff = raw["beta"] @ w[:, cols] + b[cols]  # [d_head]
        return np.vstack([w_eff, b_eff[None]])  # [d_model + 1, d_head]

    w_o = raw["O"][q_cols, :]  # [d_head, d_model]
    if centre:
        w_o = w_o - w_o.mean(-1, keepdims=True)
    rotary_dim = 0
    if lay.rotary is not None:
        rotary_dim = _rotary_dim(model, dh)
    return HeadWeights(
        layer=layer,
        head=head,
        kv_head=kv,
        W_Q=augmented(raw["Q"], raw["bQ"], q_cols),
        W_K=augmented(raw["K"], raw["bK"], kv_cols),
        W_V=augmented(raw["V"], raw["bV"], kv_cols),
        W_O=w_o,
        norm=raw["norm"],
        eps=raw["eps"],
        rotary=lay.rotary is not None,
        rotary_dim=rotary_dim,
        rotary_style=lay.rotary,
        q_norm_gain=raw.get("q_gain"),
        k_norm_gain=raw.get("k_gain"),
        qk_norm_eps=float(raw.get("qk_eps", 0.0)),
        post_norm_gain=raw.get("post_gain"),
    )


def _rotary_dim(model: Model, d_head: int) -> int:
    """Dims rotated (the width of the model's cos table), measured once per bridge."""
    if model.bridge not in _ROTARY_DIMS:
        cos, _ = rotary_cos_sin(model, 1)
        if cos.shape[-1] > d_head:
            raise ValueError(f"model: rotary table width {cos.shape[-1]} exceeds d_head {d_head}")
        _ROTARY_DIMS[model.bridge] = int(cos.shape[-1])
    return _ROTARY_DIMS[model.bridge]


def input_norm(model: Model, layer: int) -> tuple[str, float]:
    """`(kind, eps)` of the norm in front of `layer`'s attention (see `normalise`)."""
    raw = _layer(model, layer)
    return raw["norm"], raw["eps"]


def output_weights(model: Model, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw `(W_O [head, d_head, d_model], b_O [d_model])` of a layer, float64 (not centred)."""
    raw = _layer(model, layer)
    w_o = raw["O"].reshape(model.n_heads, raw["d_head"], model.d_model)
    return w_o, raw["bO"]


def bert_output_norms(model: Model, layer: int) -> dict[str, np.ndarray | float]:
    """BERT post-LN parameters of a layer: the attention-output and the block-output norms."""
    norms = {}
    for prefix, name in (("attn", "ln1"), ("out", "ln2")):
        probed = probe_norm(hf_module(model.bridge, f"blocks.{layer}.{name}"), model.d_model)
        if probed["norm"] != "layernorm":
            raise ValueError(f"model: BERT {name} of layer {layer} is not a LayerNorm")
        norms[f"{prefix}_gain"], norms[f"{prefix}_beta"] = probed["gain"], probed["beta"]
        norms["eps"] = probed["eps"]
    return norms


def embedding_matrix(model: Model) -> np.ndarray:
    """Token embedding `W_E [d_vocab, d_model]`, float64."""
    layout(model)
    return hf_module(model.bridge, "embed").weight.detach().to("cpu", torch.float64).numpy()


def unembedding_matrix(model: Model) -> np.ndarray:
    """Unembedding `W_U [d_model, d_vocab]` with the final norm's gain folded in (decoders)."""
    if layout(model).post_ln:
        raise ValueError("model: no trained unembedding for encoders (MLM head is not used)")
    w_u = hf_module(model.bridge, "unembed").weight.detach().to("cpu", torch.float64).numpy().T
    gain = probe_norm(hf_module(model.bridge, "ln_final"), model.d_model)["gain"]
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


def rotary_cos_sin(model: Model, n_pos: int, cache: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension `(cos, sin)` `[pos, rotary_dim]` the model rotates q and k with.

    Rotate-half families: the bridge's `rotary_emb.hook_cos/sin` (from `cache` when given, else
    one forward pass). GPT-J: its own sinusoid table (`embed_positions`, `[sin | cos]` halves),
    each frequency repeated for its pair of dimensions.
    """
    lay = layout(model)
    if lay.rotary == "interleaved":
        table = next(
            m.embed_positions
            for m in model.bridge.original_model.modules()
            if hasattr(m, "embed_positions")
        )
        sincos = table[:n_pos].detach().to("cpu", torch.float64).numpy()  # [pos, rotary_dim]
        sin, cos = np.split(sincos, 2, axis=-1)
        return np.repeat(cos, 2, axis=-1), np.repeat(sin, 2, axis=-1)
    if cache is None:
        tokens = torch.zeros((1, n_pos), dtype=torch.long, device=model.device)
        names = ["rotary_emb.hook_cos", "rotary_emb.hook_sin"]
        _, cache = model.run_with_cache(tokens, names=names)
    cos = cache["rotary_emb.hook_cos"][0].detach().to("cpu", torch.float64).numpy()
    sin = cache["rotary_emb.hook_sin"][0].detach().to("cpu", torch.float64).numpy()
    return cos, sin  # [pos, rotary_dim]


def rotation_matrices(
    cos: np.ndarray, sin: np.ndarray, *, d_head: int | None = None, style: str = "half"
) -> np.ndarray:
    """`[pos, d_head, d_head]` matrices R with `q_rot = q @ R` (per-dimension cos/sin
    `[pos, rotary_dim]`; dims past `rotary_dim` pass through unrotated).

    "half" (HF rotate-half): `rotate_half(q) = cat(-q[h:], q[:h]) = q @ P`, `q_rot = q*cos +
    rotate_half(q)*sin`. "interleaved" (GPT-J `rotate_every_two`): pairs (2i, 2i+1) rotate as
    `(q0 cos - q1 sin, q1 cos + q0 sin)`.
    """
    n_pos, rd = cos.shape
    d_head = rd if d_head is None else d_head
    if rd > d_head or rd % 2:
        raise ValueError(f"rotary: rotary_dim {rd} does not fit d_head {d_head}")
    perm = np.zeros((rd, rd))
    if style == "half":
        half = rd // 2
        perm[np.arange(half) + half, np.arange(half)] = -1.0
        perm[np.arange(half), np.arange(half) + half] = 1.0
    elif style == "interleaved":
        even = np.arange(0, rd, 2)
        perm[even + 1, even] = -1.0
        perm[even, even + 1] = 1.0
    else:
        raise ValueError(f"rotary: unknown style {style!r}")
    out = np.broadcast_to(np.eye(d_head), (n_pos, d_head, d_head)).copy()
    out[:, :rd, :rd] = np.eye(rd)[None] * cos[:, None, :] + perm[None] * sin[:, None, :]
    return out  # [pos, d_head, d_head]
