"""Held-out evaluation data for the loss-plateau view of a zoo decoder's training run.

For each model the view needs sequences to score (the loss, the attention maps) and prompts to
continue greedily (repetition bias, representation collapse), plus the reference continuation
whose repetition rate is the data's own baseline:

- `tiny-ioi` (its card's recipe): held-out IOI sentences (`generate_ioi_prompts`, the evaluation
  seed of `workbench.zoo.evaluate`), scored with their answer; the prompt stops before it.
- `tiny-induction`: repeated random tokens (`random_repeated_tokens`, evaluation seed); the
  prompt is BOS + the first copy + 4 tokens of the second, the reference is the rest.
- any other decoder: the caller's `prompts` (scored as given, continued greedily; no reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from workbench.model import Model

EVAL_SEED = 12345  # workbench.zoo.evaluate.IOI_EVAL_SEED (held out from training)


@dataclass(frozen=True)
class PlateauData:
    """Token rows `[1, pos]`: `sequences` to score, `prompts` to continue, `references` (the
    data's own continuation of each prompt, or None), and how they were made."""

    sequences: list
    prompts: list
    references: list | None
    source: str


def _recipe(model: Model) -> dict:
    return (model.card or {}).get("recipe") or {}


def check_prompts(prompts: Any) -> list[str]:
    """A non-empty list of non-empty strings, or ValueError naming `prompts`."""
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, list | tuple) or not prompts:
        raise ValueError("prompts: expected a non-empty list of strings")
    for i, text in enumerate(prompts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"prompts: item {i} is not a non-empty string")
    return list(prompts)


def plateau_data(
    model: Model, *, prompts: list[str] | None, n: int, new_tokens: int
) -> PlateauData:
    """The evaluation data (module doc); ValueError when a prompt cannot be continued."""
    name = _recipe(model).get("name", model.name)
    if prompts is not None:
        rows = [model.to_tokens(t) for t in check_prompts(prompts)]
        data = PlateauData(rows, rows, None, "the given prompts")
    elif name == "tiny-ioi":
        from workbench.tasks.ioi_prompts import generate_ioi_prompts

        held_out = generate_ioi_prompts(n, seed=EVAL_SEED)
        full = [model.to_tokens(f"{p.text} {p.io}") for p in held_out]
        data = PlateauData(
            full, [model.to_tokens(p.text) for p in held_out], full, "held-out IOI sentences"
        )
    elif name == "tiny-induction":
        from workbench.tasks.induction import random_repeated_tokens

        seq_len = min(20, (model.n_ctx - 1) // 2)
        clean, _ = random_repeated_tokens(model, n=n, seq_len=seq_len, seed=EVAL_SEED)
        cut = 1 + seq_len + 4
        rows = [clean[i : i + 1] for i in range(n)]  # [1, 1 + 2 seq_len] each
        data = PlateauData(
            rows, [r[:, :cut] for r in rows], rows, f"repeated random tokens (length {seq_len})"
        )
    else:
        raise ValueError(
            f"prompts: {model.name} has no default evaluation data; pass prompts=[...]"
        )
    for i, row in enumerate(data.prompts):
        if row.shape[1] + new_tokens > model.n_ctx:
            raise ValueError(
                f"prompts: item {i} has {row.shape[1]} tokens; with new_tokens={new_tokens} "
                f"it exceeds the context of {model.n_ctx}"
            )
    return data


def repetition_rate(tokens: torch.Tensor) -> float:
    """Share of consecutive equal tokens in a 1-D token row (the paper's repetition frequency:
    mean of `y[t] == y[t+1]`); NaN for fewer than two tokens."""
    if tokens.numel() < 2:
        return float("nan")
    return (tokens[:-1] == tokens[1:]).double().mean().item()


__all__ = ["EVAL_SEED", "PlateauData", "check_prompts", "plateau_data", "repetition_rate"]
