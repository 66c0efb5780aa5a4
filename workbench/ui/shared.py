"""Constants and helpers that several dashboard pages share (pages never import each other).

- `SESSION_KEY`: the run-config key holding the browser session that started a run (the Runs
  page's "only mine" filter reads it);
- `TASKS`: the task datasets the pages offer (every task `make_task` knows);
- `head_options(model_name)` / `parse_heads(values)`: the `L.H` head multi-select's options and
  its parsed value (`ValueError` naming a malformed entry).
"""

from __future__ import annotations

from workbench.tasks import TASKS as _TASK_REGISTRY
from workbench.ui import state

SESSION_KEY = "dashboard_session"
TASKS = list(_TASK_REGISTRY)


def head_options(model_name: str) -> list[str]:
    """Every `L.H` of the model, or none when it fails to load (the page reports that later)."""
    try:
        model = state.open_model(model_name)
    except Exception:  # noqa: BLE001 - the page shows the load error on Generate
        return []
    return [f"{layer}.{head}" for layer in range(model.n_layers) for head in range(model.n_heads)]


def parse_heads(values: list[str] | None) -> tuple[tuple[int, int], ...]:
    """`["1.0", "1.2"]` -> `((1, 0), (1, 2))`; ValueError naming a malformed one."""
    if values is not None and not (isinstance(values, list) and len(values) <= 1024):
        raise ValueError("heads: expected a list of LAYER.HEAD")
    heads = []
    for value in values or []:
        if not isinstance(value, str) or len(value) > 20:
            raise ValueError(f"heads: {str(value)[:20]!r} is not LAYER.HEAD")
        layer, _, head = value.partition(".")
        if not (layer.isdigit() and head.isdigit()):
            raise ValueError(f"heads: {value!r} is not LAYER.HEAD")
        heads.append((int(layer), int(head)))
    if not heads:
        raise ValueError("heads: choose at least one head (by hand or by search)")
    return tuple(heads)


__all__ = ["SESSION_KEY", "TASKS", "head_options", "parse_heads"]
