"""The key-value lookup task: recall the value bound to a queried key.

A prompt is `BOS k1 v1 k2 v2 ... kn vn q SEP` with `n_pairs` distinct random keys, random
values and `q` one of the keys; the answer (predicted at SEP, the last position) is the value
that followed `q`. The corrupted prompt is an independently drawn prompt of the same layout
(new keys, values and query), so every token-dependent quantity differs while positions do
not. The metric is the log-probability of the clean answer at the last position.

Built for `planted-lookup` (a circuit with Q-, K- and V-composition); works on any decoder
whose tokenizer has a separator token (`sep_token_id`) and a context of `2 n_pairs + 3`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from workbench.tasks.base import Task

if TYPE_CHECKING:
    from workbench.model import Model


def _prompts(
    allowed: torch.Tensor, bos: int, sep: int, *, n: int, n_pairs: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(tokens [n, 2 n_pairs + 3], answers [n])`."""
    keys = torch.stack(
        [allowed[torch.randperm(len(allowed), generator=gen)[:n_pairs]] for _ in range(n)]
    )  # [n, n_pairs]
    values = allowed[torch.randint(len(allowed), (n, n_pairs), generator=gen)]  # [n, n_pairs]
    which = torch.randint(n_pairs, (n,), generator=gen)  # [n]
    rows = torch.arange(n)
    pairs = torch.stack([keys, values], dim=2).reshape(n, 2 * n_pairs)  # [n, 2 n_pairs]
    tokens = torch.cat(
        [
            torch.full((n, 1), bos),
            pairs,
            keys[rows, which][:, None],
            torch.full((n, 1), sep),
        ],
        dim=1,
    )  # [n, 2 n_pairs + 3]
    return tokens, values[rows, which]


@dataclass(frozen=True, eq=False)
class LookupTask(Task):
    """Key-value recall; metric = log p(clean answer) at the last position."""

    n_pairs: int
    answers: torch.Tensor  # [batch] clean answer ids

    def metric(self, output: torch.Tensor) -> torch.Tensor:
        logprobs = output[:, -1].log_softmax(-1)  # [batch, d_vocab]
        return logprobs.gather(-1, self.answers.to(output.device)[:, None])[:, 0]  # [batch]


def make_lookup_task(model: Model, *, n: int = 32, n_pairs: int = 8, seed: int = 0) -> LookupTask:
    """`n` clean/corrupted key-value lookup prompts for a decoder (see module docstring)."""
    if not model.is_causal:
        raise ValueError(f"task: lookup needs a decoder; {model.name} is an encoder")
    if n < 1:
        raise ValueError(f"n: need at least one prompt, got {n}")
    sep = getattr(model.tokenizer, "sep_token_id", None)
    bos = model.tokenizer.bos_token_id
    if sep is None or bos is None:
        raise ValueError(
            f"task: lookup needs a tokenizer with BOS and separator tokens; {model.name} lacks one"
        )
    special = set(getattr(model.tokenizer, "all_special_ids", []) or [])
    allowed = torch.tensor([i for i in range(model.d_vocab) if i not in special])
    if not 1 <= n_pairs <= len(allowed) or 2 * n_pairs + 3 > model.n_ctx:
        raise ValueError(
            f"n_pairs: need 1 <= n_pairs <= {len(allowed)} and 2*n_pairs + 3 <= {model.n_ctx}, "
            f"got {n_pairs}"
        )
    gen = torch.Generator().manual_seed(seed)
    clean, answers = _prompts(allowed, bos, sep, n=n, n_pairs=n_pairs, gen=gen)
    corrupted, _ = _prompts(allowed, bos, sep, n=n, n_pairs=n_pairs, gen=gen)
    return LookupTask(
        name="lookup",
        model_name=model.name,
        clean_tokens=clean,
        corrupted_tokens=corrupted,
        clean_text=(),
        corrupted_text=(),
        readout=None,
        metric_name="logprob_answer",
        n_pairs=n_pairs,
        answers=answers,
    )
