"""The training checkpoints of a zoo model: its history snapshots and the final weights.

`workbench/zoo/train.py` saves float16 snapshots as `<checkpoint>/history/step-NNNNNN.safetensors`
(the steps are in the model card's `recipe.snapshots`); no per-step loss curve is stored (the
card keeps only `final_train_loss` and, for induction, first/second-half losses). Each snapshot
is loaded into a fresh model (`workbench.adapters.snapshots.model_with_weights`), so a shared
model is never touched. Caveat: a snapshot lacking a trained parameter keeps the final
checkpoint's value; such names are returned as notes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.adapters.snapshots import model_with_weights

if TYPE_CHECKING:
    from workbench.model import Model

_STEP = re.compile(r"step-(\d+)\.safetensors")


@dataclass(frozen=True)
class Checkpoint:
    """One point of a training run: its label ("step 300" or "final"), step and model."""

    label: str
    step: int
    model: Model
    note: str = ""


def snapshot_files(model: Model) -> list[tuple[int, Path]]:
    """`(step, path)` of every `history/step-*.safetensors` of `model`, sorted by step."""
    history = Path(model.path or "") / "history"
    if not model.path or not history.is_dir():
        return []
    found = []
    for path in history.glob("step-*.safetensors"):
        match = _STEP.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def final_step(model: Model) -> int:
    """The training steps the model card records (-1 when it records none)."""
    recipe = (model.card or {}).get("recipe") or {}
    return int(recipe.get("steps", -1))


def checkpoints(
    model: Model, *, history: bool = True, skip_final_snapshot: bool = False
) -> Iterator[Checkpoint]:
    """The snapshots (oldest first, when `history`) and then the final model.

    `skip_final_snapshot` leaves out a snapshot taken at the final step (it is the final
    weights rounded to float16), so a curve over steps has one point per step.
    """
    last = final_step(model)
    for step, path in snapshot_files(model) if history else []:
        if skip_final_snapshot and step == last:
            continue
        current, missing = model_with_weights(model, path, name=f"{model.name}@step{step}")
        note = f"{path.name}: kept the final checkpoint's {', '.join(missing)}" if missing else ""
        yield Checkpoint(f"step {step}", step, current, note)
    yield Checkpoint("final", last, model)


__all__ = ["Checkpoint", "checkpoints", "final_step", "snapshot_files"]
