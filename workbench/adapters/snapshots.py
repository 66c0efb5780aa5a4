"""A fresh `Model` from a HuggingFace checkpoint folder with other weights loaded over it.

Used for training snapshots (the zoo's `<checkpoint>/history/step-NNNNNN.safetensors`): the HF
model is built from the checkpoint folder, the snapshot's weights replace the final ones, and
the result is wrapped in its own bridge, so a shared model is never touched.

Caveat: a trained parameter the snapshot lacks keeps the checkpoint's value; its name is
returned (HF's non-trained buffers, GPT-2's causal mask and RoPE's `inv_freq`, are not listed).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.model import Model

_BUFFERS = re.compile(r"(^|\.)attn\.(bias|masked_bias)$|rotary_emb\.inv_freq$")


def model_with_weights(model: Model, path: Path, *, name: str) -> tuple[Model, list[str]]:
    """`model`'s checkpoint with the safetensors weights at `path` loaded over it, as a new
    Model called `name`, and the trained parameters `path` lacked. ValueError names weights
    the architecture does not have."""
    from safetensors.torch import load_file
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import AutoModelForCausalLM

    from workbench.model import Model as ModelType

    hf = AutoModelForCausalLM.from_pretrained(model.path)
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    result = hf.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise ValueError(f"history: {path.name} has unknown weights {result.unexpected_keys[:3]}")
    missing = [k for k in result.missing_keys if not _BUFFERS.search(k)]
    bridge = TransformerBridge.boot_transformers(model.path, hf_model=hf, tokenizer=model.tokenizer)
    return ModelType(bridge, name, model.source, model.is_causal, path=model.path), missing


__all__ = ["model_with_weights"]
