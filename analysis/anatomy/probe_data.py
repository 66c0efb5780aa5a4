"""Default probe data of the head taxonomy and the entropy-collapse view.

- Natural text: IOI-template English sentences (`workbench.tasks.ioi_prompts`), used for every
  model by default because they are plain English that each zoo tokenizer covers (tiny-ioi's
  word-level vocabulary only knows these words). Pass your own `texts` for anything else.
- Repeated random tokens: `BOS + r + r` from `workbench.tasks.induction.random_repeated_tokens`
  (the tokens of the repeated-tokens induction score), sized to fit the model's context.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from workbench.tasks.induction import random_repeated_tokens
from workbench.tasks.ioi_prompts import generate_ioi_prompts

if TYPE_CHECKING:
    from workbench.model import Model


def natural_texts(model: Model, n: int = 8, *, seed: int = 0) -> list[str]:
    """`n` English sentences that fit the model's context (IOI templates, see module doc)."""
    texts = [p.text for p in generate_ioi_prompts(n, seed=seed)]
    return [t for t in texts if model.to_tokens(t).shape[1] <= model.n_ctx]


def repeated_tokens(
    model: Model, n: int = 8, *, seq_len: int | None = None, seed: int = 0
) -> torch.Tensor:
    """`[n, 1 + 2 * seq_len]` repeated random tokens (default seq_len: min(20, fits context))."""
    seq_len = min(20, (model.n_ctx - 1) // 2) if seq_len is None else seq_len
    clean, _ = random_repeated_tokens(model, n=n, seq_len=seq_len, seed=seed)
    return clean


def check_texts(texts: object) -> list[str]:
    """A non-empty list of non-empty strings, or ValueError naming `texts`."""
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list | tuple) or not texts:
        raise ValueError("texts: expected a non-empty list of prompts")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"texts: item {i} is not a non-empty string")
    return list(texts)
