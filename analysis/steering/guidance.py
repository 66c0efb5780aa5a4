"""Head-perturbation guidance for decoders: push the next-token distribution away from a
perturbed copy of the model.

At every step the model runs twice, clean (`l_orig`) and with a `HeadPerturbation` (`l_pert`),
and the guided logits are

    l_guided = (1 + w) * l_orig - w * l_pert      on the plausibility set,
    l_guided = -inf                                elsewhere,

where the plausibility set is `{x : p_orig(x) >= alpha * max p_orig}` (the adaptive
plausibility constraint of contrastive decoding; `alpha = 0` keeps every token). `w = 0` is
plain decoding. `guide(...)` decodes greedily or by seeded sampling and returns a
`GuidanceResult` with the tokens and the per-step logit shifts; `guided_logits(...)` gives the
guided logits of a whole batch (used by the head search); `guided_generate(...)` decodes a
batch of equal-length prompts greedily with guidance (the head search's generation objectives;
per prompt it picks exactly what `guide(..., sample=False, stop_at_eos=False)` picks).

Caveats: no KV cache (two full forwards per generated token), fine for the small models this is
meant for; prompts are decoded one at a time; generation stops at `max_new_tokens`, at the
model's context length, or at EOS when `stop_at_eos`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
import torch
from tqdm.auto import tqdm

from analysis.steering.head_perturbation import HeadPerturbation, perturbed
from workbench.heads import Head
from workbench.results import Result

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.model import Model


def plausible(logits: torch.Tensor, alpha: float) -> torch.Tensor:
    """Boolean `[..., d_vocab]` plausibility set `p(x) >= alpha * max p` (all True at alpha=0)."""
    log_p = torch.log_softmax(logits.float(), dim=-1)  # [..., d_vocab]
    if alpha <= 0:
        return torch.ones_like(log_p, dtype=torch.bool)
    return log_p >= log_p.max(-1, keepdim=True).values + math.log(alpha)


def combine(orig: torch.Tensor, pert: torch.Tensor, *, w: float, alpha: float) -> torch.Tensor:
    """Guided logits `(1+w) orig - w pert`, `-inf` outside the plausibility set of `orig`."""
    guided = (1.0 + w) * orig - w * pert  # [..., d_vocab]
    return guided.masked_fill(~plausible(orig, alpha), -math.inf)


def _check(model: Model, w: float, alpha: float) -> None:
    if not model.is_causal:
        raise ValueError(f"model: guidance needs a decoder; {model.name} is an encoder")
    if not math.isfinite(w):
        raise ValueError(f"w: guidance scale must be finite, got {w}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: plausibility threshold must be in [0, 1], got {alpha}")


@torch.no_grad()
def guided_logits(
    model: Model,
    tokens: torch.Tensor,
    perturbation: HeadPerturbation,
    *,
    w: float = 1.0,
    alpha: float = 0.0,
    orig: torch.Tensor | None = None,
) -> torch.Tensor:
    """Guided logits `[batch, pos, d_vocab]` for a batch of token sequences.

    `orig` may carry the clean logits when the caller already has them (they are reused)."""
    _check(model, w, alpha)
    tokens = tokens.to(model.device)
    orig = model(tokens) if orig is None else orig  # [batch, pos, d_vocab]
    with perturbed(model, perturbation):
        pert = model(tokens)  # [batch, pos, d_vocab]
    return combine(orig, pert, w=w, alpha=alpha)


@torch.no_grad()
def guided_generate(
    model: Model,
    tokens: torch.Tensor,
    perturbation: HeadPerturbation | None,
    *,
    w: float = 1.0,
    alpha: float = 0.1,
    max_new_tokens: int = 16,
) -> torch.Tensor:
    """`[batch, max_new_tokens]` greedy guided continuations of equal-length prompts `tokens`
    `[batch, pos]` (no padding, no EOS stop); `perturbation=None` or `w=0` is plain greedy."""
    _check(model, w, alpha)
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens: must be >= 1, got {max_new_tokens}")
    if tokens.ndim != 2 or tokens.shape[1] + max_new_tokens > model.n_ctx:
        raise ValueError(
            f"tokens: need [batch, pos] with pos + max_new_tokens <= {model.n_ctx}, "
            f"got {tuple(tokens.shape)} + {max_new_tokens}"
        )
    if perturbation is not None:
        perturbation.check(model)
    plain = perturbation is None or w == 0
    seq = tokens.to(model.device)  # [batch, pos]
    for _ in range(max_new_tokens):
        orig = model(seq)[:, -1]  # [batch, d_vocab]
        if plain:
            step = orig.argmax(-1)  # [batch]
        else:
            with perturbed(model, perturbation):
                pert = model(seq)[:, -1]  # [batch, d_vocab]
            step = combine(orig, pert, w=w, alpha=alpha).argmax(-1)  # [batch]
        seq = torch.cat([seq, step[:, None]], dim=1)  # [batch, pos + 1]
    return seq[:, tokens.shape[1] :].cpu()


@dataclass(frozen=True)
class GuidanceResult(Result):
    """Tokens decoded with head-perturbation guidance and what guidance changed per step.

    Per step: `shift_chosen` = guided minus clean logit of the chosen token, `shift_norm` = L2
    norm of the logit shift over the plausibility set, `plain_token` = the clean argmax.
    """

    kind: ClassVar[str] = "guidance"
    plot_kinds: ClassVar[tuple[str, ...]] = ("shift",)
    model_name: str
    prompt: str
    heads: tuple[Head, ...]  # stored as [layer, head] pairs, read back as `Head`s
    method: str
    u: float
    w: float
    alpha: float
    sample: bool
    seed: int
    prompt_tokens: torch.Tensor  # [pos]
    tokens: torch.Tensor  # [step] generated token ids
    token_strs: tuple[str, ...]
    plain_token: torch.Tensor  # [step]
    shift_chosen: torch.Tensor  # [step]
    shift_norm: torch.Tensor  # [step]
    text: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", tuple(Head.parse(h) for h in self.heads))

    @property
    def n_changed(self) -> int:
        """Steps where guidance picked a different token than the clean argmax."""
        return int((self.tokens != self.plain_token).sum())

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "step": range(len(self.token_strs)),
                "token": self.tokens.tolist(),
                "token_str": list(self.token_strs),
                "plain_token": self.plain_token.tolist(),
                "changed": (self.tokens != self.plain_token).tolist(),
                "shift_chosen": self.shift_chosen.tolist(),
                "shift_norm": self.shift_norm.tolist(),
            }
        )

    def plot(self, kind: str | None = None, **kwargs: Any) -> go.Figure:
        """`shift` (default): per-step logit shift of the chosen token and its norm."""
        import plotly.graph_objects as go

        if kind not in (None, "shift"):
            raise ValueError(f"kind: unknown plot {kind!r}; choose 'shift'")
        frame = self.to_frame()
        labels = [f"{i}:{s}" for i, s in zip(frame["step"], frame["token_str"], strict=True)]
        fig = go.Figure()
        fig.add_bar(x=labels, y=frame["shift_chosen"], name="shift of chosen token")
        fig.add_scatter(x=labels, y=frame["shift_norm"], name="shift norm", mode="lines+markers")
        heads = ",".join(str(head) for head in self.heads)
        fig.update_layout(
            title=f"{self.model_name}: guidance w={self.w} on {heads} ({self.method}, u={self.u})",
            xaxis_title="step:token",
            yaxis_title="logit shift",
            **kwargs,
        )
        return fig


@torch.no_grad()
def guide(
    model: Model,
    prompt: str,
    perturbation: HeadPerturbation,
    *,
    w: float = 1.0,
    alpha: float = 0.1,
    max_new_tokens: int = 20,
    sample: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
    stop_at_eos: bool = True,
    progress: bool = False,
) -> GuidanceResult:
    """Decode `max_new_tokens` tokens after `prompt` with guidance (greedy, or seeded sampling)."""
    _check(model, w, alpha)
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens: must be >= 1, got {max_new_tokens}")
    if not temperature > 0:
        raise ValueError(f"temperature: must be > 0, got {temperature}")
    perturbation.check(model)
    prompt_tokens = model.to_tokens(prompt)[0]  # [pos]
    generator = torch.Generator(device="cpu").manual_seed(seed)
    tokens = prompt_tokens.clone()
    chosen, plain, shift_chosen, shift_norm = [], [], [], []
    eos = model.tokenizer.eos_token_id
    for _ in tqdm(range(max_new_tokens), disable=not progress, desc="guide"):
        if tokens.shape[0] >= model.n_ctx:
            break
        orig = model(tokens[None])[0, -1]  # [d_vocab]
        with perturbed(model, perturbation):
            pert = model(tokens[None])[0, -1]  # [d_vocab]
        guided = combine(orig, pert, w=w, alpha=alpha)  # [d_vocab]
        if sample:
            probs = torch.softmax(guided.float().cpu() / temperature, dim=-1)  # [d_vocab]
            token = int(torch.multinomial(probs, 1, generator=generator))
        else:
            token = int(guided.argmax())
        keep = torch.isfinite(guided)  # [d_vocab] plausibility set
        chosen.append(token)
        plain.append(int(orig.argmax()))
        shift_chosen.append(float(guided[token] - orig[token]))
        shift_norm.append(float((guided - orig)[keep].norm()))
        tokens = torch.cat([tokens, torch.tensor([token], device=tokens.device)])
        if stop_at_eos and eos is not None and token == eos:
            break
    new = torch.tensor(chosen, dtype=torch.long)
    return GuidanceResult(
        model_name=model.name,
        prompt=prompt,
        heads=perturbation.heads,
        method=perturbation.method,
        u=float(perturbation.u),
        w=float(w),
        alpha=float(alpha),
        sample=sample,
        seed=seed,
        prompt_tokens=prompt_tokens.cpu(),
        tokens=new,
        token_strs=tuple(model.to_str_tokens(new)) if len(chosen) else (),
        plain_token=torch.tensor(plain, dtype=torch.long),
        shift_chosen=torch.tensor(shift_chosen, dtype=torch.float32),
        shift_norm=torch.tensor(shift_norm, dtype=torch.float32),
        text=model.tokenizer.decode(new.tolist()),
    )


__all__ = ["GuidanceResult", "combine", "guide", "guided_generate", "guided_logits", "plausible"]
