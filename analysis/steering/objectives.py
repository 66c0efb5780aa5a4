"""Objectives for the head search, measured on the GUIDED output, and a registry by name.

HeadHunter (arXiv 2506.10978) scores a set of perturbed heads by a user objective evaluated on
what guidance produces. An objective here holds prompts (`tokens` `[batch, pos]`) and turns
"guide with this perturbation at scale `w`" into one score per prompt, higher is better:

- `Objective(name, tokens, score)`: a score of the guided LOGITS `[batch, pos, d_vocab]`
  (teacher-forced, one pair of forwards); `score(logits, rows) -> [batch]`.
- `GenerationObjective(name, tokens, score, max_new_tokens)`: greedy guided decoding of
  `max_new_tokens` tokens after every prompt (`guided_generate`), then
  `score(model, prompts, generated, rows) -> [batch]` on the generated tokens.

Both expose `scores(model, rows, perturbation, *, w, alpha, orig=None) -> [batch]`
(`perturbation=None` or `w=0` is plain decoding). `inflated` marks objectives that guidance
raises by construction: the guided IO-S logit difference is `LD + w (LD - LD_pert)`, so any
perturbation that hurts the task "improves" it whether or not the output gets better.

The registry (`OBJECTIVES`, `make_objective(name, model, **options)`) builds the ones the
workbench ships; unknown names or options are a `ValueError` naming them. Text metrics are
defined in `analysis.steering.text_metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from analysis.steering.guidance import guided_generate, guided_logits
from analysis.steering.text_metrics import distinct_n, plain_nll, seq_repetition

if TYPE_CHECKING:
    from analysis.steering.head_perturbation import HeadPerturbation
    from workbench.model import Model
    from workbench.tasks.ioi import IOITask

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
GenScoreFn = Callable[["Model", torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True, eq=False)
class Objective:
    """Token sequences `[batch, pos]` and `score(logits, rows) -> [batch]` of the guided logits
    (higher is better); `rows` are the indices of the sequences the logits belong to."""

    name: str
    tokens: torch.Tensor  # [batch, pos]
    score: ScoreFn
    inflated: bool = False  # guidance raises it by construction (see module docstring)
    needs_alpha_zero: bool = False  # -inf outside the plausibility set would break the score

    @property
    def n_prompts(self) -> int:
        """Number of prompts (rows of `tokens`)."""
        return int(self.tokens.shape[0])

    def clean(self, model: Model, rows: torch.Tensor) -> torch.Tensor:
        """What `scores` may reuse across perturbations: the clean logits of `rows`."""
        return model(self.tokens[rows].to(model.device))  # [batch, pos, d_vocab]

    @torch.no_grad()
    def scores(
        self,
        model: Model,
        rows: torch.Tensor,
        perturbation: HeadPerturbation | None,
        *,
        w: float,
        alpha: float,
        orig: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`[batch]` scores of guidance with `perturbation` (None: plain model) on `rows`."""
        if self.needs_alpha_zero and alpha > 0:
            raise ValueError(
                f"alpha: objective {self.name} needs alpha = 0 (tokens outside the "
                f"plausibility set get log-probability -inf), got {alpha}"
            )
        orig = self.clean(model, rows) if orig is None else orig  # [batch, pos, d_vocab]
        if perturbation is None or w == 0:
            return self.score(orig.cpu(), rows)
        tokens = self.tokens[rows]
        logits = guided_logits(model, tokens, perturbation, w=w, alpha=alpha, orig=orig)
        return self.score(logits.cpu(), rows)


@dataclass(frozen=True, eq=False)
class GenerationObjective:
    """Equal-length prompts `[batch, pos]`, greedy guided decoding of `max_new_tokens` tokens,
    and `score(model, prompts, generated, rows) -> [batch]` (higher is better)."""

    name: str
    tokens: torch.Tensor  # [batch, pos]
    score: GenScoreFn
    max_new_tokens: int = 16
    inflated: bool = False
    needs_alpha_zero: bool = False

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens: must be >= 1, got {self.max_new_tokens}")

    @property
    def n_prompts(self) -> int:
        """Number of prompts (rows of `tokens`)."""
        return int(self.tokens.shape[0])

    def clean(self, model: Model, rows: torch.Tensor) -> None:
        """Nothing to reuse: every perturbation decodes its own continuation."""
        return None

    def generate(
        self, model: Model, rows: torch.Tensor, perturbation, *, w: float, alpha: float
    ) -> torch.Tensor:
        """`[batch, max_new_tokens]` greedy (guided) continuations of `rows`."""
        return guided_generate(
            model,
            self.tokens[rows],
            perturbation,
            w=w,
            alpha=alpha,
            max_new_tokens=self.max_new_tokens,
        )

    @torch.no_grad()
    def scores(
        self,
        model: Model,
        rows: torch.Tensor,
        perturbation: HeadPerturbation | None,
        *,
        w: float,
        alpha: float,
        orig: Any = None,
    ) -> torch.Tensor:
        """`[batch]` scores of the continuations guided with `perturbation` (None: plain)."""
        generated = self.generate(model, rows, perturbation, w=w, alpha=alpha)
        return self.score(model, self.tokens[rows], generated, rows)


AnyObjective = Objective | GenerationObjective


def ioi_objective(task: IOITask, *, metric: str = "logit_diff") -> Objective:
    """IOI scores of the guided logits at each answer position:

    - `logit_diff`: guided logit(IO) - logit(S); INFLATED by construction (module docstring);
    - `accuracy`: IO beats S in the guided logits (pairwise);
    - `top1`: the guided greedy answer (argmax over the whole vocabulary) is IO;
    - `logprob`: log-probability of IO under the guided distribution (needs alpha = 0).
    """
    metrics = ("logit_diff", "accuracy", "top1", "logprob")
    if metric not in metrics:
        raise ValueError(f"metric: unknown IOI metric {metric!r}; choose from {metrics}")

    def score(logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        batch = torch.arange(len(rows))
        final = logits[batch, task.answer_pos[rows]].float()  # [batch, d_vocab]
        io = task.io_token[rows]  # [batch]
        if metric == "top1":
            return (final.argmax(-1) == io).float()
        if metric == "logprob":
            return torch.log_softmax(final, dim=-1)[batch, io]
        diff = final[batch, io] - final[batch, task.s_token[rows]]  # [batch]
        return diff if metric == "logit_diff" else (diff > 0).float()

    return Objective(
        name=f"ioi_{metric}",
        tokens=task.clean_tokens,
        score=score,
        inflated=metric == "logit_diff",
        needs_alpha_zero=metric == "logprob",
    )


def loss_objective(model: Model, texts: Sequence[str]) -> Objective:
    """Minus the mean next-token cross-entropy of each text under the GUIDED logits (padding
    excluded). Needs alpha = 0 (excluded tokens would have infinite loss)."""
    tokens = model.to_tokens(list(texts)).cpu()  # [batch, pos]
    lengths = torch.tensor([model.to_tokens(t).shape[1] for t in texts])  # [batch]

    def score(logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        log_p = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # [batch, pos-1, d_vocab]
        target = tokens[rows, 1:]  # [batch, pos-1]
        nll = -log_p.gather(-1, target[..., None])[..., 0]  # [batch, pos-1]
        real = torch.arange(target.shape[1])[None] < (lengths[rows] - 1)[:, None]  # [batch, pos-1]
        return -(nll * real).sum(1) / real.sum(1).clamp_min(1)

    return Objective(name="neg_loss", tokens=tokens, score=score, needs_alpha_zero=True)


def induction_copy_objective(
    model: Model, *, n: int = 64, seq_len: int = 24, prefix: int = 4, seed: int = 0
) -> GenerationObjective:
    """Free-running copy of repeated random tokens: prompt `BOS + r + r[:prefix]`, greedy
    guided decoding of the remaining `seq_len - prefix` tokens; score = share of them equal to
    `r[prefix:]` (the task accuracy of guided decoding)."""
    from workbench.tasks.induction import random_repeated_tokens

    if not 1 <= prefix < seq_len:
        raise ValueError(f"prefix: need 1 <= prefix < seq_len={seq_len}, got {prefix}")
    clean, _ = random_repeated_tokens(model, n=n, seq_len=seq_len, seed=seed)  # [n, 1+2*seq_len]
    cut = 1 + seq_len + prefix
    prompts, targets = clean[:, :cut], clean[:, cut:]  # [n, cut], [n, seq_len - prefix]

    def score(model, prompts, generated, rows) -> torch.Tensor:
        return (generated.cpu() == targets[rows]).float().mean(-1)  # [batch]

    return GenerationObjective(
        name="induction_copy", tokens=prompts, score=score, max_new_tokens=seq_len - prefix
    )


def text_prompts(model: Model, *, n: int, prompt_len: int, seed: int) -> torch.Tensor:
    """`[n, prompt_len]` windows (BOS + prompt_len-1 tokens) of the HELD-OUT Python stdlib
    files (the zoo decoders' text corpus; `workbench.zoo.corpus`), seeded."""
    from workbench.zoo import corpus

    _, held_out = corpus.stdlib_texts()
    stream = corpus.token_stream(model.tokenizer, held_out)
    gen = torch.Generator().manual_seed(seed)
    bos = model.tokenizer.bos_token_id
    if bos is None:
        raise ValueError(f"model: {model.name}'s tokenizer has no BOS token for text prompts")
    return corpus.text_windows(stream, batch=n, length=prompt_len, bos=bos, gen=gen)


TEXT_METRICS = ("repetition", "distinct_2", "plain_nll")


def text_objective(
    model: Model,
    *,
    metric: str = "repetition",
    n: int = 48,
    prompt_len: int = 24,
    max_new_tokens: int = 24,
    seed: int = 0,
) -> GenerationObjective:
    """Quality of free-running guided text after held-out stdlib prompts (see
    `analysis.steering.text_metrics`); every score is oriented higher-is-better:
    `repetition` -> minus seq-rep-4, `distinct_2` -> distinct-2, `plain_nll` -> minus the mean
    NLL of the continuation under the unguided model."""
    if metric not in TEXT_METRICS:
        raise ValueError(f"metric: unknown text metric {metric!r}; choose from {TEXT_METRICS}")
    if prompt_len < 2 or prompt_len + max_new_tokens > model.n_ctx:
        raise ValueError(
            f"prompt_len: need 2 <= prompt_len and prompt_len + max_new_tokens <= "
            f"{model.n_ctx}, got {prompt_len} + {max_new_tokens}"
        )
    prompts = text_prompts(model, n=n, prompt_len=prompt_len, seed=seed)

    def score(model, prompts, generated, rows) -> torch.Tensor:
        return text_scores(model, prompts, generated)[metric]

    return GenerationObjective(
        name=f"text_{metric}", tokens=prompts, score=score, max_new_tokens=max_new_tokens
    )


def text_scores(
    model: Model, prompts: torch.Tensor, generated: torch.Tensor
) -> dict[str, torch.Tensor]:
    """All text metrics of `generated` `[batch, new]`, higher is better (see `text_objective`)."""
    return {
        "repetition": -seq_repetition(generated, n=4),
        "distinct_2": distinct_n(generated, n=2),
        "plain_nll": -plain_nll(model, prompts, generated),
    }


def _ioi(metric: str) -> Callable[..., Objective]:
    def build(model: Model, *, n: int = 64, seed: int = 0) -> Objective:
        from workbench.tasks import make_task

        return ioi_objective(make_task("ioi", model, n=n, seed=seed), metric=metric)

    return build


def _text(metric: str) -> Callable[..., GenerationObjective]:
    def build(model: Model, **options: Any) -> GenerationObjective:
        return text_objective(model, metric=metric, **options)

    return build


@dataclass(frozen=True)
class ObjectiveSpec:
    """A registered objective: its builder `(model, **options)`, the options it takes, what
    it measures, and whether guidance inflates it by construction."""

    build: Callable[..., AnyObjective]
    options: tuple[str, ...]
    description: str
    inflated: bool = False


OBJECTIVES: dict[str, ObjectiveSpec] = {
    "ioi_logit_diff": ObjectiveSpec(
        _ioi("logit_diff"),
        ("n", "seed"),
        "guided IO-S logit difference (INFLATED by construction: LD + w (LD - LD_pert))",
        inflated=True,
    ),
    "ioi_top1": ObjectiveSpec(
        _ioi("top1"), ("n", "seed"), "guided greedy answer is IO (accuracy over the vocabulary)"
    ),
    "ioi_logprob": ObjectiveSpec(
        _ioi("logprob"), ("n", "seed"), "log p(IO) under the guided distribution (alpha = 0)"
    ),
    "induction_copy": ObjectiveSpec(
        induction_copy_objective,
        ("n", "seq_len", "prefix", "seed"),
        "share of tokens copied correctly by free-running guided decoding",
    ),
    **{
        f"text_{metric}": ObjectiveSpec(
            _text(metric),
            ("n", "prompt_len", "max_new_tokens", "seed"),
            f"free-running guided text after held-out stdlib prompts: {metric}",
        )
        for metric in TEXT_METRICS
    },
}


def register_objective(name: str, spec: ObjectiveSpec) -> None:
    """Add (or replace) an objective under `name`."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: an objective name must be a non-empty str, got {name!r}")
    OBJECTIVES[name] = spec


def make_objective(name: str, model: Model, **options: Any) -> AnyObjective:
    """The registered objective `name` built for `model` with `options` (ValueError for an
    unknown name or option, naming it)."""
    if name not in OBJECTIVES:
        raise ValueError(f"objective: unknown objective {name!r}; choose from {sorted(OBJECTIVES)}")
    spec = OBJECTIVES[name]
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise ValueError(
            f"objective: {name} does not take option(s) {unknown}; it takes {list(spec.options)}"
        )
    for key, value in options.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{key}: objective option must be a whole number >= 0, got {value!r}")
    if options.get("n", 2) < 2:
        raise ValueError(f"n: need at least 2 prompts to split, got {options['n']}")
    return spec.build(model, **options)


def mean_score(scores: torch.Tensor) -> float:
    """Mean of finite per-prompt scores; NaN when any is not finite (never silently dropped)."""
    values = scores.double()
    return float(values.mean()) if bool(torch.isfinite(values).all()) else math.nan


__all__ = [
    "OBJECTIVES",
    "TEXT_METRICS",
    "GenerationObjective",
    "Objective",
    "ObjectiveSpec",
    "induction_copy_objective",
    "ioi_objective",
    "loss_objective",
    "make_objective",
    "mean_score",
    "register_objective",
    "text_objective",
    "text_prompts",
    "text_scores",
]
