"""Constants and helpers that several dashboard pages share (pages never import each other).

- `SESSION_KEY`: the run-config key holding the browser session that started a run (the Runs
  page's "only mine" filter reads it);
- `TASKS`: the task datasets the pages offer (every task `make_task` knows);
- `head_options(model_name)` / `parse_heads(values)`: the head multi-select's options (`L1H2`)
  and its value read as `Head`s (any `Head.parse` spelling; `ValueError` naming a bad entry).
"""

from __future__ import annotations

from typing import Any

from workbench import heads as _heads
from workbench.heads import Head
from workbench.tasks import TASKS as _TASK_REGISTRY
from workbench.ui import state

SESSION_KEY = "dashboard_session"
TASKS = list(_TASK_REGISTRY)


def head_options(model_name: str) -> list[str]:
    """Every head of the model (`L1H2`), or none when it fails to load (the page reports that
    later)."""
    try:
        model = state.open_model(model_name)
    except Exception:  # noqa: BLE001 - the page shows the load error on Generate
        return []
    return [
        str(Head(layer, head)) for layer in range(model.n_layers) for head in range(model.n_heads)
    ]


def parse_heads(values: Any) -> tuple[Head, ...]:
    """`["L1H0", "L1H2"]` (or the older `"1.0"`) -> `(Head(1, 0), Head(1, 2))`; ValueError
    naming a malformed entry. The multi-select sends a list of short strings, nothing else."""
    if values is not None and not (isinstance(values, list) and len(values) <= 1024):
        raise ValueError("heads: expected a list of heads like L1H2")
    if not values:
        raise ValueError("heads: choose at least one head (by hand or by search)")
    for value in values:
        if not isinstance(value, str) or len(value) > 20:
            raise ValueError(
                f"head: {str(value)[:20]!r} is not a head; write it as L<layer>H<head>"
            )
    return _heads.parse_heads(values)


__all__ = ["SESSION_KEY", "TASKS", "head_options", "parse_heads"]
