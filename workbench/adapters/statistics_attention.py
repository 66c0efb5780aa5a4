"""Install the statistics attention in every layer of a model for the body of a `with` block.

`statistics_attention(model, ...)` makes every attention layer compute
`kernels.attention_with_stats` instead of an eager softmax, so a forward pass yields each
layer's per-query statistics and no layer builds an n x n pattern (or an n x n mask).

How it is installed (TransformerLens 4.3 bridge on transformers 5), all undone on exit, also
when the body raises:

1. A fresh attention function is registered in transformers' `ALL_ATTENTION_FUNCTIONS` under a
   unique name (`workbench_stats_<n>`), and a mask function under the same name in
   `ALL_MASK_ATTENTION_FUNCTIONS`.
2. The HF model's `config._attn_implementation` (the bridge loads it as "eager" so that
   `hook_pattern` fires) is switched to that name. HF attention modules read it at every call.
3. Bridge attention components that re-implement attention themselves get an instance-level
   override. GPT-2's `JointQKVAttentionBridge`: its `_reconstruct_attention(q, k, v)` (the step
   after the bridge's split q/k/v projections) calls the registered function, then the bridge's
   output projection. Llama's `PositionEmbeddingsAttentionBridge` has no such seam: its `forward`
   becomes the base `AttentionBridge.forward` (`hook_in` -> the wrapped HF attention module ->
   `hook_out`). BERT's `AttentionBridge` already delegates to the HF module.

The HF module (or GPT-2's bridge) does the projections, RoPE and head reshapes and calls our
function with q `[batch, head, query, d_head]` and un-repeated k, v `[batch, kv_head, key,
d_head]` (grouped-query attention is handled by the kernel). The mask function hands over only the 2-D
right-padding mask `[batch, key]` (None without padding), turned into `key_lengths`; causality
comes from the HF module's `is_causal`. Statistics are therefore those of the rotated q/k (RoPE)
and of exactly the keys the model attends to.

Caveats:
- While installed, `hook_pattern` and `hook_attn_scores` never fire; on Llama-style models
  (HF path) `hook_rot_q/rot_k/cos/sin` do not either. `hook_q/k/v/z` and everything outside
  attention fire as usual, so interventions there apply to the statistics run.
- Right padding only; plain causal or bidirectional masks, and causal sliding windows
  (Mistral, Gemma-2/3 `sliding_window`: passed to the kernel as `window=`, with the size
  checked against the one transformers built the mask for), logit soft-capping (Gemma-2's
  `softcap`: the kernel's `softcap=`) and learned attention sinks (gpt-oss's `s_aux`, one logit
  per head: the kernel's `sinks=`). Bidirectional sliding windows, other `sinks=` arguments,
  packed sequences, ALiBi or relative position biases are refused with `NotImplementedError`
  (or a missing layer is reported) rather than computed wrongly.
- Not re-entrant and not thread-safe: run nothing else on the same model while installed.
- Numerics are the raw HF ones (the same as `workbench.Model`); a bridge in TransformerLens
  compatibility mode (folded layer norms) is not supported.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import types
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from kernels import AttentionStats, attention_with_stats
from workbench.model import Model

_NAME_PREFIX = "workbench_stats_"
_install_counter = itertools.count()
_UNSUPPORTED_KWARGS = ("sinks", "position_bias")


class StatisticsAttention:
    """The attention function installed in every layer; collects one `AttentionStats` per layer.

    Created by `statistics_attention`; after each forward pass call `take()`.
    """

    def __init__(
        self,
        *,
        layer_of_module: dict[int, int],
        n_layers: int,
        backend: str,
        stats: tuple[str, ...] | None,
        sink_tokens: int,
        mass_block: int,
    ) -> None:
        self._layer_of_module = layer_of_module
        self.n_layers = n_layers
        self.backend = backend
        self.stats = stats
        self.sink_tokens = sink_tokens
        self.mass_block = mass_block
        self._recorded: dict[int, AttentionStats] = {}
        self._mask_kinds: set[int | None] = set()  # windows of the masks built (None: no window)

    # ------------------------------------------------------------------ called by transformers
    def attention(
        self,
        module: torch.nn.Module,
        query: torch.Tensor,  # [batch, head, query, d_head]
        key: torch.Tensor,  # [batch, kv_head, key, d_head]
        value: torch.Tensor,  # [batch, kv_head, key, d_head]
        attention_mask: torch.Tensor | None,  # [batch, key] bool from `padding_mask`, or None
        scaling: float | None = None,
        dropout: float = 0.0,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, None]:
        """An `AttentionInterface` function: returns (output `[batch, query, head, d_head]`, None)."""
        layer = self._layer_of_module.get(id(module))
        if layer is None:
            raise RuntimeError(
                f"statistics attention: {type(module).__name__} is not a known layer"
            )
        unsupported = [name for name in _UNSUPPORTED_KWARGS if kwargs.get(name) is not None]
        if unsupported or dropout:
            raise NotImplementedError(
                f"statistics attention: layer {layer} uses {unsupported or ['dropout']}, "
                "which the statistics kernel does not implement"
            )
        causal = kwargs.get("is_causal")
        causal = bool(getattr(module, "is_causal", False) if causal is None else causal)
        window = self._check_window(layer, kwargs.get("sliding_window"), causal)
        out, stats = attention_with_stats(
            query,
            key,
            value,
            causal=causal,
            sm_scale=scaling,
            backend=self.backend,
            stats=self.stats,
            key_lengths=_key_lengths(attention_mask, key.shape[2]),
            sink_tokens=self.sink_tokens,
            mass_block=self.mass_block,
            window=window,
            softcap=kwargs.get("softcap"),
            sinks=kwargs.get("s_aux"),  # gpt-oss & co: [head] learned sink logits
        )
        if layer in self._recorded:
            raise RuntimeError(
                f"statistics attention: layer {layer} ran again before take(); call take() "
                "after each forward pass"
            )
        self._recorded[layer] = stats
        return out.transpose(1, 2), None  # [batch, query, head, d_head], as HF expects

    def _check_window(self, layer: int, window: Any, causal: bool) -> int | None:
        """The layer's `sliding_window`, checked against the masks transformers built."""
        if window is None:
            if self._mask_kinds and None not in self._mask_kinds:
                raise NotImplementedError(
                    f"statistics attention: layer {layer} passed no sliding_window but the "
                    f"model built only sliding-window masks {sorted(self._mask_kinds)}"
                )
            return None
        if not causal:
            raise NotImplementedError(
                f"statistics attention: layer {layer} uses a bidirectional sliding window, "
                "which the statistics kernel does not implement"
            )
        if self._mask_kinds and window not in self._mask_kinds:
            raise NotImplementedError(
                f"statistics attention: layer {layer} asks for sliding_window={window} but the "
                f"model built its mask for {sorted(w for w in self._mask_kinds if w)}"
            )
        return window

    def padding_mask(
        self, *, mask_function: Any, attention_mask: torch.Tensor | None, **kwargs: Any
    ) -> torch.Tensor | None:
        """A mask-interface function: the 2-D `[batch, key]` padding mask instead of a 4-D one.

        Accepts transformers' plain causal and bidirectional mask functions and its causal
        sliding-window one (checked by evaluating it, for the window `local_size`); the window
        itself reaches the kernel through the layer's `sliding_window` argument.
        """
        from transformers.masking_utils import bidirectional_mask_function, causal_mask_function

        if mask_function in (causal_mask_function, bidirectional_mask_function):
            self._mask_kinds.add(None)
        elif _is_sliding_window_causal(mask_function, kwargs.get("local_size")):
            self._mask_kinds.add(int(kwargs["local_size"]))
        else:
            raise NotImplementedError(
                "statistics attention: only plain causal, bidirectional or causal sliding-window "
                "masks are supported (no bidirectional windows, packed sequences or custom mask "
                "functions)"
            )
        if attention_mask is None:
            return None
        offset, length = kwargs.get("kv_offset") or 0, kwargs["kv_length"]
        return attention_mask[:, offset : offset + length]  # [batch, key]

    # ------------------------------------------------------------------ called by the user
    def take(self) -> list[AttentionStats]:
        """The statistics of the last forward pass, one per layer; clears them.

        Raises NotImplementedError if some layer did not run through the statistics attention
        (an architecture whose attention bypasses transformers' interface, e.g. GPT-Neo).
        """
        recorded, self._recorded = self._recorded, {}
        self._mask_kinds = set()
        missing = [layer for layer in range(self.n_layers) if layer not in recorded]
        if missing:
            raise NotImplementedError(
                f"statistics attention: layers {missing} did not run through it; this "
                "architecture's attention does not call transformers' attention interface"
            )
        return [recorded[layer] for layer in range(self.n_layers)]


def _is_sliding_window_causal(mask_function: Any, window: Any) -> bool:
    """Whether `mask_function(batch, head, q_idx, kv_idx)` is transformers' causal sliding window
    of size `window` (q_idx - window < kv_idx <= q_idx), probed around both edges of the band."""
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        return False
    positions = torch.tensor([0, 1, window - 1, window, window + 1, 2 * window + 5])  # [q]
    shifts = torch.tensor([-1, 0, 1, window - 1, window, window + 1])  # [shift]
    q_idx = positions[:, None].expand(-1, len(shifts)).reshape(-1)  # [probe]
    kv_idx = (positions[:, None] - shifts[None, :]).reshape(-1)  # [probe]
    keep = kv_idx >= 0
    q_idx, kv_idx = q_idx[keep], kv_idx[keep]  # [probe]
    zero = torch.zeros_like(q_idx)
    try:
        got = torch.as_tensor(mask_function(zero, zero, q_idx, kv_idx)).bool()  # [probe]
    except Exception:  # noqa: BLE001 - an unknown mask function: refused by the caller
        return False
    expected = (kv_idx <= q_idx) & (kv_idx > q_idx - window)  # [probe]
    return got.shape == expected.shape and bool(torch.equal(got, expected))


def _key_lengths(attention_mask: torch.Tensor | None, n_keys: int) -> torch.Tensor | None:
    """`[batch]` number of real keys from a right-padding mask `[batch, key]`; None if no padding."""
    if attention_mask is None:
        return None
    if attention_mask.dim() != 2 or attention_mask.shape[1] != n_keys:
        raise NotImplementedError(
            f"attention_mask: expected a [batch, {n_keys}] padding mask, got "
            f"{tuple(attention_mask.shape)}"
        )
    mask = attention_mask.bool()  # [batch, key]
    lengths = mask.sum(-1)  # [batch]
    positions = torch.arange(n_keys, device=mask.device)  # [key]
    if not torch.equal(mask, positions[None, :] < lengths[:, None]):
        raise ValueError("attention_mask: statistics attention supports right padding only")
    if bool((lengths == n_keys).all()):
        return None
    return lengths


def _attention_components(model: Model) -> list[Any]:
    """The one bridge attention component of every layer, in layer order."""
    from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge

    components = []
    for layer, block in enumerate(model.bridge.blocks):
        found = [m for m in block.modules() if isinstance(m, AttentionBridge)]
        if len(found) != 1:
            raise NotImplementedError(
                f"statistics attention: layer {layer} has {len(found)} attention components; "
                "only one self-attention per layer is supported"
            )
        components.append(found[0])
    return components


@contextlib.contextmanager
def statistics_attention(
    model: Model,
    *,
    backend: str = "auto",
    stats: Iterable[str] | None = None,
    sink_tokens: int = 1,
    mass_block: int = 64,
) -> Iterator[StatisticsAttention]:
    """Run every layer's attention through `kernels.attention_with_stats` inside the block::

        with statistics_attention(model, stats=("entropy", "sink")) as attention:
            logits = model.bridge(tokens)
            per_layer = attention.take()  # [AttentionStats] * n_layers

    Everything installed (registered functions, config switch, forward overrides) is removed on
    exit, also when the body raises. See the module docstring for how and the caveats.
    """
    from transformers import AttentionInterface, AttentionMaskInterface

    hf_model = model.bridge.original_model
    if str(hf_model.config._attn_implementation).startswith(_NAME_PREFIX):
        raise RuntimeError(f"statistics attention is already installed on {model.name}")
    components = _attention_components(model)
    layer_of_module = {
        id(module): layer
        for layer, component in enumerate(components)
        for module in component.original_component.modules()
    }
    attention = StatisticsAttention(
        layer_of_module=layer_of_module,
        n_layers=len(components),
        backend=backend,
        stats=None if stats is None else tuple(stats),
        sink_tokens=sink_tokens,
        mass_block=mass_block,
    )
    name = f"{_NAME_PREFIX}{next(_install_counter)}"
    configs = list({id(c): c for c in [hf_model.config, *_module_configs(components)]}.values())
    saved_implementations = [c._attn_implementation for c in configs]
    overridden: list[tuple[Any, str]] = []  # (component, instance attribute set)
    AttentionInterface.register(name, attention.attention)
    AttentionMaskInterface.register(name, attention.padding_mask)  # mask creation reads the
    # class-wide mapping only, and transformers has no unregister: both are popped below.
    try:
        for config in configs:
            config._attn_implementation = name
        for component in components:
            attribute, method = _override_for(component, name)
            if attribute is not None:
                component.__dict__[attribute] = types.MethodType(method, component)
                overridden.append((component, attribute))
        yield attention
    finally:
        for component, attribute in overridden:
            component.__dict__.pop(attribute, None)
        for config, implementation in zip(configs, saved_implementations, strict=True):
            config._attn_implementation = implementation
        AttentionInterface._global_mapping.pop(name, None)
        AttentionMaskInterface._global_mapping.pop(name, None)


def _override_for(component: Any, name: str) -> tuple[str | None, Any]:
    """Which method of a bridge attention component to replace (instance-level), and by what.

    GPT-2 (`JointQKVAttentionBridge`): its `_reconstruct_attention(q, k, v)` seam, so the
    bridge's split q/k/v and z hooks keep firing. Other re-implementing bridges (Llama's
    `PositionEmbeddingsAttentionBridge`): `forward` -> the base `AttentionBridge.forward`, which
    delegates to the HF module. BERT's `AttentionBridge` delegates already: nothing to replace.
    """
    from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge
    from transformer_lens.model_bridge.generalized_components.joint_qkv_attention import (
        JointQKVAttentionBridge,
    )

    config = component.config
    if isinstance(component, JointQKVAttentionBridge) and not getattr(
        config, "use_attn_result", False
    ):
        return "_reconstruct_attention", functools.partial(_joint_qkv_attention, name=name)
    if type(component).forward is not AttentionBridge.forward:
        return "forward", AttentionBridge.forward
    return None, None


def _joint_qkv_attention(
    component: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, name: str, **kwargs: Any
) -> tuple[torch.Tensor, None]:
    """`JointQKVAttentionBridge._reconstruct_attention` through the registered attention
    function: q/k/v `[batch, pos, head * d_head]` from the bridge's split projections (hooks
    fired) -> heads -> rotary embedding where the bridge applies one (GPT-NeoX, Phi-3,
    Falcon: `JointQKVPositionEmbeddingsAttentionBridge`, partial rotary included) ->
    statistics attention -> output projection (fires hook_z)."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    n_heads = int(component.config.n_heads)
    n_kv_heads = int(getattr(component.config, "n_key_value_heads", None) or n_heads)
    q, k, v, batch, seq, d_head = component._reshape_qkv_to_heads(q, k, v, n_heads, n_kv_heads)
    if _applies_rotary(component):
        position_embeddings = kwargs.get("position_embeddings")
        if not isinstance(position_embeddings, tuple):
            raise NotImplementedError(
                "statistics attention: this rotary attention layer was called without its "
                "position embeddings (cos, sin)"
            )
        cos, sin = component._apply_position_embedding_hooks(position_embeddings)
        q, k = component._apply_rotary_pos_emb(q, k, cos, sin)  # [batch, head, pos, d_head]
    hf_attention = component.original_component
    out, _ = ALL_ATTENTION_FUNCTIONS[name](
        hf_attention,
        q,  # [batch, head, query, d_head]
        k,  # [batch, kv_head, key, d_head]
        v,
        kwargs.get("attention_mask"),
        scaling=_joint_qkv_scale(component, d_head),
    )  # [batch, query, head, d_head]
    out = out.reshape(batch, seq, n_heads * d_head)  # [batch, pos, head * d_head]
    return component._apply_output_projection(out), None


def _applies_rotary(component: Any) -> bool:
    """Whether the bridge's own `_reconstruct_attention` rotates q/k (the position-embedding
    variant); `NotImplementedError` for a fused-QKV bridge whose attention step we don't know."""
    from transformer_lens.model_bridge.generalized_components.joint_qkv_attention import (
        JointQKVAttentionBridge,
    )
    from transformer_lens.model_bridge.generalized_components.joint_qkv_position_embeddings_attention import (  # noqa: E501
        JointQKVPositionEmbeddingsAttentionBridge,
    )

    own = type(component)._reconstruct_attention
    if own is JointQKVPositionEmbeddingsAttentionBridge._reconstruct_attention:
        return True
    if own is JointQKVAttentionBridge._reconstruct_attention:
        return False
    raise NotImplementedError(
        f"statistics attention: {type(component).__name__} computes attention its own way "
        "(e.g. ALiBi or a custom score); the statistics attention does not reproduce it"
    )


def _joint_qkv_scale(component: Any, d_head: int) -> float:
    """The score scale the bridge's own attention step uses: 1/sqrt(d_head), divided by
    (layer + 1) where GPT-2's `scale_attn_by_inverse_layer_idx` is set."""
    scale = d_head**-0.5
    if getattr(component.config, "scale_attn_by_inverse_layer_idx", False):
        layer = getattr(component, "_layer_idx", None)
        if layer is None:
            raise NotImplementedError(
                "statistics attention: scale_attn_by_inverse_layer_idx without a layer index"
            )
        scale /= float(layer + 1)
    return scale


def _module_configs(components: list[Any]) -> list[Any]:
    """Every HF config object an attention module reads `_attn_implementation` from."""
    from transformers import PretrainedConfig

    configs = []
    for component in components:
        for module in component.original_component.modules():
            config = module.__dict__.get("config")
            if isinstance(config, PretrainedConfig):
                configs.append(config)
    return configs


__all__ = ["StatisticsAttention", "statistics_attention"]
