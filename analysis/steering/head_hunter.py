"""HeadHunter-style search for the heads whose perturbation makes guidance work best.

HeadHunter ("Fine-Grained Perturbation Guidance via Attention Head Selection")
selects heads for perturbed-attention guidance by greedy rounds over candidate heads, scoring
each candidate set by the objective the user cares about. Here, for language models:

- an `Objective` holds token sequences and a per-prompt score from logits (higher is better):
  `ioi_objective(task)` (IOI logit difference or accuracy at the answer position) and
  `loss_objective(model, texts)` (minus the mean next-token loss on text);
- `HeadHunter(...).fit(model, objective, select=rows, heldout=rows)` runs `rounds` greedy rounds
  on the `select` rows: every remaining candidate is scored as (chosen heads + candidate) under
  guided logits (`analysis.steering.guidance.guided_logits`), the `top_k` best are added, and
  the search stops early when a round does not improve the score. The chosen heads, every layer as a
  layer-level guidance baseline (all heads of one layer perturbed; the best layer is picked on
  `select` too) and no guidance are then scored on the separate `heldout` rows;
- `result_` is a `HeadSearchResult`.

`fit(..., executor=...)` scores each round's candidates in shards (`candidates_per_shard`) on
an executor (`workbench.executors`: in process by default, or Ray); every candidate is scored
alone, so the search is the same whatever the sharding.

Caveat: the objective is read off the guided logits before any sampling; the plausibility set
(`alpha > 0`) sets excluded tokens to -inf, which makes logit differences infinite, so the
default here is `alpha = 0` (every token kept).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
import torch
from tqdm.auto import tqdm

from analysis.steering.guidance import guided_logits
from analysis.steering.head_perturbation import HeadPerturbation
from workbench.executors import Executor, Shard, make_shards, resolve_executor, run_sharded
from workbench.heads import Head, parse_heads
from workbench.results import Result

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.model import Model
    from workbench.tasks.ioi import IOITask

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True, eq=False)
class Objective:
    """Token sequences `[batch, pos]` and `score(logits, rows) -> [batch]` (higher is better),
    where `rows` are the indices of the sequences the logits belong to."""

    name: str
    tokens: torch.Tensor  # [batch, pos]
    score: ScoreFn

    @property
    def n_prompts(self) -> int:
        """Number of prompts (rows of `tokens`)."""
        return int(self.tokens.shape[0])


def ioi_objective(task: IOITask, *, metric: str = "logit_diff") -> Objective:
    """IOI logit difference (IO minus S) or accuracy (IO beats S) at each answer position."""
    if metric not in ("logit_diff", "accuracy"):
        raise ValueError(f"metric: unknown IOI metric {metric!r}; choose logit_diff or accuracy")

    def score(logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        batch = torch.arange(len(rows))
        final = logits[batch, task.answer_pos[rows]]  # [batch, d_vocab]
        diff = final[batch, task.io_token[rows]] - final[batch, task.s_token[rows]]  # [batch]
        return diff if metric == "logit_diff" else (diff > 0).float()

    return Objective(name=f"ioi_{metric}", tokens=task.clean_tokens, score=score)


def loss_objective(model: Model, texts: Sequence[str]) -> Objective:
    """Minus the mean next-token cross-entropy of each text (padding excluded)."""
    tokens = model.to_tokens(list(texts)).cpu()  # [batch, pos]
    lengths = torch.tensor([model.to_tokens(t).shape[1] for t in texts])  # [batch]

    def score(logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        log_p = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # [batch, pos-1, d_vocab]
        target = tokens[rows, 1:]  # [batch, pos-1]
        nll = -log_p.gather(-1, target[..., None])[..., 0]  # [batch, pos-1]
        real = torch.arange(target.shape[1])[None] < (lengths[rows] - 1)[:, None]  # [batch, pos-1]
        return -(nll * real).sum(1) / real.sum(1).clamp_min(1)

    return Objective(name="neg_loss", tokens=tokens, score=score)


def split_rows(n: int, *, heldout_fraction: float = 0.5, seed: int = 0):
    """A seeded random split of `range(n)` into (select, heldout) index tensors."""
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction: must be in (0, 1), got {heldout_fraction}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_heldout = max(1, round(n * heldout_fraction))
    if n - n_heldout < 1:
        raise ValueError(f"n: need at least 2 prompts to split, got {n}")
    return order[n_heldout:].sort().values, order[:n_heldout].sort().values


@dataclass(frozen=True)
class HeadSearchResult(Result):
    """Greedy search history, layer baselines and held-out comparison of guidance settings."""

    kind: ClassVar[str] = "head_search"
    plot_kinds: ClassVar[tuple[str, ...]] = ("comparison", "history")
    model_name: str
    objective: str
    method: str
    u: float
    w: float
    alpha: float
    heads: tuple[Head, ...]  # stored as [layer, head] pairs, read back as `Head`s
    best_layer: int
    history: pd.DataFrame  # round, layer, head, score (select split), chosen
    layers: pd.DataFrame  # layer, select, heldout
    comparison: dict = field(default_factory=dict)  # {split: {setting: mean score}}

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", tuple(Head.parse(h) for h in self.heads))

    def to_frame(self) -> pd.DataFrame:
        return self.history

    def tables(self) -> dict[str, pd.DataFrame]:
        rows = [
            {"split": split, "setting": setting, "score": score}
            for split, scores in self.comparison.items()
            for setting, score in scores.items()
        ]
        return {"main": self.history, "layers": self.layers, "comparison": pd.DataFrame(rows)}

    def plot(self, kind: str | None = None, **kwargs: Any) -> go.Figure:
        """`comparison` (default): held-out score per setting; `history`: candidate scores."""
        import plotly.express as px

        kind = kind or "comparison"
        if kind == "comparison":
            frame = self.tables()["comparison"]
            fig = px.bar(frame, x="setting", y="score", color="split", barmode="group")
        elif kind == "history":
            frame = self.history.assign(
                head_name=lambda d: [
                    str(Head(layer, head))
                    for layer, head in zip(d["layer"], d["head"], strict=True)
                ]
            )
            fig = px.scatter(frame, x="head_name", y="score", color="round", symbol="chosen")
        else:
            raise ValueError(f"kind: unknown plot {kind!r}; choose comparison or history")
        fig.update_layout(title=f"{self.model_name}: head search on {self.objective}", **kwargs)
        return fig


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
        progress: bool = False,
    ) -> None:
        if rounds < 1 or top_k < 1:
            raise ValueError(f"rounds/top_k: must be >= 1, got rounds={rounds}, top_k={top_k}")
        HeadPerturbation(heads=((0, 0),), method=method, u=u)  # validates method and u
        self.method, self.u, self.w, self.alpha = method, u, w, alpha
        candidates = None if candidates is None else parse_heads(candidates)
        self.rounds, self.top_k, self.candidates, self.progress = (
            rounds,
            top_k,
            candidates,
            progress,
        )

    def _score(self, model, objective, rows, heads, orig) -> float:
        tokens = objective.tokens[rows]
        if not heads:
            return float(objective.score(orig.cpu(), rows).mean())
        perturbation = HeadPerturbation(heads=tuple(heads), method=self.method, u=self.u)
        logits = guided_logits(model, tokens, perturbation, w=self.w, alpha=self.alpha, orig=orig)
        return float(objective.score(logits.cpu(), rows).mean())

    @torch.no_grad()
    def fit(
        self,
        model: Model,
        objective: Objective,
        *,
        select: torch.Tensor,
        heldout: torch.Tensor,
        executor: str | Executor | None = "inprocess",
        address: str | None = None,
        candidates_per_shard: int | None = None,
    ) -> HeadHunter:
        """Run the greedy search on `select` and compare the settings on `heldout`.

        executor: "inprocess" (default), "ray" or an `Executor`: each round's candidates are
            cut into shards of `candidates_per_shard` (default: one shard per round) that are
            scored there; the scores, and so the search, do not depend on it.
        address: Ray cluster address for executor="ray" (default `RAY_ADDRESS`, else local).
        """
        if candidates_per_shard is not None and candidates_per_shard < 1:
            raise ValueError(f"candidates_per_shard: must be >= 1, got {candidates_per_shard}")
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

    def _fit(self, model, objective, select, heldout, runner, per_shard) -> HeadHunter:
        if set(select.tolist()) & set(heldout.tolist()):
            raise ValueError("heldout: the held-out rows overlap the selection rows")
        candidates = list(
            self.candidates
            or [Head(lay, h) for lay in range(model.n_layers) for h in range(model.n_heads)]
        )
        HeadPerturbation(heads=tuple(candidates), method=self.method).check(model)
        orig_sel = model(objective.tokens[select].to(model.device))  # [batch, pos, d_vocab]
        orig_held = model(objective.tokens[heldout].to(model.device))
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
        layer_rows = []
        for layer in range(model.n_layers):
            heads = [Head(layer, h) for h in range(model.n_heads)]
            layer_rows.append(
                {
                    "layer": layer,
                    "select": self._score(model, objective, select, heads, orig_sel),
                    "heldout": self._score(model, objective, heldout, heads, orig_held),
                }
            )
        layers = pd.DataFrame(layer_rows)
        best_layer = int(layers.loc[layers["select"].idxmax(), "layer"])
        comparison = {}
        for split, rows, orig in (("select", select, orig_sel), ("heldout", heldout, orig_held)):
            comparison[split] = {
                "no_guidance": self._score(model, objective, rows, [], orig),
                "searched_heads": self._score(model, objective, rows, chosen, orig),
                "layer_guidance": float(layers.loc[best_layer, split]),
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
        )
        return self


def candidate_scores(
    model: Model,
    shard: Shard,
    *,
    hunter: HeadHunter,
    objective: Objective,
    select: torch.Tensor,
    chosen: tuple[Head, ...],
) -> pd.DataFrame:
    """The shard function of a search round: the `select` score of (chosen + candidate) for
    every candidate `[layer, head]` in `shard.items` (columns layer, head, score). The unguided
    logits are recomputed here, on the worker's own model."""
    with torch.no_grad():
        orig = model(objective.tokens[select].to(model.device))  # [batch, pos, d_vocab]
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
    "HeadHunter",
    "HeadSearchResult",
    "Objective",
    "candidate_scores",
    "ioi_objective",
    "loss_objective",
    "split_rows",
]
