"""The random-span baseline of an attack: how often a span of the same length, drawn at random
with the same token filter, already succeeds.

`random_baseline(model, attack, prompts, n_draws=..., seed=...)` prepares the prompts exactly as
`attack` (a `TokenAttack` or `UniversalAttack`) would (same span length and position, same
initial span, same objective and success rule, same banned tokens), then for every prompt draws
`n_draws` spans uniformly from the allowed tokens (`analysis.attacks.filters`, minus the
prompt's excluded tokens), keeps only spans whose text re-tokenises the same (as the attack's
candidates must) and scores them (`analysis.attacks.spans`).

The result has one row per prompt: `index`, `draws`, `successes`, `rate` (successes / draws: the
chance that one random span succeeds), `any_success` (at least one of the draws succeeded),
`metric_before` (initial span), `metric_mean` (mean over the draws) and, with heads,
`entropy_before` / `entropy_mean` (targeted heads' mean entropy over the query rows).

The success rate to set beside an attack's is the mean of `rate` over prompts (per-prompt
attack: one random span per prompt; universal attack: one random span for all prompts has the
same expectation). `any_success` is a random search with `n_draws` tries per prompt. Draws use a
generator seeded by (seed, prompt index) via `prompt_seed`, so each prompt's draws do not
depend on which other prompts are in the list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import torch

from analysis.attacks.filters import check_count
from analysis.attacks.spans import draw_spans, score_spans

if TYPE_CHECKING:
    from workbench.model import Model


def random_baseline(
    model: Model, attack, prompts, *, rows=None, n_draws: int = 32, seed: int = 0
) -> pd.DataFrame:
    """Random spans of the attack's length and filter on every prompt (module docstring)."""
    from analysis.attacks.token_attack import prompt_seed

    check_count("n_draws", n_draws)
    check_count("seed", seed, 0)
    token_attack = getattr(attack, "attack", attack)  # UniversalAttack wraps a TokenAttack
    spec = token_attack.spec
    spec.check(model)
    cases = token_attack._cases(model, prompts, rows)
    allowed = token_attack._allowed_tokens(model)  # [d_vocab]
    out = []
    for case in cases:
        generator = torch.Generator().manual_seed(prompt_seed(seed + 7919, case.index))
        before = score_spans(model, spec, case, case.tokens[case.adv_positions][None])
        h0 = float(before.entropy[0])
        spans = draw_spans(model, case, allowed, n_draws, generator)  # [n_draws, n_adv]
        scores = score_spans(model, spec, case, spans, entropy_before=h0)
        out.append(
            {
                "index": case.index,
                "draws": n_draws,
                "successes": int(scores.success.sum()),
                "rate": float(scores.success.float().mean()),
                "any_success": bool(scores.success.any()),
                "metric_before": float(before.metric[0]),
                "metric_mean": float(scores.metric.mean()),
                "entropy_before": h0,
                "entropy_mean": float(scores.entropy.mean()),
                "uniform_entropy": scores.uniform,
            }
        )
    return pd.DataFrame(out)


__all__ = ["random_baseline"]
