"""Quality metrics of generated token sequences (free-running guided text), per sequence.

Every metric takes the generated continuation `[batch, new]` (token ids, the prompt excluded)
and returns `[batch]` float64 values:

- `seq_repetition(generated, n=4)`: seq-rep-n of Welleck et al. (2019, "Neural text
  degeneration with unlikelihood training"): `1 - |distinct n-grams| / |n-grams|` within the
  continuation; 0 = no n-gram repeats, -> 1 = one n-gram looped. Lower is better.
- `distinct_n(generated, n=2)`: distinct-n of Li et al. (2016): `|distinct n-grams| / |n-grams|`
  within the continuation (per sequence, not pooled over the batch). Higher is better.
- `plain_nll(model, prompts, generated)`: mean negative log-likelihood per generated token
  under the model WITHOUT guidance, teacher-forced on `prompt + continuation` (nats/token).
  Lower is better; greedy plain decoding is close to its minimum, so guidance can only lose a
  little or a lot here: it measures how far guidance moves text off the model's own fluency.

Caveat: continuations shorter than `n` tokens have no n-grams; their seq-rep is 0 and their
distinct-n is 1 (nothing repeated).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from workbench.model import Model


def _distinct_share(generated: torch.Tensor, n: int) -> torch.Tensor:
    if n < 1:
        raise ValueError(f"n: n-gram size must be >= 1, got {n}")
    rows = []
    for seq in generated.tolist():
        grams = [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]
        rows.append(len(set(grams)) / len(grams) if grams else 1.0)
    return torch.tensor(rows, dtype=torch.float64)  # [batch]


def seq_repetition(generated: torch.Tensor, *, n: int = 4) -> torch.Tensor:
    """`[batch]` seq-rep-n: 1 - distinct n-grams / n-grams of each continuation."""
    return 1.0 - _distinct_share(generated, n)


def distinct_n(generated: torch.Tensor, *, n: int = 2) -> torch.Tensor:
    """`[batch]` distinct-n: distinct n-grams / n-grams of each continuation."""
    return _distinct_share(generated, n)


@torch.no_grad()
def plain_nll(model: Model, prompts: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
    """`[batch]` mean NLL (nats/token) of `generated` after `prompts` under the plain model."""
    prompts, generated = prompts.cpu(), generated.cpu()
    tokens = torch.cat([prompts, generated], dim=1)  # [batch, pos + new]
    logits = model(tokens.to(model.device)).cpu().double()  # [batch, pos + new, d_vocab]
    start = prompts.shape[1]
    log_p = torch.log_softmax(logits[:, start - 1 : -1], dim=-1)  # [batch, new, d_vocab]
    nll = -log_p.gather(-1, generated[..., None])[..., 0]  # [batch, new]
    return nll.mean(-1)


__all__ = ["distinct_n", "plain_nll", "seq_repetition"]
