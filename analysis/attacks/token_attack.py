"""GCG-style adversarial token attacks on attention models (decoders and encoders).

Carries the idea of "Fool the Hydra" (attacks that also dissipate a transformer's attention)
over to language models with Greedy Coordinate Gradient search (Zou et al. 2023); the
dissipation terms are the workbench's own, not the paper's loss (see `objectives`). Per prompt
and step:

1. one forward/backward through one-hot input tokens gives the gradient of the objective with
   respect to every token at every adversarial position;
2. the `top_k` tokens with the most negative gradient are the candidates of each position;
3. `batch_size` random single-token swaps (a position, one of its candidates) are drawn with
   the prompt's own generator, seeded by (seed, prompt index); swaps whose text re-tokenises
   differently are dropped;
4. the batch is evaluated exactly and the best swap is kept when it lowers the loss.

The attack stops at success or after `steps` steps. Only the adversarial span is ever edited,
and it is explicit: for decoders `n_adv` tokens inserted right after BOS (an adversarial
prefix), for encoders `n_adv` tokens before the final [SEP] (a suffix). Prompt tokens, names
included, are never touched. By default (`ban_names=True`) every token that spells a name of
the IOI name list is banned from the span (`analysis.attacks.filters`), so an attack on IOI
cannot win by inserting a competing name; `ban_names=False` allows them (the IO and S tokens of
the prompt are then still allowed too). Objectives and the attention-dissipation term are in
`analysis.attacks.objectives`; one span shared by many prompts is `analysis.attacks.universal`
and the random-span baseline `analysis.attacks.baseline`.

`TokenAttack(...).fit(model, prompts)` takes an IOITask (decoder objectives), (prompt, target)
pairs or plain prompts (`raise_loss` / `dissipation` on any decoder), or a list of sentences
(encoder `embedding` objective) and leaves an `AttackResult` in `result_`: success
rate, steps used, adversarial text, and the targeted heads' attention statistics (entropy,
uniform entropy, sink, max prob) before and after on the prompt's own query rows.

Prompts are independent, so `fit(..., executor=...)` cuts them into shards
(`prompts_per_shard`) that run in process (default) or on Ray (`workbench.executors`), with the
same results whatever the sharding.

Caveats: prompts are attacked one at a time (see `UniversalAttack` for one span over many);
the IOI objectives read the answer position of
the prompt (shifted by the prefix), so the prefix changes the context, not the question.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
import torch
from tqdm.auto import tqdm

from analysis.attacks.filters import allowed_tokens, check_ban_names, check_count
from analysis.attacks.objectives import (
    AttackCase,
    ObjectiveSpec,
    decoder_cases,
    encoder_cases,
    head_statistics,
    init_token,
    run_records,
    text_cases,
)
from workbench.executors import Executor, Shard, digest, make_shards, run_sharded
from workbench.heads import Head
from workbench.results import Result

PER_PROMPT_JSON = ("before", "after", "curve", "final_tokens")  # shard-table columns, as JSON
STAT_COLUMNS = ["index", "stage", "layer", "head", "entropy", "uniform_entropy", "sink", "max_prob"]

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.model import Model


@dataclass(frozen=True)
class AttackResult(Result):
    """Per-prompt outcomes (`to_frame()`, `prompts`) and the targeted heads' attention
    statistics before and after (`head_stats`); `curves` holds each prompt's loss per step;
    `baseline`, when the caller added it, the random-span baseline of the same prompts
    (`analysis.attacks.baseline.random_baseline` rows)."""

    kind: ClassVar[str] = "attack"
    plot_kinds: ClassVar[tuple[str, ...]] = ("metric", "entropy", "loss")
    model_name: str
    objective: str
    heads: tuple[Head, ...]  # stored as [layer, head] pairs, read back as `Head`s
    config: dict
    prompts: pd.DataFrame  # index, success, steps_used, loss/metric before and after, texts
    head_stats: pd.DataFrame  # index, stage, layer, head, entropy, uniform_entropy, sink, max_prob
    curves: dict = field(default_factory=dict)  # {prompt index (str): [loss per step]}
    baseline: pd.DataFrame | None = None  # random_baseline rows of the same prompts, or None

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", tuple(Head.parse(h) for h in self.heads))
        base = self.baseline
        if base is not None and not (
            isinstance(base, pd.DataFrame)
            and {"index", "rate", "any_success"} <= set(base.columns)
            and base["rate"].between(0, 1).all()
        ):
            raise ValueError("baseline: need a random_baseline table (index, rate, any_success)")

    @property
    def success_rate(self) -> float:
        """Share of the prompts on which the attack succeeded (0..1)."""
        return float(self.prompts["success"].mean())

    @property
    def mean_steps(self) -> float:
        """Mean steps used by the successful prompts (NaN when none succeeded)."""
        return float(self.prompts.loc[self.prompts["success"], "steps_used"].mean())

    def entropy_progress(self) -> float:
        """How far the targeted heads' mean entropy moved from before to uniform (1 = uniform)."""
        table = self.head_stats.groupby("stage")[["entropy", "uniform_entropy"]].mean()
        before, after = table.loc["before"], table.loc["after"]
        gap = before["uniform_entropy"] - before["entropy"]
        return float((after["entropy"] - before["entropy"]) / gap) if gap > 0 else float("nan")

    def to_frame(self) -> pd.DataFrame:
        return self.prompts

    def tables(self) -> dict[str, pd.DataFrame]:
        tables = {"main": self.prompts, "head_stats": self.head_stats}
        if self.baseline is not None:
            tables["baseline"] = self.baseline
        return tables

    def plot(self, kind: str | None = None, **kwargs: Any) -> go.Figure:
        """`metric` (default): task metric before/after per prompt; `entropy`: targeted heads'
        entropy before/after; `loss`: loss curves per prompt."""
        import plotly.express as px
        import plotly.graph_objects as go

        kind = kind or "metric"
        if kind == "metric":
            frame = self.prompts.melt(
                id_vars="index", value_vars=["metric_before", "metric_after"], var_name="stage"
            )
            fig = px.bar(frame, x="index", y="value", color="stage", barmode="group")
        elif kind == "entropy":
            frame = self.head_stats.assign(
                head_name=lambda d: [
                    str(Head(layer, head))
                    for layer, head in zip(d["layer"], d["head"], strict=True)
                ]
            )
            frame = frame.groupby(["head_name", "stage"], as_index=False)[
                ["entropy", "uniform_entropy"]
            ].mean()
            fig = px.bar(frame, x="head_name", y="entropy", color="stage", barmode="group")
            uniform = frame.groupby("head_name", as_index=False)["uniform_entropy"].mean()
            fig.add_scatter(
                x=uniform["head_name"], y=uniform["uniform_entropy"], mode="markers", name="uniform"
            )
        elif kind == "loss":
            fig = go.Figure(
                [go.Scatter(y=curve, name=f"prompt {key}") for key, curve in self.curves.items()]
            )
            fig.update_layout(xaxis_title="step", yaxis_title="loss")
        else:
            raise ValueError(f"kind: unknown plot {kind!r}; choose metric, entropy or loss")
        fig.update_layout(title=f"{self.model_name}: {self.objective} attack", **kwargs)
        return fig


class TokenAttack:
    """GCG token attack (see module docstring). Learned: `result_`, `cases_` (the prepared
    prompts) and `final_tokens_` (each prompt's tokens after the attack)."""

    def __init__(
        self,
        *,
        objective: str = "flip",
        heads=(),
        dissipation_weight: float = 0.0,
        dissipation: str = "entropy",
        steps: int = 100,
        n_adv: int = 5,
        top_k: int = 32,
        batch_size: int = 64,
        init: str | None = None,
        ban_names: bool = True,
        require_dissipation: bool = False,
        query: str = "answer",
        cosine_threshold: float = 0.5,
        margin: float = 1.0,
        seed: int = 0,
        progress: bool = False,
    ) -> None:
        self.spec = ObjectiveSpec(
            name=objective,
            heads=heads,
            dissipation_weight=dissipation_weight,
            dissipation=dissipation,
            cosine_threshold=cosine_threshold,
            margin=margin,
        )
        for name, value in (
            ("steps", steps),
            ("n_adv", n_adv),
            ("top_k", top_k),
            ("batch_size", batch_size),
        ):
            check_count(name, value)
        check_count("seed", seed, 0)
        self.steps, self.n_adv, self.top_k, self.batch_size = steps, n_adv, top_k, batch_size
        self.ban_names = check_ban_names(ban_names)
        self.init, self.seed, self.progress = init, seed, progress
        if require_dissipation and not self.spec.heads:
            raise ValueError("require_dissipation: needs heads to dissipate")
        self.require_dissipation = require_dissipation
        if query not in ("answer", "prompt"):
            raise ValueError(f"query: unknown query rows {query!r}; choose answer or prompt")
        self.query = query

    def _cases(self, model: Model, prompts, rows) -> list[AttackCase]:
        if self.spec.name == "embedding":
            sentences = list(prompts) if rows is None else [prompts[i] for i in rows]
            init = init_token(model, self.init or "the")
            return encoder_cases(model, sentences, n_adv=self.n_adv, init_token=init)
        init = init_token(model, self.init or " .")
        if not hasattr(prompts, "io_token"):
            if self.spec.name == "flip":
                raise ValueError(
                    "prompts: objective 'flip' needs an IOI task (make_task('ioi', model))"
                )
            pairs = list(prompts) if rows is None else [prompts[i] for i in rows]
            cases = text_cases(model, pairs, n_adv=self.n_adv, init_token=init, query=self.query)
            if self.spec.name == "raise_loss" and any(c.target_token < 0 for c in cases):
                raise ValueError("prompts: objective 'raise_loss' needs (prompt, target) pairs")
            return cases
        rows = range(prompts.n_prompts) if rows is None else rows
        return decoder_cases(
            prompts,
            rows,
            n_adv=self.n_adv,
            init_token=init,
            ban_names=self.ban_names,
            query=self.query,
        )

    def fit(
        self,
        model: Model,
        prompts,
        *,
        rows=None,
        executor: str | Executor | None = "inprocess",
        address: str | None = None,
        prompts_per_shard: int | None = None,
    ) -> TokenAttack:
        """Attack every prompt (or those in `rows`) of: an IOI task (any decoder objective), a
        list of (prompt, target) pairs (`raise_loss`) or prompts (`dissipation`) for any decoder,
        or a list of sentences (`embedding`, encoders).

        executor: "inprocess" (default), "ray" or an `Executor`: the prompts are cut into shards
            of `prompts_per_shard` (default: one shard) that run there; every prompt draws from
            its own generator seeded by (seed, prompt index), so results do not depend on it.
        address: Ray cluster address for executor="ray" (default `RAY_ADDRESS`, else local).
        """
        self.spec.check(model)
        self.cases_ = self._cases(model, prompts, rows)
        settings = copy.copy(self)  # what the workers need: no learned attributes
        settings.__dict__ = {k: v for k, v in vars(self).items() if not k.endswith("_")}
        config = {
            "steps": self.steps,
            "n_adv": self.n_adv,
            "top_k": self.top_k,
            "batch_size": self.batch_size,
            "dissipation_weight": self.spec.dissipation_weight,
            "dissipation": self.spec.dissipation,
            "ban_names": self.ban_names,
            "require_dissipation": self.require_dissipation,
            "query": self.query,
            "seed": self.seed,
        }
        key = {
            **config,
            "model": model.name,
            "objective": self.spec.name,
            "heads": [list(h) for h in self.spec.heads],
            "prompts": [case.index for case in self.cases_],
        }
        size = len(self.cases_) if prompts_per_shard is None else prompts_per_shard
        shards = make_shards(range(len(self.cases_)), size=size, key=key)
        one_shard = len(shards) == 1
        shard_fn = functools.partial(
            attack_shard, attack=settings, cases=self.cases_, progress=self.progress and one_shard
        )
        outcome = run_sharded(
            shard_fn,
            shards,
            model=model,
            executor=executor,
            address=address,
            progress=self.progress and not one_shard,
            desc="attack",
        )
        table = pd.concat(outcome.frames, ignore_index=True)
        stats, curves = [], {}
        for row in table.itertuples():
            for stage in ("before", "after"):
                stats += [
                    {"index": row.index, "stage": stage, **s}
                    for s in json.loads(getattr(row, stage))
                ]
            curves[str(row.index)] = json.loads(row.curve)
        self.final_tokens_ = [torch.tensor(json.loads(t)) for t in table["final_tokens"]]
        self.result_ = AttackResult(
            model_name=model.name,
            objective=self.spec.name,
            heads=self.spec.heads,
            config=config,
            prompts=table.drop(columns=[*PER_PROMPT_JSON]),
            head_stats=pd.DataFrame(stats, columns=STAT_COLUMNS),
            curves=curves,
        )
        return self

    def _allowed_tokens(self, model: Model) -> torch.Tensor:
        return allowed_tokens(model, ban_names=self.ban_names)  # [d_vocab]

    @torch.no_grad()
    def _evaluate(self, model: Model, case: AttackCase, tokens: torch.Tensor):
        """(loss [batch], success [batch], patterns) of candidate sequences `[batch, pos]`."""
        output, patterns = run_records(
            model,
            tokens.to(model.device),
            layers=self.spec.layers,
            readout=self.spec.readout(model),
        )
        loss = self.spec.loss(output, patterns, case).cpu()
        success = (
            self.spec.task_success(output, case).cpu() if self.spec.name != "dissipation" else None
        )
        return loss, success, output, patterns

    def token_gradient(self, model: Model, case: AttackCase, tokens: torch.Tensor) -> torch.Tensor:
        """d loss / d one-hot input at the adversarial positions -> `[n_adv, d_vocab]`."""
        one_hot = torch.nn.functional.one_hot(tokens[None], model.d_vocab).float()
        one_hot = one_hot.to(model.device).requires_grad_(True)  # [1, pos, d_vocab]
        with torch.enable_grad():
            output, patterns = run_records(
                model,
                tokens[None].to(model.device),
                layers=self.spec.layers,
                one_hot=one_hot,
                readout=self.spec.readout(model),
            )
            loss = self.spec.loss(output, patterns, case).sum()
            (grad,) = torch.autograd.grad(loss, one_hot)
        return grad[0, case.adv_positions].cpu()  # [n_adv, d_vocab]

    def _candidates(self, model, case, tokens, grad, allowed, generator) -> torch.Tensor:
        grad = grad.masked_fill(~allowed, float("inf"))  # [n_adv, d_vocab]
        if case.excluded_tokens:
            grad[:, list(case.excluded_tokens)] = float("inf")
        top = (-grad).topk(min(self.top_k, int(allowed.sum())), dim=-1).indices  # [n_adv, top_k]
        slot = torch.randint(
            len(case.adv_positions), (self.batch_size,), generator=generator
        )  # [batch]
        pick = torch.randint(top.shape[1], (self.batch_size,), generator=generator)  # [batch]
        batch = tokens.repeat(self.batch_size, 1)  # [batch, pos]
        batch[torch.arange(self.batch_size), case.adv_positions[slot]] = top[slot, pick]
        batch = torch.unique(batch, dim=0)
        batch = batch[(batch != tokens).any(1)]  # drop no-op swaps
        return batch[[retokenises_same(model, row) for row in batch]] if len(batch) else batch

    def _attack_one(self, model: Model, case: AttackCase, allowed, generator):
        tokens = case.tokens.clone()  # [pos]
        loss, success, output, patterns = self._evaluate(model, case, tokens[None])
        before = head_statistics(patterns, self.spec.heads, case, causal=model.is_causal)
        metric_before = float(self.spec.task_loss(output, case, clamp=False)[0])
        first_loss, best, steps_used, curve = float(loss[0]), float(loss[0]), 0, [float(loss[0])]
        after = before
        done = self._done(success, before, after)
        while not done and steps_used < self.steps:
            steps_used += 1
            grad = self.token_gradient(model, case, tokens)
            batch = self._candidates(model, case, tokens, grad, allowed, generator)
            if len(batch):
                losses, successes, outputs, batch_patterns = self._evaluate(model, case, batch)
                i = int(losses.argmin())
                if float(losses[i]) < best:
                    tokens, best = batch[i].clone(), float(losses[i])
                    success = None if successes is None else successes[i : i + 1]
                    output = outputs[i : i + 1]
                    patterns = {layer: p[i : i + 1] for layer, p in batch_patterns.items()}
                    after = head_statistics(patterns, self.spec.heads, case, causal=model.is_causal)
                    done = self._done(success, before, after)
            curve.append(best)
        outcome = {
            "index": case.index,
            "success": bool(done),
            "steps_used": steps_used,
            "loss_before": first_loss,
            "loss_after": best,
            "metric_before": metric_before,
            "metric_after": float(self.spec.task_loss(output, case, clamp=False)[0]),
            "adversarial": model.tokenizer.decode(tokens[case.adv_positions].tolist()),
            "text_after": model.tokenizer.decode(tokens.tolist(), skip_special_tokens=True),
        }
        return outcome, before, after, curve, tokens

    def _done(self, success, before: list[dict], after: list[dict]) -> bool:
        """Task success; for `dissipation` (or with `require_dissipation`) the targeted heads'
        mean entropy must also have moved at least half-way to uniform."""
        if success is not None and not (success[0] and self.require_dissipation):
            return bool(success[0])
        h0 = sum(s["entropy"] for s in before) / len(before)
        h1 = sum(s["entropy"] for s in after) / len(after)
        hu = sum(s["uniform_entropy"] for s in before) / len(before)
        return hu > h0 and (h1 - h0) >= 0.5 * (hu - h0)


def prompt_seed(seed: int, index: int) -> int:
    """The seed of prompt `index`'s candidate sampling: a stable function of (seed, index)."""
    return int(digest(["attack", int(seed), int(index)]), 16) & ((1 << 63) - 1)


def attack_shard(
    model: Model, shard: Shard, *, attack: TokenAttack, cases: list[AttackCase], progress: bool
) -> pd.DataFrame:
    """The shard function of `TokenAttack.fit`: attack `cases[i]` for every i in `shard.items`,
    each with its own generator (`prompt_seed`). One row per prompt: the outcome columns, and
    as JSON text the head statistics `before` / `after`, the loss `curve` and `final_tokens`."""
    allowed = attack._allowed_tokens(model)
    rows = []
    for position in tqdm(shard.items, disable=not progress, desc="attack"):
        case = cases[position]
        generator = torch.Generator().manual_seed(prompt_seed(attack.seed, case.index))
        outcome, before, after, curve, tokens = attack._attack_one(model, case, allowed, generator)
        rows.append(
            {
                **outcome,
                "before": json.dumps(before),
                "after": json.dumps(after),
                "curve": json.dumps(curve),
                "final_tokens": json.dumps(tokens.tolist()),
            }
        )
    return pd.DataFrame(rows)


def retokenises_same(model: Model, tokens: torch.Tensor) -> bool:
    """Whether decoding `tokens` `[pos]` to text and tokenising it again gives the same ids."""
    text = model.tokenizer.decode(tokens.tolist(), skip_special_tokens=True)
    if not text.strip():
        return False
    again = model.to_tokens(text)[0].cpu()  # [pos]
    return again.shape == tokens.shape and bool((again == tokens).all())


__all__ = ["AttackResult", "TokenAttack", "attack_shard", "prompt_seed", "retokenises_same"]
