"""Universal adversarial span: one span optimised over a set of prompts (GCG's multi-prompt form).

Zou et al. (2023, "Universal and Transferable Adversarial Attacks on Aligned Language Models")
optimise a single suffix over several prompts: the token gradients of every prompt's loss are
summed, candidate single-token swaps are drawn from the top-k of that sum, and each candidate is
scored by its loss summed over all the prompts. `UniversalAttack` does exactly that, with the
objectives, candidate sampling, token filter and re-tokenisation check of `TokenAttack`:

1. one forward/backward per search prompt gives d loss / d one-hot span; the gradients are
   summed over prompts -> `[n_adv, d_vocab]`;
2. banned tokens get +inf; the `top_k` most negative entries per position are its candidates;
3. `batch_size` random single swaps are drawn (seeded by `seed`); a swap is kept only when the
   span re-tokenises the same inside every search prompt;
4. every candidate is scored on every search prompt; the one with the lowest summed loss
   replaces the span when it lowers the sum.

It stops after `steps` steps, or earlier once the span succeeds on every search prompt (not for
`dissipation`, which has no task success). The flip loss is clamped at `-margin`, so prompts
that are already flipped stop pulling and the search works on the rest.

The span sits where the per-prompt attack puts it: decoders, right after BOS (a universal
*prefix*: IOI ends at the answer position, so a suffix would change the question); encoders,
before the final [SEP] (a suffix). `fit(model, prompts, rows=search_rows)` learns `span_`
(token ids), `text_`, `curve_` (mean loss per step) and `search_` (per search prompt outcome);
`evaluate(model, prompts, rows=held_out_rows)` writes the learned span into held-out prompts
and returns one row per prompt (metric and success with the initial span and with the learned
span, targeted heads' entropy before/after). Report held-out rows, not search rows.
"""

from __future__ import annotations

import pandas as pd
import torch
from tqdm.auto import tqdm

from analysis.attacks.filters import check_count
from analysis.attacks.spans import score_spans, with_spans
from analysis.attacks.token_attack import TokenAttack, retokenises_same


class UniversalAttack:
    """One adversarial span for many prompts (see module docstring). Keyword arguments are
    `TokenAttack`'s; learned: `span_`, `text_`, `curve_`, `steps_used_`, `search_`."""

    def __init__(self, *, steps: int = 50, **kwargs) -> None:
        if "require_dissipation" in kwargs:
            raise ValueError("require_dissipation: not supported by the universal attack")
        check_count("steps", steps)
        self.attack = TokenAttack(steps=steps, **kwargs)
        self.steps = steps

    def _filtered(self, model, cases, span, candidates: torch.Tensor) -> torch.Tensor:
        candidates = torch.unique(candidates, dim=0)
        candidates = candidates[(candidates != span).any(1)]  # drop no-op swaps
        keep = [
            all(retokenises_same(model, with_spans(case, row[None])[0]) for case in cases)
            for row in candidates
        ]
        return candidates[torch.tensor(keep, dtype=torch.bool)] if len(candidates) else candidates

    def _score(self, model, cases, spans: torch.Tensor, before: list[float]):
        """Summed loss `[n]` and number of prompts succeeded `[n]` of spans `[n, n_adv]`."""
        spec = self.attack.spec
        total = torch.zeros(spans.shape[0])
        wins = torch.zeros(spans.shape[0], dtype=torch.long)
        for case, h0 in zip(cases, before, strict=True):
            scores = score_spans(model, spec, case, spans, entropy_before=h0)
            total += scores.loss
            wins += scores.success.long()
        return total, wins

    def fit(self, model, prompts, *, rows=None) -> UniversalAttack:
        """Optimise one span over the prompts (or those in `rows`): the search split."""
        attack, spec = self.attack, self.attack.spec
        spec.check(model)
        cases = attack._cases(model, prompts, rows)
        allowed = attack._allowed_tokens(model)  # [d_vocab]
        excluded = sorted({t for case in cases for t in case.excluded_tokens})
        generator = torch.Generator().manual_seed(int(attack.seed))
        span = cases[0].tokens[cases[0].adv_positions].clone()  # [n_adv]
        before = [float(score_spans(model, spec, c, span[None]).entropy[0]) for c in cases]
        loss, wins = self._score(model, cases, span[None], before)
        best, best_wins = float(loss[0]), int(wins[0])
        curve, steps_used = [best / len(cases)], 0
        n_adv = len(span)
        for _ in tqdm(range(self.steps), disable=not attack.progress, desc="universal"):
            if spec.name != "dissipation" and best_wins == len(cases):
                break
            steps_used += 1
            grad = torch.zeros(n_adv, model.d_vocab)  # [n_adv, d_vocab]
            for case in cases:
                tokens = with_spans(case, span[None])[0]  # [pos]
                grad += attack.token_gradient(model, case, tokens)
            grad = grad.masked_fill(~allowed, float("inf"))
            if excluded:
                grad[:, excluded] = float("inf")
            k = min(attack.top_k, int(allowed.sum()) - len(excluded))
            top = (-grad).topk(max(k, 1), dim=-1).indices  # [n_adv, k]
            slot = torch.randint(n_adv, (attack.batch_size,), generator=generator)  # [batch]
            pick = torch.randint(top.shape[1], (attack.batch_size,), generator=generator)
            candidates = span.repeat(attack.batch_size, 1)  # [batch, n_adv]
            candidates[torch.arange(attack.batch_size), slot] = top[slot, pick]
            candidates = self._filtered(model, cases, span, candidates)
            if len(candidates):
                loss, wins = self._score(model, cases, candidates, before)
                i = int(loss.argmin())
                if float(loss[i]) < best:
                    span, best, best_wins = candidates[i].clone(), float(loss[i]), int(wins[i])
            curve.append(best / len(cases))
        self.span_ = span
        self.text_ = model.tokenizer.decode(span.tolist())
        self.curve_ = curve
        self.steps_used_ = steps_used
        self.search_ = self.evaluate(model, prompts, rows=rows)
        return self

    def evaluate(self, model, prompts, *, rows=None) -> pd.DataFrame:
        """The learned span written into the prompts (or `rows`): one row per prompt with
        `metric_before`/`metric_after`, `success_before` (the initial span already succeeds)
        /`success`, `entropy_before`/`entropy_after` and `retokenises` (the prompt text with
        the span re-tokenises to the same ids)."""
        if not hasattr(self, "span_"):
            raise ValueError("evaluate: call fit(...) first")
        attack, spec = self.attack, self.attack.spec
        cases = attack._cases(model, prompts, rows)
        out = []
        for case in cases:
            initial = case.tokens[case.adv_positions]  # [n_adv]
            before = score_spans(model, spec, case, initial[None])
            h0 = float(before.entropy[0])
            after = score_spans(model, spec, case, self.span_[None], entropy_before=h0)
            out.append(
                {
                    "index": case.index,
                    "metric_before": float(before.metric[0]),
                    "metric_after": float(after.metric[0]),
                    "success_before": bool(before.success[0])
                    if spec.name != "dissipation"
                    else False,
                    "success": bool(after.success[0]),
                    "entropy_before": h0,
                    "entropy_after": float(after.entropy[0]),
                    "uniform_entropy": after.uniform,
                    "retokenises": retokenises_same(model, with_spans(case, self.span_[None])[0]),
                }
            )
        return pd.DataFrame(out)


__all__ = ["UniversalAttack"]
