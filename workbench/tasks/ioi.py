"""The IOI task for any decoder: tokenised clean/corrupted pairs and the logit-difference
metric. `corruption=` picks how the corrupted prompt differs ("s2", the default: only the second
mention of S; "s1s2": both mentions of S; "abc": IO, S1 and S2; see
`workbench.tasks.ioi_prompts`); the metric always reads the clean prompt's IO and S tokens.

Works with the zoo's word-level tokenizer and with GPT-2's BPE tokenizer alike: only names
that are one token (with their leading space, " Mary") are used, which keeps clean and
corrupted prompts aligned token for token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from workbench.tasks.base import Task
from workbench.tasks.ioi_prompts import CORRUPTIONS, NAMES, generate_ioi_prompts

if TYPE_CHECKING:
    from workbench.model import Model


def single_token_id(tokenizer, word: str) -> int | None:
    """The token id of " word" when it is exactly one token, else None."""
    ids = tokenizer.encode(" " + word, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


def single_token_names(tokenizer, names=NAMES) -> list[str]:
    """The names that the tokenizer encodes as one token."""
    return [n for n in names if single_token_id(tokenizer, n) is not None]


@dataclass(frozen=True, eq=False)
class IOITask(Task):
    """IOI prompts; metric = logit(IO) - logit(S) at each prompt's last position."""

    answer_pos: torch.Tensor  # [batch] index of each prompt's last real token
    io_token: torch.Tensor  # [batch]
    s_token: torch.Tensor  # [batch]
    order: tuple[str, ...]  # "ABBA" / "BABA" per prompt
    corruption: str = "s2"  # one of CORRUPTIONS

    def final_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """`[batch, d_vocab]` logits at each prompt's answer position."""
        rows = torch.arange(logits.shape[0], device=logits.device)
        return logits[rows, self.answer_pos.to(logits.device)]  # [batch, d_vocab]

    def metric(self, output: torch.Tensor) -> torch.Tensor:
        final = self.final_logits(output)  # [batch, d_vocab]
        rows = torch.arange(final.shape[0], device=final.device)
        return (
            final[rows, self.io_token.to(final.device)] - final[rows, self.s_token.to(final.device)]
        )

    def accuracy(self, logits: torch.Tensor) -> float:
        """Share of prompts where IO's logit beats S's."""
        return (self.metric(logits) > 0).float().mean().item()


def _token_lengths(model: Model, texts: list[str]) -> torch.Tensor:
    """`[batch]` token count of each text as `model.to_tokens` makes it (BOS included)."""
    return torch.tensor([model.to_tokens(text).shape[1] for text in texts])


def make_ioi_task(model: Model, *, n: int = 64, seed: int = 0, corruption: str = "s2") -> IOITask:
    """`n` IOI pairs for `model`'s tokenizer, corrupted by `corruption` (one of
    `CORRUPTIONS`). Raises `ValueError` for encoders, an unknown corruption, or a tokenizer
    with too few single-token names (3; 5 for "abc")."""
    if corruption not in CORRUPTIONS:
        raise ValueError(
            f"corruption: unknown corruption {corruption!r}; choose from {CORRUPTIONS}"
        )
    if not model.is_causal:
        raise ValueError(f"task: ioi needs a decoder; {model.name} is an encoder")
    names = single_token_names(model.tokenizer)
    need = 5 if corruption == "abc" else 3
    if len(names) < need:
        raise ValueError(
            f"task: {model.name}'s tokenizer has fewer than {need} single-token names "
            f"(corruption {corruption!r})"
        )
    prompts = generate_ioi_prompts(n, seed=seed, names=names, corruption=corruption)
    clean = model.to_tokens([p.text for p in prompts])  # [batch, pos]
    corrupted = model.to_tokens([p.corrupted_text for p in prompts])  # [batch, pos]
    lengths = _token_lengths(model, [p.text for p in prompts])  # [batch]
    corrupted_lengths = _token_lengths(model, [p.corrupted_text for p in prompts])  # [batch]
    if not torch.equal(lengths, corrupted_lengths):
        bad = prompts[int((lengths != corrupted_lengths).nonzero()[0])]
        raise ValueError(f"task: clean and corrupted prompts tokenise differently: {bad.text!r}")
    tok = model.tokenizer
    return IOITask(
        name="ioi",
        model_name=model.name,
        clean_tokens=clean.cpu(),
        corrupted_tokens=corrupted.cpu(),
        clean_text=tuple(p.text for p in prompts),
        corrupted_text=tuple(p.corrupted_text for p in prompts),
        readout=None,
        metric_name="logit_diff",
        answer_pos=(lengths - 1).cpu(),
        io_token=torch.tensor([single_token_id(tok, p.io) for p in prompts]),
        s_token=torch.tensor([single_token_id(tok, p.s) for p in prompts]),
        order=tuple(p.order for p in prompts),
        corruption=corruption,
    )
