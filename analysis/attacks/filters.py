"""The token filter every attack and every random baseline in `analysis.attacks` draws from.

`allowed_tokens(model, ban_names=True)` -> `[d_vocab]` bool: every token except the model's
special tokens and, with `ban_names` (the default), every token that spells one of the 48 names
of the IOI name list (`workbench.tasks.ioi_prompts.NAMES`). A name counts when one of its
spellings `Name`, ` Name`, `name`, ` name` encodes to exactly one token of the model's
tokenizer and is not a special token such as `<unk>` (multi-token spellings are not banned: their pieces, e.g. `Jen` + `nifer`, are
ordinary sub-words). On tiny-ioi the names are 48 of the 164 tokens; on MiniLM (uncased
WordPiece) each name is its lower-case word piece, where one exists.

Caveat: only the IOI list is banned, not every name in the vocabulary (MiniLM knows thousands);
the ban stops an attack on IOI from inserting a competing name, not names in general.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from workbench.tasks.ioi_prompts import NAMES

if TYPE_CHECKING:
    from workbench.model import Model


def check_count(name: str, value, minimum: int = 1) -> int:
    """`value` as an int >= `minimum`; ValueError naming `name` otherwise (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: must be >= {minimum} (an integer), got {value!r}")
    return int(value)


def check_ban_names(ban_names) -> bool:
    """`ban_names` as a bool; ValueError naming the option unless it is True or False."""
    if not isinstance(ban_names, bool):
        raise ValueError(f"ban_names: need True or False, got {ban_names!r}")
    return ban_names


def name_token_ids(model: Model) -> tuple[int, ...]:
    """Sorted ids of the tokens that spell a name of the IOI name list (see module docstring)."""
    special = {i for i in model.tokenizer.all_special_ids if i is not None}
    ids: set[int] = set()
    for name in NAMES:
        for spelling in (name, f" {name}", name.lower(), f" {name.lower()}"):
            encoded = model.tokenizer.encode(spelling, add_special_tokens=False)
            # an unknown spelling encodes to [unk]: special tokens are never a name
            if len(encoded) == 1 and 0 <= encoded[0] < model.d_vocab and encoded[0] not in special:
                ids.add(int(encoded[0]))
    return tuple(sorted(ids))


def allowed_tokens(model: Model, *, ban_names: bool = True) -> torch.Tensor:
    """`[d_vocab]` bool: the tokens an adversarial span may hold (see module docstring)."""
    allowed = torch.ones(model.d_vocab, dtype=torch.bool)  # [d_vocab]
    special = [i for i in model.tokenizer.all_special_ids if i is not None and i < model.d_vocab]
    allowed[special] = False
    if check_ban_names(ban_names):
        allowed[list(name_token_ids(model))] = False
    return allowed


__all__ = ["allowed_tokens", "check_ban_names", "check_count", "name_token_ids"]
