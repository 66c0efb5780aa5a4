"""Which norm feeds the MLP of a parallel attention/MLP block, read from the HF layer itself.

In a parallel block attention and MLP both read the layer's input residual `x` (no
`resid_mid`): `x' = x + attn(n_attn(x)) + mlp(n_mlp(x))`. Whether `n_mlp` is its own norm or
the attention's depends on the family (transformers' decoder-layer `forward`):

| HF layer               | the MLP reads                                                  |
|------------------------|----------------------------------------------------------------|
| `GPTNeoXLayer`         | `post_attention_layernorm(x)` (its own norm; Pythia)           |
| `GPTJBlock`            | `ln_1(x)`, the attention's normalised input                    |
| `FalconDecoderLayer`   | `ln_mlp(x)` (new decoder architecture, two norms), else `input_layernorm(x)` |
| `PhiDecoderLayer`      | `input_layernorm(x)`, shared with attention                    |
| `StableLmDecoderLayer` | `input_layernorm(x)` (`use_parallel_residual=True`)            |

`mlp_norm(model, layer)` returns that raw HF norm module (not its bridge wrapper, so calling it
fires no hooks). Caveat: a parallel family missing from the table is refused (`ValueError`)
rather than guessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.adapters.modules import hf_module

if TYPE_CHECKING:
    from workbench.model import Model

_MLP_NORM = {
    "GPTNeoXLayer": ("post_attention_layernorm",),
    "GPTJBlock": ("ln_1",),
    "FalconDecoderLayer": ("ln_mlp", "input_layernorm"),  # the first one the layer has
    "PhiDecoderLayer": ("input_layernorm",),
    "StableLmDecoderLayer": ("input_layernorm",),
}


def is_parallel(model: Model) -> bool:
    """True when the bridge reports parallel attention/MLP blocks (`cfg.parallel_attn_mlp`)."""
    return bool(getattr(model.cfg, "parallel_attn_mlp", False))


def mlp_norm(model: Model, layer: int) -> Any:
    """The raw HF norm whose output layer `layer`'s MLP reads in a parallel block (see table);
    ValueError for a layer class the table does not know."""
    block = hf_module(model.bridge, f"blocks.{layer}")
    kind = type(block).__name__
    names = _MLP_NORM.get(kind, ())
    found = next((getattr(block, n) for n in names if getattr(block, n, None) is not None), None)
    if found is None:
        raise ValueError(
            f"model: {model.name} has parallel attention/MLP blocks of type {kind}; edge "
            f"interventions know the MLP norm of {', '.join(sorted(_MLP_NORM))} only"
        )
    return getattr(found, "original_component", found)


__all__ = ["is_parallel", "mlp_norm"]
