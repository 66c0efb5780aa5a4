"""Objectives for the token attacks in `analysis.attacks`, and the forward pass they read.

An attack works on one `AttackCase` at a time: a token sequence with an explicit adversarial
span (`adv_positions`) and what the objective needs (answer position, IO/S tokens, a target
token, a reference embedding, a protected key span). Objectives return a loss per sequence of
a candidate batch, to be MINIMISED, plus a success flag:

- `flip`: IOI logit difference logit(IO) - logit(S) at the answer position, clamped below at
  `-margin` (so a flipped prompt leaves the search to the attention term); success when < 0
  (the model now prefers S);
- `raise_loss`: log p(target) at the answer position (minimising it raises the target's loss);
  success when the target is no longer the top-1 token;
- `dissipation`: only the attention term below; success when the targeted heads' mean entropy
  has moved at least half-way from its starting value to uniform;
- `embedding` (encoders such as MiniLM): cosine similarity of the mean-pooled sentence
  embedding to the original sentence's; success when below `cosine_threshold`.

The attention-dissipation term (weight `dissipation_weight`) reads the targeted heads' patterns
on `case.query_rows`: `entropy` mode adds minus their mean normalised entropy H / log(visible
keys) (so 1 = uniform), `span` mode adds the mean attention mass they put on
`case.protected_keys` (moving attention off the protected span). Both terms were designed for
this workbench. Neither is the attention-dissipation loss of "Fool the Hydra" (Tarchoun et al.,
arXiv 2312.00173): that paper's equation was not available to the build (only its abstract,
which names the idea, not the formula), so it is not implemented; see
docs/guidance-and-attacks.md.

`decoder_cases` (IOI task, adversarial prefix), `text_cases` (any decoder, prefix) and
`encoder_cases` (sentences, adversarial suffix before [SEP]) build the cases.

`run_records` is the one forward pass: optional one-hot input (the differentiable path,
`one_hot @ W_E` replaces `hook_embed`), patterns of the targeted layers, and the output read
(logits, or the last hidden state for encoders).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from analysis.steering.head_perturbation import pattern_hook_name
from workbench.heads import Head, parse_heads

if TYPE_CHECKING:
    from workbench.model import Model
    from workbench.tasks.ioi import IOITask

OBJECTIVES = ("flip", "raise_loss", "dissipation", "embedding")
DISSIPATION_MODES = ("entropy", "span")


@dataclass(frozen=True, eq=False)
class AttackCase:
    """One prompt prepared for attack. Positions index `tokens` `[pos]`."""

    index: int  # the prompt's index in the caller's list / task
    tokens: torch.Tensor  # [pos] with the adversarial span filled by its initial token
    adv_positions: torch.Tensor  # [n_adv]
    query_rows: torch.Tensor  # [rows] query positions the attention statistics read
    answer_pos: int = -1
    io_token: int = -1
    s_token: int = -1
    target_token: int = -1
    protected_keys: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    reference: torch.Tensor | None = None  # [d_model] unit sentence embedding (encoders)
    excluded_tokens: tuple[int, ...] = ()  # never placed in the adversarial span


def init_token(model: Model, init: str) -> int:
    """The id of `init`, which must be exactly one token of the model's vocabulary."""
    ids = model.tokenizer.encode(init, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"init: {init!r} is {len(ids)} tokens for {model.name}; need exactly one")
    return int(ids[0])


def decoder_cases(
    task: IOITask, rows, *, n_adv: int, init_token: int, ban_names: bool, query: str = "answer"
) -> list[AttackCase]:
    """IOI prompts with an adversarial prefix of `n_adv` tokens right after BOS. `query`:
    the rows the attention term and statistics read, `answer` (the predicting position) or
    `prompt` (every prompt position after the prefix)."""
    cases = []
    for i in rows:
        length = int(task.answer_pos[i]) + 1
        prompt = task.clean_tokens[i, :length]  # [pos] BOS + prompt
        tokens = torch.cat([prompt[:1], torch.full((n_adv,), init_token), prompt[1:]])  # [pos]
        answer = length - 1 + n_adv
        io, s = int(task.io_token[i]), int(task.s_token[i])
        protected = (tokens == io).nonzero()[:, 0]  # [n] keys holding the IO name
        cases.append(
            AttackCase(
                index=int(i),
                tokens=tokens,
                adv_positions=torch.arange(1, 1 + n_adv),
                query_rows=torch.arange(1 + n_adv if query == "prompt" else answer, answer + 1),
                answer_pos=answer,
                io_token=io,
                s_token=s,
                target_token=io,
                protected_keys=protected,
                excluded_tokens=(io, s) if ban_names else (),
            )
        )
    return cases


def text_cases(
    model: Model, pairs, *, n_adv: int, init_token: int, query: str = "answer"
) -> list[AttackCase]:
    """Decoder prompts given as (prompt, target) pairs (`raise_loss`: the target's first token
    follows the prompt) or plain prompts (`dissipation`), with an adversarial prefix after BOS."""
    cases = []
    for i, pair in enumerate(pairs):
        prompt, target = (pair, None) if isinstance(pair, str) else pair
        prompt_tokens = model.to_tokens(prompt)[0].cpu()  # [pos] BOS + prompt
        target_ids = model.tokenizer.encode(target, add_special_tokens=False) if target else [-1]
        if not target_ids:
            raise ValueError(f"prompts: target {target!r} of prompt {i} is empty")
        tokens = torch.cat([prompt_tokens[:1], torch.full((n_adv,), init_token), prompt_tokens[1:]])
        answer = tokens.shape[0] - 1
        first = 1 + n_adv if query == "prompt" else answer
        cases.append(
            AttackCase(
                index=i,
                tokens=tokens,
                adv_positions=torch.arange(1, 1 + n_adv),
                query_rows=torch.arange(first, answer + 1),
                answer_pos=answer,
                target_token=int(target_ids[0]),
            )
        )
    return cases


@torch.no_grad()
def encoder_cases(model: Model, sentences, *, n_adv: int, init_token: int) -> list[AttackCase]:
    """Sentences with an adversarial suffix of `n_adv` tokens before the final [SEP]."""
    cases = []
    for i, text in enumerate(sentences):
        prompt = model.to_tokens(text)[0].cpu()  # [pos] [CLS] ... [SEP]
        tokens = torch.cat([prompt[:-1], torch.full((n_adv,), init_token), prompt[-1:]])  # [pos]
        start = prompt.shape[0] - 1
        cases.append(
            AttackCase(
                index=i,
                tokens=tokens,
                adv_positions=torch.arange(start, start + n_adv),
                query_rows=torch.arange(0, start),
                reference=model.sentence_embedding(text)[0].cpu(),
            )
        )
    return cases


def run_records(
    model: Model,
    tokens: torch.Tensor,
    *,
    layers: list[int],
    one_hot: torch.Tensor | None = None,
    readout: str | None = None,
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """One forward of `tokens` `[batch, pos]` -> (output, {layer: pattern [batch, head, q, k]}).

    `output` is the logits, or the `readout` activation when given. With `one_hot`
    `[batch, pos, d_vocab]` the token embeddings are `one_hot @ W_E`, so gradients reach it."""
    patterns: dict[int, torch.Tensor] = {}
    found: dict[str, torch.Tensor] = {}
    hooks = []
    if one_hot is not None:
        w_e = model.bridge.W_E  # [d_vocab, d_model]

        def embed(x: torch.Tensor, *, hook) -> torch.Tensor:
            return (one_hot.to(w_e.dtype) @ w_e).to(x.dtype)  # [batch, pos, d_model]

        hooks.append(("hook_embed", embed))
    for layer in layers:

        def keep(pattern: torch.Tensor, *, hook, layer=layer) -> None:
            patterns[layer] = pattern

        hooks.append((pattern_hook_name(layer), keep))
    if readout is not None:

        def read(x: torch.Tensor, *, hook) -> None:
            found["out"] = x

        hooks.append((readout, read))
    with model.intervene(hooks):
        logits = model(tokens)
    return (found["out"] if readout is not None else logits), patterns


def head_rows(patterns: dict[int, torch.Tensor], heads, rows: torch.Tensor) -> torch.Tensor:
    """`[batch, n_heads_targeted, rows, key]` attention rows of the targeted heads."""
    stacked = [patterns[layer][:, head, rows.to(patterns[layer].device)] for layer, head in heads]
    return torch.stack(stacked, dim=1)


def row_entropy(rows: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of attention rows `[..., key]` -> `[...]`."""
    return -(rows * torch.log(rows.clamp_min(1e-30))).sum(-1)


def uniform_entropy(query_rows: torch.Tensor, n_keys: int, *, causal: bool) -> torch.Tensor:
    """log(number of visible keys) of each query row -> `[rows]` (the entropy of uniform
    attention: the causal prefix for decoders, every key for unpadded encoder input)."""
    visible = query_rows + 1 if causal else torch.full_like(query_rows, n_keys)
    return torch.log(visible.float())


@dataclass(frozen=True)
class ObjectiveSpec:
    """Which objective and attention term an attack optimises (see module docstring).

    `heads`: the targeted heads, anything `parse_heads` reads (`"L1H2, L0H3"`, `[(1, 2)]`)."""

    name: str = "flip"
    heads: tuple[Head, ...] = ()
    dissipation_weight: float = 0.0
    dissipation: str = "entropy"
    cosine_threshold: float = 0.5
    margin: float = 1.0

    def __post_init__(self) -> None:
        no_heads = isinstance(self.heads, tuple | list) and not self.heads
        object.__setattr__(self, "heads", () if no_heads else parse_heads(self.heads))
        if self.name not in OBJECTIVES:
            raise ValueError(
                f"objective: unknown objective {self.name!r}; choose from {OBJECTIVES}"
            )
        if self.dissipation not in DISSIPATION_MODES:
            raise ValueError(
                f"dissipation: unknown mode {self.dissipation!r}; choose from {DISSIPATION_MODES}"
            )
        for name, low, high in (
            ("dissipation_weight", 0.0, math.inf),
            ("cosine_threshold", -1.0, 1.0),
            ("margin", 0.0, math.inf),
        ):
            value = getattr(self, name)
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not (ok and math.isfinite(value) and low <= value <= high):
                raise ValueError(f"{name}: need a finite number in [{low}, {high}], got {value!r}")
        if (self.name == "dissipation" or self.dissipation_weight > 0) and not self.heads:
            raise ValueError("heads: the attention-dissipation term needs at least one head")

    @property
    def layers(self) -> list[int]:
        """The layers of the targeted heads, sorted, each once."""
        return sorted({layer for layer, _ in self.heads})

    def readout(self, model: Model) -> str | None:
        """The hook to read the sentence embedding from (embedding objective), else None."""
        return f"blocks.{model.n_layers - 1}.hook_out" if self.name == "embedding" else None

    def check(self, model: Model) -> None:
        """ValueError unless the objective fits `model` (encoder/decoder) and its heads exist."""
        if (self.name == "embedding") == model.is_causal:
            kind = "an encoder" if self.name == "embedding" else "a decoder"
            raise ValueError(f"objective: {self.name!r} needs {kind}; {model.name} is not one")
        for head in self.heads:
            model.check_head(head)

    def task_loss(
        self, output: torch.Tensor, case: AttackCase, *, clamp: bool = True
    ) -> torch.Tensor:
        """The main term `[batch]` (0 for `dissipation`); `clamp=False` gives the plain metric
        (logit difference, log p(target), cosine)."""
        if self.name == "embedding":
            pooled = torch.nn.functional.normalize(output.mean(1), dim=-1)  # [batch, d_model]
            return pooled @ case.reference.to(pooled.device, pooled.dtype)  # [batch]
        if self.name == "dissipation":
            return output.new_zeros(output.shape[0])
        final = output[:, case.answer_pos].float()  # [batch, d_vocab]
        if self.name == "flip":  # clamped: past the margin only the attention term still pulls
            diff = final[:, case.io_token] - final[:, case.s_token]  # [batch]
            return diff.clamp_min(-self.margin) if clamp else diff
        return torch.log_softmax(final, dim=-1)[:, case.target_token]

    def attention_term(self, patterns: dict[int, torch.Tensor], case: AttackCase) -> torch.Tensor:
        """The dissipation term `[batch]` (minimised: higher entropy / less protected mass)."""
        rows = head_rows(patterns, self.heads, case.query_rows).float()  # [batch, heads, rows, key]
        if self.dissipation == "span":
            if case.protected_keys.numel() == 0:
                raise ValueError(
                    "dissipation: span mode needs a protected key span for every prompt"
                )
            return rows[..., case.protected_keys].sum(-1).mean((1, 2))
        causal = self.name != "embedding"
        norm = uniform_entropy(case.query_rows, rows.shape[-1], causal=causal)  # [rows]
        norm = norm.to(rows.device).clamp_min(1e-6)
        return -(row_entropy(rows) / norm).mean((1, 2))

    def loss(self, output, patterns, case: AttackCase) -> torch.Tensor:
        """Total loss `[batch]` to minimise."""
        loss = self.task_loss(output, case)
        if self.name == "dissipation" or self.dissipation_weight > 0:
            weight = 1.0 if self.name == "dissipation" else self.dissipation_weight
            loss = loss + weight * self.attention_term(patterns, case)
        return loss

    def task_success(self, output: torch.Tensor, case: AttackCase) -> torch.Tensor:
        """`[batch]` bool for flip / raise_loss / embedding (dissipation: see attacks)."""
        if self.name == "embedding":
            return self.task_loss(output, case) < self.cosine_threshold
        if self.name == "flip":
            return self.task_loss(output, case) < 0  # the clamp keeps the sign
        final = output[:, case.answer_pos]  # [batch, d_vocab]
        return final.argmax(-1) != case.target_token


def head_statistics(
    patterns: dict[int, torch.Tensor], heads, case: AttackCase, *, causal: bool
) -> list[dict]:
    """Mean entropy, uniform entropy, sink (mass on key 0) and max prob of each targeted head
    over `case.query_rows` of the first sequence in the batch (none without heads)."""
    if not heads:
        return []
    rows = head_rows(patterns, heads, case.query_rows)[0].float().cpu()  # [heads, rows, key]
    uniform = uniform_entropy(case.query_rows, rows.shape[-1], causal=causal)  # [rows]
    stats = []
    for i, (layer, head) in enumerate(heads):
        stats.append(
            {
                "layer": layer,
                "head": head,
                "entropy": float(row_entropy(rows[i]).mean()),
                "uniform_entropy": float(uniform.mean()),
                "sink": float(rows[i, :, 0].mean()),
                "max_prob": float(rows[i].max(-1).values.mean()),
            }
        )
    return stats
