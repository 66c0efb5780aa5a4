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
before the final [SEP] (a suffix). `fit(model, prompts, rows=search_rows, task_seed=7)` learns `span_`
(token ids), `text_`, `curve_` (mean loss per step) and `search_` (per search prompt outcome);
`evaluate(model, prompts, rows=held_out_rows, task_seed=4242)` writes the learned span into
held-out prompts and returns a `UniversalAttackResult` (`analysis.attacks.universal_result`):
one row per prompt (metric and success with the initial span and with the learned span,
targeted heads' entropy before/after, `.to_frame()`), the random-span baseline on the same
prompts (`baseline_draws` per prompt, 0: none) and every success rate with its 95% percentile
bootstrap interval over the held-out prompts (`n_boot`, `boot_seed`). Report held-out rows,
not search rows. `task_seed` only records which prompt set was used (None: not recorded).
"""

from __future__ import annotations

import pandas as pd
import torch
from tqdm.auto import tqdm

from analysis.attacks.baseline import random_baseline
from analysis.attacks.filters import check_count
from analysis.attacks.spans import score_spans, with_spans
from analysis.attacks.token_attack import TokenAttack, retokenises_same
from analysis.attacks.universal_result import UniversalAttackResult, rate_interval


class UniversalAttack:
    """One adversarial span for many prompts (see module docstring). Keyword arguments are
    `TokenAttack`'s; learned: `span_`, `text_`, `curve_`, `steps_used_`, `search_`,
    `search_seed_`."""

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

    def fit(self, model, prompts, *, rows=None, task_seed: int | None = None) -> UniversalAttack:
        """Optimise one span over the prompts (or those in `rows`): the search split.
        `task_seed` records the seed the search prompts were made with (None: not recorded)."""
        attack, spec = self.attack, self.attack.spec
        if task_seed is not None:
            check_count("task_seed", task_seed, 0)
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
        self.search_seed_ = task_seed
        self.search_ = self.outcomes(model, prompts, rows=rows)
        return self

    def evaluate(
        self,
        model,
        prompts,
        *,
        rows=None,
        task_seed: int | None = None,
        baseline_draws: int = 32,
        n_boot: int = 1000,
        boot_seed: int = 0,
    ) -> UniversalAttackResult:
        """The learned span on held-out prompts (or their `rows`) beside `baseline_draws`
        random spans per prompt (0: no baseline), each success rate with its 95% percentile
        bootstrap interval over the prompts (`n_boot` resamples seeded by `boot_seed`).
        `task_seed` records the seed the held-out prompts were made with."""
        if not hasattr(self, "span_"):
            raise ValueError("evaluate: call fit(...) first")
        check_count("baseline_draws", baseline_draws, 0)
        check_count("n_boot", n_boot)
        check_count("boot_seed", boot_seed, 0)
        if task_seed is not None:
            check_count("task_seed", task_seed, 0)
        attack = self.attack
        frame = self.outcomes(model, prompts, rows=rows)
        baseline = rate = any_rate = None
        if baseline_draws:
            baseline = random_baseline(
                model, self, prompts, rows=rows, n_draws=baseline_draws, seed=attack.seed
            )
            rate = rate_interval(baseline["rate"], n_boot=n_boot, seed=boot_seed)
            any_rate = rate_interval(baseline["any_success"], n_boot=n_boot, seed=boot_seed)
        config = {
            "steps": self.steps,
            "n_adv": attack.n_adv,
            "top_k": attack.top_k,
            "batch_size": attack.batch_size,
            "dissipation_weight": attack.spec.dissipation_weight,
            "dissipation": attack.spec.dissipation,
            "ban_names": attack.ban_names,
            "query": attack.query,
            "seed": attack.seed,
            "n_search": len(self.search_),
            "search_seed": self.search_seed_,
            "n_held_out": len(frame),
            "held_out_seed": task_seed,
            "baseline_draws": baseline_draws,
            "n_boot": n_boot,
            "boot_seed": boot_seed,
        }
        return UniversalAttackResult(
            model_name=model.name,
            objective=attack.spec.name,
            heads=attack.spec.heads,
            config=config,
            span_tokens=tuple(int(t) for t in self.span_),
            span_text=self.text_,
            n_search=len(self.search_),
            search_seed=self.search_seed_,
            held_out_seed=task_seed,
            steps_used=self.steps_used_,
            search_success_rate=float(self.search_["success"].mean()),
            curve=tuple(float(v) for v in self.curve_),
            prompts=frame,
            success=rate_interval(frame["success"], n_boot=n_boot, seed=boot_seed),
            success_before=rate_interval(frame["success_before"], n_boot=n_boot, seed=boot_seed),
            baseline=baseline,
            baseline_rate=rate,
            baseline_any=any_rate,
        )

    def outcomes(self, model, prompts, *, rows=None) -> pd.DataFrame:
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
