"""The passes behind `circuits.atp_star`: gradient probes and the exact attention recomputation.

`probe_gradients(model, tokens, metric, drop=None)` runs the clean prompts once with zero
"probes" added at every point AtP* reads a gradient from - each head's q/k/v port input
(`[batch, pos, head, d_model]`, the q/k/v recomputed from it as `ln1(x) @ W + b`, as
`circuits.edge_patching` does), the q/k/v activations themselves, the attention pattern, the MLP
port input (`ln2.hook_in`), the MLP output and the readout port (`ln_final.hook_in`) - and
returns d metric / d probe for each, per prompt (the metric is summed over prompts, which do not
interact). `drop=l` is GradDrop's pass: layer l's writes to the residual stream
(`attn.hook_out`, `mlp.hook_out`) are detached, so no gradient flows back through that layer,
its own probes included (they get zeros).

`AttentionGeometry` holds what recomputing a pattern needs (rotated clean queries and keys,
cos/sin, the scale) and checks, on the clean run, that its recomputation reproduces the model's
own `hook_pattern`; a family whose attention it cannot reproduce (softcapping, sinks, ALiBi, an
unknown rotary layout) is refused with a `ValueError` instead of being computed wrongly.

Caveats: pre-LN decoders only (the port input is the residual stream itself); rotary is
Llama's rotate-half layout (checked against `hook_rot_q`/`hook_rot_k`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from workbench.adapters import weights
from workbench.adapters.modules import hf_module

if TYPE_CHECKING:
    from workbench.model import Model

KINDS = ("q", "k", "v")


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Llama rotate-half RoPE of `x` `[..., batch, pos, head, d_head]` with cos/sin
    `[batch, pos, d_rot]` (partial rotary: the first d_rot features rotate)."""
    d_rot = cos.shape[-1]
    rot, rest = x[..., :d_rot], x[..., d_rot:]
    c, s = cos[:, :, None, :], sin[:, :, None, :]  # [batch, pos, 1, d_rot]
    half = d_rot // 2
    turned = torch.cat([-rot[..., half:], rot[..., :half]], dim=-1)
    return torch.cat([rot * c + turned * s, rest], dim=-1)


def layer_weights(model: Model, layer: int, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(W `[head, d_model, d_head]`, b `[head, d_head]`) of the layer's q, k or v projection."""
    attn = model.bridge.blocks[layer].attn
    w = {"q": attn.W_Q, "k": attn.W_K, "v": attn.W_V}[kind]
    b = {"q": attn.b_Q, "k": attn.b_K, "v": attn.b_V}[kind]
    return w, (torch.zeros(w.shape[0], w.shape[2], dtype=w.dtype) if b is None else b)


@dataclass
class AttentionGeometry:
    """One layer's clean attention inputs: rotated queries `[batch, pos, head, d_head]`, rotated
    keys `[batch, pos, kv_head, d_head]`, cos/sin `[batch, pos, d_rot]` (None: no rotary), the
    score scale and the clean pattern `[batch, head, query, key]`."""

    rot_q: torch.Tensor
    rot_k: torch.Tensor
    cos: torch.Tensor | None
    sin: torch.Tensor | None
    scale: float
    pattern: torch.Tensor

    def rotate(self, x: torch.Tensor) -> torch.Tensor:
        """RoPE at the clean run's positions (identity without rotary)."""
        return x if self.cos is None else _rotate(x, self.cos, self.sin)

    def patterns(self, rot_q: torch.Tensor, rot_k: torch.Tensor) -> torch.Tensor:
        """Causal softmax patterns `[..., batch, head, query, key]` from rotated queries
        `[..., batch, pos, head, d]` and keys `[..., batch, pos, kv_head, d]`."""
        group = rot_q.shape[-2] // rot_k.shape[-2]
        rot_k = rot_k.repeat_interleave(group, dim=-2)  # kv head g serves heads g*group..
        scores = torch.einsum("...tha,...sha->...hts", rot_q, rot_k) * self.scale
        n = scores.shape[-1]
        future = torch.ones(n, n, dtype=torch.bool).triu(1)  # [query, key]
        return scores.masked_fill(future, float("-inf")).softmax(-1)

    def check(self, name: str, layer: int) -> None:
        """ValueError unless the recomputed clean pattern is the model's own."""
        again = self.patterns(self.rot_q, self.rot_k)
        err = (again - self.pattern).abs().max().item()
        if err > 1e-4:
            raise ValueError(
                f"model: atp* cannot reproduce {name}'s attention pattern in layer {layer} "
                f"(max error {err:.2g}); its attention is not plain causal softmax attention"
            )


def _check_family(model: Model) -> None:
    if not model.is_causal:
        raise ValueError(
            f"model: atp* needs a pre-LN decoder; {model.name} is an encoder (post-LN)"
        )
    if getattr(model.cfg, "parallel_attn_mlp", False):
        raise ValueError(f"model: atp* needs sequential attention/MLP blocks; {model.name} has not")


def _check_rotary_hooks(model: Model) -> None:
    """Refuse a rotary model whose bridge does not fire rotate-half `hook_rot_q`/`hook_rot_k`
    (the fused-QKV and GPT-J bridges register them but rotate elsewhere)."""
    try:
        lay = weights.layout(model)
    except (ValueError, NotImplementedError) as err:
        raise ValueError(
            f"model: atp* cannot read {model.name}'s rotary embedding ({err})"
        ) from err
    if not lay.rot_hooks or lay.rotary != "half":
        raise ValueError(
            f"model: atp* recomputes attention from the bridge's rotate-half hook_rot_q/hook_rot_k,"
            f" which {model.name} ({lay.family}) does not fire"
        )


@torch.no_grad()
def clean_geometry(model: Model, tokens: torch.Tensor) -> list[AttentionGeometry]:
    """Per layer, the clean run's `AttentionGeometry` (checked against `hook_pattern`)."""
    _check_family(model)
    hooks = model.bridge.hook_dict
    parts = ("q", "k", "pattern")
    if getattr(model.cfg, "positional_embedding_type", "") == "rotary":
        _check_rotary_hooks(model)
        parts = ("q", "k", "rot_q", "rot_k", "cos", "sin", "pattern")
    names = []
    for layer in range(model.n_layers):
        for part in parts:
            if f"blocks.{layer}.attn.hook_{part}" in hooks:
                names.append(f"blocks.{layer}.attn.hook_{part}")
    _, cache = model.run_with_cache(tokens, names=names)
    out = []
    for layer in range(model.n_layers):
        pre = f"blocks.{layer}.attn.hook_"
        rotary = pre + "rot_q" in cache and pre + "cos" in cache
        if not rotary and getattr(model.cfg, "positional_embedding_type", "") == "rotary":
            raise ValueError(f"model: atp* cannot read {model.name}'s rotary embedding")
        hf_attn = hf_module(model.bridge, f"blocks.{layer}.attn")
        geo = AttentionGeometry(
            rot_q=cache[pre + ("rot_q" if rotary else "q")],
            rot_k=cache[pre + ("rot_k" if rotary else "k")],
            cos=cache[pre + "cos"] if rotary else None,
            sin=cache[pre + "sin"] if rotary else None,
            scale=float(getattr(hf_attn, "scaling", model.d_head**-0.5)),
            pattern=cache[pre + "pattern"],
        )
        if rotary:  # the rotate-half layout must reproduce the model's own rotation
            err = (geo.rotate(cache[pre + "q"]) - geo.rot_q).abs().max().item()
            err = max(err, (geo.rotate(cache[pre + "k"]) - geo.rot_k).abs().max().item())
            if err > 1e-4:
                raise ValueError(
                    f"model: atp* cannot reproduce {model.name}'s rotary embedding "
                    f"(max error {err:.2g})"
                )
        geo.check(model.name, layer)
        out.append(geo)
    return out


@torch.no_grad()
def node_values(model: Model, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """q/k/v activations `[batch, pos, head, d_head]`, rotated q/k where the model rotates, and
    MLP outputs `[batch, pos, d_model]` of one unpatched run, keyed by hook name."""
    hooks = model.bridge.hook_dict
    names = []
    for layer in range(model.n_layers):
        for part in ("q", "k", "v", "rot_q", "rot_k"):
            if f"blocks.{layer}.attn.hook_{part}" in hooks:
                names.append(f"blocks.{layer}.attn.hook_{part}")
        if f"blocks.{layer}.mlp.hook_out" in hooks and not getattr(model.cfg, "attn_only", False):
            names.append(f"blocks.{layer}.mlp.hook_out")
    _, cache = model.run_with_cache(tokens, names=names)
    return {k: v.detach() for k, v in cache.items()}


def probe_gradients(
    model: Model, tokens: torch.Tensor, metric, *, drop: int | None = None
) -> dict[str, torch.Tensor]:
    """d metric / d probe per prompt (see module docstring), keyed
    `"{layer}.{kind}.port"` `[batch, pos, head, d_model]`, `"{layer}.{kind}.act"`
    `[batch, pos, head, d_head]`, `"{layer}.pattern"` `[batch, head, query, key]`,
    `"{layer}.mlp.port"` / `"{layer}.mlp.out"` `[batch, pos, d_model]` and `"output"`."""
    has_mlp = not getattr(model.cfg, "attn_only", False)
    probes: dict[str, torch.Tensor] = {}
    resid: dict[int, torch.Tensor] = {}

    def probe(key: str, like: torch.Tensor) -> torch.Tensor:
        probes[key] = torch.zeros_like(like, requires_grad=True)
        return probes[key]

    def resid_hook(layer):
        def hook(x, *, hook):
            resid[layer] = x
            return x

        return hook

    def qkv_hook(layer, kind):
        ln1 = hf_module(model.bridge, f"blocks.{layer}.ln1")
        w, b = layer_weights(model, layer, kind)

        def hook(act, *, hook):  # act: [batch, pos, head, d_head]
            base = resid[layer][:, :, None, :].expand(-1, -1, act.shape[2], -1)
            x = base + probe(f"{layer}.{kind}.port", base)  # [batch, pos, head, d_model]
            new = torch.einsum("bphm,hmd->bphd", ln1(x), w) + b
            return new + probe(f"{layer}.{kind}.act", new)

        return hook

    def add_probe(key):
        def hook(x, *, hook):
            return x + probe(key, x)

        return hook

    def write_hook(layer, key):
        def hook(x, *, hook):
            y = x if key is None else x + probe(key, x)
            return y.detach() if drop == layer else y

        return hook

    hooks = []
    for layer in range(model.n_layers):
        pre = f"blocks.{layer}"
        hooks.append((f"{pre}.hook_resid_pre", resid_hook(layer)))
        hooks += [(f"{pre}.attn.hook_{kind}", qkv_hook(layer, kind)) for kind in KINDS]
        hooks.append((f"{pre}.attn.hook_pattern", add_probe(f"{layer}.pattern")))
        hooks.append((f"{pre}.attn.hook_out", write_hook(layer, None)))
        if has_mlp:
            hooks.append((f"{pre}.ln2.hook_in", add_probe(f"{layer}.mlp.port")))
            hooks.append((f"{pre}.mlp.hook_out", write_hook(layer, f"{layer}.mlp.out")))
    hooks.append(("ln_final.hook_in", add_probe("output")))
    with torch.enable_grad(), model.intervene(hooks):
        value = metric(model(tokens)).sum()
        keys = list(probes)
        grads = torch.autograd.grad(value, [probes[k] for k in keys], allow_unused=True)
    return {
        k: (torch.zeros_like(probes[k]) if g is None else g.detach())
        for k, g in zip(keys, grads, strict=True)
    }


__all__ = ["AttentionGeometry", "clean_geometry", "layer_weights", "node_values", "probe_gradients"]
