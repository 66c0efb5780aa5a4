"""Scoring given adversarial spans on prepared prompts, and drawing random spans.

Shared by the universal attack (`analysis.attacks.universal`: one span written into every
prompt) and the random-span baseline (`analysis.attacks.baseline`): both need the loss, the
task metric, success and the targeted heads' attention entropy of many spans on one prompt.

- `with_spans(case, spans)` writes each span `[n, n_adv]` into the prompt's adversarial
  positions -> `[n, pos]`; nothing outside the span changes.
- `score_spans(model, spec, case, spans)` -> `SpanScores` of one batched forward pass.
- `draw_spans(model, case, allowed, n, generator)` draws `n` spans uniformly (independently per
  position) from the allowed tokens minus the prompt's excluded tokens, keeping only spans whose
  prompt text re-tokenises to the same ids (the filter the attack applies to its candidates).

Success follows `ObjectiveSpec.task_success` (flip: logit(IO) < logit(S); raise_loss: the target
is no longer top-1; embedding: cosine below the threshold). For `dissipation` (no task), a span
succeeds when the targeted heads' mean entropy moved at least half-way from `entropy_before`
(the prompt with its initial span) to uniform, as in `TokenAttack`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from analysis.attacks.objectives import (
    AttackCase,
    ObjectiveSpec,
    head_rows,
    row_entropy,
    run_records,
    uniform_entropy,
)

if TYPE_CHECKING:
    from workbench.model import Model

MAX_DRAW_ROUNDS = 50  # resampling rounds before `draw_spans` gives up on the re-tokenisation


@dataclass(frozen=True)
class SpanScores:
    """Per span `[n]`: loss (minimised), plain metric, success, targeted heads' mean entropy
    over the query rows (NaN without heads) and the uniform entropy (scalar)."""

    loss: torch.Tensor
    metric: torch.Tensor
    success: torch.Tensor
    entropy: torch.Tensor
    uniform: float


def with_spans(case: AttackCase, spans: torch.Tensor) -> torch.Tensor:
    """The prompt with each span `[n, n_adv]` in its adversarial positions -> `[n, pos]`."""
    batch = case.tokens.repeat(spans.shape[0], 1)  # [n, pos]
    batch[:, case.adv_positions] = spans
    return batch


@torch.no_grad()
def score_spans(
    model: Model,
    spec: ObjectiveSpec,
    case: AttackCase,
    spans: torch.Tensor,
    *,
    entropy_before: float | None = None,
    chunk: int = 256,
) -> SpanScores:
    """Score every span `[n, n_adv]` on `case` (see module docstring), `chunk` at a time."""
    parts: list[tuple[torch.Tensor, ...]] = []
    uniform = float("nan")
    for start in range(0, spans.shape[0], chunk):
        tokens = with_spans(case, spans[start : start + chunk]).to(model.device)  # [b, pos]
        output, patterns = run_records(
            model, tokens, layers=spec.layers, readout=spec.readout(model)
        )
        loss = spec.loss(output, patterns, case).float().cpu()  # [b]
        metric = spec.task_loss(output, case, clamp=False).float().cpu()  # [b]
        if spec.name == "dissipation":
            success = torch.zeros(tokens.shape[0], dtype=torch.bool)
        else:
            success = spec.task_success(output, case).cpu()  # [b]
        if spec.heads:
            rows = head_rows(patterns, spec.heads, case.query_rows).float()  # [b, h, rows, key]
            entropy = row_entropy(rows).mean((1, 2)).cpu()  # [b]
            causal = model.is_causal
            uniform = float(uniform_entropy(case.query_rows, rows.shape[-1], causal=causal).mean())
        else:
            entropy = torch.full((tokens.shape[0],), float("nan"))
        parts.append((loss, metric, success, entropy))
    loss, metric, success, entropy = (torch.cat(column) for column in zip(*parts, strict=True))
    if spec.name == "dissipation" and entropy_before is not None:
        gap = uniform - entropy_before
        success = (entropy - entropy_before >= 0.5 * gap) & (gap > 0)
    return SpanScores(loss, metric, success, entropy, uniform)


def draw_spans(
    model: Model,
    case: AttackCase,
    allowed: torch.Tensor,
    n: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """`n` random spans `[n, n_adv]` from `allowed` `[d_vocab]` minus `case.excluded_tokens`,
    each one re-tokenising to the same ids inside the prompt (see module docstring)."""
    from analysis.attacks.token_attack import retokenises_same

    pool = allowed.clone()  # [d_vocab]
    if case.excluded_tokens:
        pool[list(case.excluded_tokens)] = False
    ids = pool.nonzero()[:, 0]  # [n_allowed]
    if len(ids) == 0:
        raise ValueError("tokens: the token filter leaves no token to draw a random span from")
    n_adv = len(case.adv_positions)
    kept: list[torch.Tensor] = []
    for _ in range(MAX_DRAW_ROUNDS):
        need = n - sum(len(k) for k in kept)
        if need <= 0:
            break
        picks = torch.randint(len(ids), (2 * need, n_adv), generator=generator)  # [2n, n_adv]
        spans = ids[picks]  # [2n, n_adv]
        ok = [retokenises_same(model, row) for row in with_spans(case, spans)]
        kept.append(spans[torch.tensor(ok, dtype=torch.bool)][:need])
    spans = torch.cat(kept) if kept else torch.empty(0, n_adv, dtype=torch.long)
    if len(spans) < n:
        raise ValueError(
            f"tokens: only {len(spans)} of {n} random spans re-tokenise the same on prompt "
            f"{case.index} after {MAX_DRAW_ROUNDS} rounds"
        )
    return spans


__all__ = ["SpanScores", "draw_spans", "score_spans", "with_spans"]
