"""Tiny random checkpoints of real model families, and transformers' eager patterns for them.

Shared by the statistics-attention family tests: `save_checkpoint(model, folder)` writes a
model with `save_pretrained` and copies the zoo's tiny-ioi tokenizer beside it (so
`workbench.load_model(folder)` loads it as a user's folder); `eager_patterns(folder, tokens)`
is the independent reference, transformers' own eager attention.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
import transformers

from workbench.zoo import CHECKPOINT_DIR


def save_checkpoint(model: torch.nn.Module, folder: Path) -> Path:
    """Save `model` with `save_pretrained` into `folder`, with the tiny-ioi tokenizer."""
    model.save_pretrained(folder)
    for source in (CHECKPOINT_DIR / "tiny-ioi").iterdir():
        if source.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(source, folder)
    return folder


def eager_patterns(folder: Path, tokens: torch.Tensor, **overrides) -> list[torch.Tensor]:
    """Per layer, transformers' eager pattern `[head, query, key]` in float64 for `tokens`
    `[1, pos]` (`overrides` go to `from_pretrained`, e.g. a changed config value)."""
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, attn_implementation="eager", **overrides
    )
    with torch.no_grad():
        out = model.eval()(tokens, output_attentions=True)
    return [pattern[0].double() for pattern in out.attentions]


def entropy(pattern: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of each row of a pattern `[head, query, key]` -> `[head, query]`."""
    return -(pattern * pattern.clamp_min(1e-300).log()).sum(-1)
