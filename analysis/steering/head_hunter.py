"""HeadHunter-style search for the heads whose perturbation makes guidance work best.

HeadHunter ("Fine-Grained Perturbation Guidance via Attention Head Selection", arXiv
2506.10978) selects heads for perturbed-attention guidance by greedy rounds over candidate
heads, scoring each candidate set by a user objective evaluated on the GUIDED output. Here, for
language models:

- an objective (`analysis.steering.objectives`) turns "guide with these heads perturbed" into
  one score per prompt, higher is better: scores of the guided logits (`Objective`, e.g. the
  guided greedy IOI answer `ioi_top1`) or of greedy guided generations (`GenerationObjective`,
  e.g. `induction_copy`, `text_repetition`). `fit` takes an objective or a registered name
  (`objective_options` go to its builder). `ioi_logit_diff` is kept but INFLATED by
  construction: the guided logit difference is `LD + w (LD - LD_pert)`, so it ranks heads by
  how much perturbing them hurts the task, not by how good the guided output is;
- `HeadHunter(...).fit(model, objective, select=rows, heldout=rows)` runs `rounds` greedy rounds
  on the `select` rows: every remaining candidate is scored as (chosen heads + candidate) under
  guidance, the `top_k` best are added, and the search stops early when a round does not
  improve the score (the stop rule is this workbench's; the paper runs a fixed number of
  rounds). Then, on the separate `heldout` rows, per prompt: no guidance, the chosen heads,
  layer-level guidance (all heads of the layer that scores best on `select`) and `n_random`
  draws of random heads (as many as were chosen, seeded);
- `result_` is a `HeadSearchResult`; `result_.intervals()` gives percentile-bootstrap intervals
  over held-out prompts of every setting's mean and of its paired difference from no guidance.

`fit(..., executor=...)` scores each round's candidates in shards (`candidates_per_shard`) on
an executor (`workbench.executors`: in process by default, or Ray); every candidate is scored
alone, so the search is the same whatever the sharding.

Caveat: the plausibility set (`alpha > 0`) sets excluded tokens to -inf, which makes logit
differences and log-probabilities infinite, so the default here is `alpha = 0` (every token
kept); objectives that need it refuse `alpha > 0`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from analysis.steering.head_perturbation import HeadPerturbation
from analysis.steering.head_search_result import (
    SETTINGS,
    HeadSearchResult,
    bootstrap_mean_interval,
)
from analysis.steering.objectives import (
    AnyObjective,
    GenerationObjective,
    Objective,
    ioi_objective,
    loss_objective,
    make_objective,
    mean_score,
)
from workbench.executors import Executor, Shard, make_shards, resolve_executor, run_sharded
from workbench.heads import Head, parse_heads

if TYPE_CHECKING:
    from workbench.model import Model


def split_rows(n: int, *, heldout_fraction: float = 0.5, seed: int = 0):
    """A seeded random split of `range(n)` into (select, heldout) index tensors."""
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction: must be in (0, 1), got {heldout_fraction}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_heldout = max(1, round(n * heldout_fraction))
    if n - n_heldout < 1:
        raise ValueError(f"n: need at least 2 prompts to split, got {n}")
    return order[n_heldout:].sort().values, order[:n_heldout].sort().values


class HeadHunter:
    """Greedy head selection for guidance (see module docstring). Learned: `heads_`,
    `history_`, `best_layer_`, `result_`."""

    def __init__(
        self,
        *,
        method: str = "identity",
        u: float = 1.0,
        w: float = 1.0,
        alpha: float = 0.0,
        rounds: int = 2,
        top_k: int = 1,
        candidates: str | Sequence[Any] | None = None,
        n_random: int = 3,
        seed: int = 0,
        progress: bool = False,
    ) -> None:
        if rounds < 1 or top_k < 1:
            raise ValueError(f"rounds/top_k: must be >= 1, got rounds={rounds}, top_k={top_k}")
        if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 0:
            raise ValueError(f"n_random: need a whole number >= 0, got {n_random!r}")
        HeadPerturbation(heads=((0, 0),), method=method, u=u)  # validates method and u
        self.method, self.u, self.w, self.alpha = method, u, w, alpha
        candidates = None if candidates is None else parse_heads(candidates)
        self.rounds, self.top_k, self.candidates, self.progress = (
            rounds,
            top_k,
            candidates,
            progress,
        )
        self.n_random, self.seed = n_random, seed

    def _per_prompt(self, model, objective, rows, heads, orig) -> torch.Tensor:
        """`[batch]` objective scores on `rows` of guidance with `heads` (none: plain)."""
        perturbation = (
            HeadPerturbation(heads=tuple(heads), method=self.method, u=self.u) if heads else None
        )
        return objective.scores(model, rows, perturbation, w=self.w, alpha=self.alpha, orig=orig)

    def _score(self, model, objective, rows, heads, orig) -> float:
        return mean_score(self._per_prompt(model, objective, rows, heads, orig))

    @torch.no_grad()
    def fit(
        self,
        model: Model,
        objective: AnyObjective | str,
        *,
        select: torch.Tensor,
        heldout: torch.Tensor,
        objective_options: dict[str, Any] | None = None,
        executor: str | Executor | None = "inprocess",
        address: str | None = None,
        candidates_per_shard: int | None = None,
    ) -> HeadHunter:
        """Run the greedy search on `select` and compare the settings on `heldout`.

        objective: an `Objective`/`GenerationObjective` or a registered name
            (`analysis.steering.objectives.OBJECTIVES`, built with `objective_options`).
        executor: "inprocess" (default), "ray" or an `Executor`: each round's candidates are
            cut into shards of `candidates_per_shard` (default: one shard per round) that are
            scored there; the scores, and so the search, do not depend on it.
        address: Ray cluster address for executor="ray" (default `RAY_ADDRESS`, else local).
        """
        if isinstance(objective, str):
            objective = make_objective(objective, model, **(objective_options or {}))
        elif objective_options:
            raise ValueError("objective_options: only for an objective given by name")
        if not isinstance(objective, Objective | GenerationObjective):
            raise ValueError(
                f"objective: need an Objective, a GenerationObjective or a registered name, "
                f"got {type(objective).__name__}"
            )
        if candidates_per_shard is not None and candidates_per_shard < 1:
            raise ValueError(f"candidates_per_shard: must be >= 1, got {candidates_per_shard}")
        for name, rows in (("select", select), ("heldout", heldout)):
            if len(rows) < 1 or int(rows.min()) < 0 or int(rows.max()) >= objective.n_prompts:
                raise ValueError(
                    f"{name}: rows must be non-empty indices below {objective.n_prompts}"
                )
        runner, owned = resolve_executor(executor, address=address)
        try:
            return self._fit(model, objective, select, heldout, runner, candidates_per_shard)
        finally:
            if owned:
                runner.close()

    def _round_scores(self, model, objective, select, chosen, remaining, runner, per_shard, round_):
        """{candidate: score of chosen + [candidate]} for every remaining candidate, sharded."""
        key = {
            "model": model.name,
            "objective": objective.name,
            "round": round_,
            "chosen": [list(c) for c in chosen],
        }
        items = [list(c) for c in remaining]
        shards = make_shards(items, size=per_shard or len(items), key=key)
        shard_fn = functools.partial(
            candidate_scores, hunter=self, objective=objective, select=select, chosen=tuple(chosen)
        )
        frames = run_sharded(shard_fn, shards, model=model, executor=runner).frames
        table = pd.concat(frames, ignore_index=True)
        return {Head(int(r.layer), int(r.head)): float(r.score) for r in table.itertuples()}

    def _search(self, model, objective, select, candidates, runner, per_shard, orig_sel):
        """The greedy rounds on `select`: (chosen heads, history rows)."""
        chosen: list[Head] = []
        best = self._score(model, objective, select, [], orig_sel)
        history = []
        bar = tqdm(total=self.rounds, disable=not self.progress, desc="head search")
        for round_ in range(self.rounds):
            remaining = [c for c in candidates if c not in chosen]
            if not remaining:
                break
            scores = self._round_scores(
                model, objective, select, chosen, remaining, runner, per_shard, round_
            )
            ranked = sorted(remaining, key=lambda c: -scores[c])
            trial = chosen + ranked[: self.top_k]
            trial_score = self._score(model, objective, select, trial, orig_sel)
            improved = trial_score > best
            history += [
                {
                    "round": round_,
                    "layer": c[0],
                    "head": c[1],
                    "score": scores[c],
                    "chosen": improved and c in trial,
                }
                for c in remaining
            ]
            bar.update(1)
            if not improved:
                break
            chosen, best = trial, trial_score
        bar.close()
        return chosen, history

    def _fit(self, model, objective, select, heldout, runner, per_shard) -> HeadHunter:
        if set(select.tolist()) & set(heldout.tolist()):
            raise ValueError("heldout: the held-out rows overlap the selection rows")
        candidates = list(
            self.candidates
            or [Head(lay, h) for lay in range(model.n_layers) for h in range(model.n_heads)]
        )
        HeadPerturbation(heads=tuple(candidates), method=self.method).check(model)
        orig_sel = objective.clean(model, select)
        orig_held = objective.clean(model, heldout)
        chosen, history = self._search(
            model, objective, select, candidates, runner, per_shard, orig_sel
        )
        layer_rows, layer_held = [], {}
        for layer in range(model.n_layers):
            heads = [Head(layer, h) for h in range(model.n_heads)]
            layer_held[layer] = self._per_prompt(model, objective, heldout, heads, orig_held)
            layer_rows.append(
                {
                    "layer": layer,
                    "select": self._score(model, objective, select, heads, orig_sel),
                    "heldout": mean_score(layer_held[layer]),
                }
            )
        layers = pd.DataFrame(layer_rows)
        best_layer = int(layers.loc[layers["select"].idxmax(), "layer"])
        held = {
            "no_guidance": self._per_prompt(model, objective, heldout, [], orig_held),
            "searched_heads": self._per_prompt(model, objective, heldout, chosen, orig_held),
            "layer_guidance": layer_held[best_layer],
        }
        draws = self._random_draws(candidates, len(chosen))
        frames = [_long(name, -1, heldout, scores) for name, scores in held.items()]
        for i, heads in enumerate(draws):
            scores = self._per_prompt(model, objective, heldout, heads, orig_held)
            frames.append(_long("random_heads", i, heldout, scores))
        heldout_scores = pd.concat(frames, ignore_index=True)
        comparison = {
            "select": {
                "no_guidance": self._score(model, objective, select, [], orig_sel),
                "searched_heads": self._score(model, objective, select, chosen, orig_sel),
                "layer_guidance": float(layers.loc[best_layer, "select"]),
            },
            "heldout": {
                setting: mean_score(torch.tensor(frame["score"].to_numpy()))
                for setting, frame in heldout_scores.groupby("setting", sort=False)
            },
        }
        self.heads_ = tuple(chosen)
        self.best_layer_ = best_layer
        self.history_ = pd.DataFrame(history, columns=["round", "layer", "head", "score", "chosen"])
        self.result_ = HeadSearchResult(
            model_name=model.name,
            objective=objective.name,
            method=self.method,
            u=float(self.u),
            w=float(self.w),
            alpha=float(self.alpha),
            heads=self.heads_,
            best_layer=best_layer,
            history=self.history_,
            layers=layers,
            comparison=comparison,
            inflated=bool(objective.inflated),
            heldout_scores=heldout_scores,
            random_heads=tuple(",".join(str(h) for h in heads) for heads in draws),
        )
        return self

    def _random_draws(self, candidates: list[Head], k: int) -> list[list[Head]]:
        """`n_random` seeded draws of `k` distinct candidates (none when `k` is 0)."""
        if k == 0:
            return []
        gen = torch.Generator().manual_seed(self.seed)
        return [
            [candidates[int(i)] for i in torch.randperm(len(candidates), generator=gen)[:k]]
            for _ in range(self.n_random)
        ]


def _long(setting: str, draw: int, rows: torch.Tensor, scores: torch.Tensor) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "setting": setting,
            "draw": draw,
            "row": rows.tolist(),
            "score": scores.double().tolist(),
        }
    )


def candidate_scores(
    model: Model,
    shard: Shard,
    *,
    hunter: HeadHunter,
    objective: AnyObjective,
    select: torch.Tensor,
    chosen: tuple[Head, ...],
) -> pd.DataFrame:
    """The shard function of a search round: the `select` score of (chosen + candidate) for
    every candidate `[layer, head]` in `shard.items` (columns layer, head, score). What the
    objective reuses (the unguided logits) is recomputed here, on the worker's own model."""
    with torch.no_grad():
        orig = objective.clean(model, select)
        rows = [
            {
                "layer": layer,
                "head": head,
                "score": hunter._score(
                    model, objective, select, [*chosen, Head(layer, head)], orig
                ),
            }
            for layer, head in shard.items
        ]
    return pd.DataFrame(rows, columns=["layer", "head", "score"])


__all__ = [
    "SETTINGS",
    "GenerationObjective",
    "HeadHunter",
    "HeadSearchResult",
    "Objective",
    "bootstrap_mean_interval",
    "candidate_scores",
    "ioi_objective",
    "loss_objective",
    "split_rows",
]
