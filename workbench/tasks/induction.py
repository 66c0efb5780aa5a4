"""The induction task: repeated random tokens.

Clean prompts are `BOS + r + r` for a random token sequence `r` of length `seq_len`; the
corrupted prompt `BOS + r' + r` replaces the first copy, so the second half's tokens (the
queries) are unchanged but there is nothing to copy from. The metric is the mean log-probability
of the correct next token over the second copy, which only an induction mechanism can raise.

`induction_scores` is the standard head score: the attention each head pays from a position in
the second copy to the token right after that position's first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from workbench.tasks.base import Task

if TYPE_CHECKING:
    from workbench.model import Model


def _special_ids(model: Model) -> set[int]:
    return set(getattr(model.tokenizer, "all_special_ids", []) or [])


def random_repeated_tokens(
    model: Model, *, n: int, seq_len: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(clean, corrupted)` token tensors `[n, 1 + 2 * seq_len]` (see module docstring)."""
    if seq_len < 2 or 1 + 2 * seq_len > model.n_ctx:
        raise ValueError(
            f"seq_len: need 2 <= seq_len and 1 + 2*seq_len <= {model.n_ctx}, got {seq_len}"
        )
    if n < 1:
        raise ValueError(f"n: need at least one prompt, got {n}")
    gen = torch.Generator().manual_seed(seed)
    allowed = torch.tensor([i for i in range(model.d_vocab) if i not in _special_ids(model)])
    first = allowed[torch.randint(len(allowed), (n, seq_len), generator=gen)]  # [n, seq_len]
    other = allowed[torch.randint(len(allowed), (n, seq_len), generator=gen)]  # [n, seq_len]
    bos_id = model.tokenizer.bos_token_id
    bos_id = model.tokenizer.cls_token_id if bos_id is None else bos_id
    bos = torch.full((n, 1), bos_id, dtype=torch.long)  # [n, 1]
    clean = torch.cat([bos, first, first], dim=1)  # [n, 1 + 2*seq_len]
    corrupted = torch.cat([bos, other, first], dim=1)  # [n, 1 + 2*seq_len]
    return clean, corrupted


@dataclass(frozen=True, eq=False)
class InductionTask(Task):
    """Repeated random tokens; metric = mean log p(next token) over the second copy."""

    seq_len: int

    def positions(self) -> torch.Tensor:
        """Query positions scored: the second copy, except its last token."""
        return torch.arange(self.seq_len + 1, 2 * self.seq_len)

    def metric(self, output: torch.Tensor) -> torch.Tensor:
        pos = self.positions().to(output.device)
        logprobs = output[:, pos].log_softmax(-1)  # [batch, seq_len-1, d_vocab]
        targets = self.clean_tokens[:, pos + 1].to(output.device)  # [batch, seq_len-1]
        return logprobs.gather(-1, targets[..., None])[..., 0].mean(-1)  # [batch]


def make_induction_task(
    model: Model, *, n: int = 32, seq_len: int = 20, seed: int = 0
) -> InductionTask:
    """`n` repeated-random-token pairs for a decoder."""
    if not model.is_causal:
        raise ValueError(f"task: induction needs a decoder; {model.name} is an encoder")
    clean, corrupted = random_repeated_tokens(model, n=n, seq_len=seq_len, seed=seed)
    return InductionTask(
        name="induction",
        model_name=model.name,
        clean_tokens=clean,
        corrupted_tokens=corrupted,
        clean_text=(),
        corrupted_text=(),
        readout=None,
        metric_name="logprob_repeated",
        seq_len=seq_len,
    )


@torch.no_grad()
def induction_scores(
    model: Model, *, n: int = 16, seq_len: int = 50, seed: int = 0
) -> torch.Tensor:
    """`[layer, head]` mean attention from each second-copy token to the token after its first
    occurrence (1.0 = a perfect induction head)."""
    clean, _ = random_repeated_tokens(model, n=n, seq_len=seq_len, seed=seed)
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.n_layers)]
    _, cache = model.run_with_cache(clean, names=names)
    dest = torch.arange(seq_len + 1, 2 * seq_len + 1)  # second copy
    src = dest - seq_len + 1
    scores = [cache[name][:, :, dest, src].mean(dim=(0, 2)) for name in names]  # each [head]
    return torch.stack(scores).cpu()  # [layer, head]


@torch.no_grad()
def repeated_half_losses(
    model: Model, *, n: int = 16, seq_len: int = 50, seed: int = 0
) -> dict[str, float]:
    """Mean next-token loss on the first and on the second copy of repeated random tokens."""
    clean, _ = random_repeated_tokens(model, n=n, seq_len=seq_len, seed=seed)
    logprobs = model(clean).log_softmax(-1)  # [n, pos, d_vocab]
    nll = -logprobs[:, :-1].gather(-1, clean[:, 1:, None])[..., 0]  # [n, pos-1]
    return {
        "loss_first_half": nll[:, 1:seq_len].mean().item(),
        "loss_second_half": nll[:, seq_len + 1 :].mean().item(),
    }
