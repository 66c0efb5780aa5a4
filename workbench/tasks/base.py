"""The `Task` base type: clean/corrupted prompt pairs plus a metric.

Every circuit method and every patching experiment runs on a `Task`:

- `clean_tokens` and `corrupted_tokens` are `[batch, pos]` and aligned token-by-token (same
  shape; they differ only where the corruption changed a token);
- `readout` names the activation the metric reads (`None` = the logits);
- `metric(output)` turns that activation into one number per prompt (`[batch]`), higher means
  "the model does the task".

Caveat: prompts in a batch have different lengths and are right-padded; `answer_pos` gives
each prompt's last real position. Under causal attention the padding never reaches it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from workbench.model import Model


@dataclass(frozen=True, eq=False)
class Task(ABC):
    """Clean/corrupted prompt pairs and a per-prompt metric (see module docstring)."""

    name: str
    model_name: str
    clean_tokens: torch.Tensor  # [batch, pos]
    corrupted_tokens: torch.Tensor  # [batch, pos]
    clean_text: tuple[str, ...]
    corrupted_text: tuple[str, ...]
    readout: str | None  # hook name the metric reads; None = logits
    metric_name: str

    def __post_init__(self) -> None:
        if self.clean_tokens.shape != self.corrupted_tokens.shape:
            raise ValueError(
                f"corrupted_tokens: shape {tuple(self.corrupted_tokens.shape)} differs from "
                f"clean_tokens {tuple(self.clean_tokens.shape)}"
            )

    @property
    def n_prompts(self) -> int:
        return int(self.clean_tokens.shape[0])

    @abstractmethod
    def metric(self, output: torch.Tensor) -> torch.Tensor:
        """Per-prompt metric `[batch]` from the logits or the `readout` activation."""

    def run(self, model: Model, tokens: torch.Tensor) -> torch.Tensor:
        """The output the metric reads: logits, or the `readout` activation."""
        if self.readout is None:
            return model(tokens)
        _, cache = model.run_with_cache(tokens, names=[self.readout])
        return cache[self.readout]

    @torch.no_grad()
    def evaluate(self, model: Model, *, corrupted: bool = False) -> torch.Tensor:
        """Per-prompt metric `[batch]` of an unmodified run on clean (or corrupted) prompts."""
        tokens = self.corrupted_tokens if corrupted else self.clean_tokens
        return self.metric(self.run(model, tokens.to(model.device))).cpu()

    def summary(self, model: Model) -> dict[str, float]:
        """Mean clean and corrupted metric: the gap a circuit must explain."""
        clean = self.evaluate(model).mean().item()
        corrupted = self.evaluate(model, corrupted=True).mean().item()
        return {"clean": clean, "corrupted": corrupted, "gap": clean - corrupted}
