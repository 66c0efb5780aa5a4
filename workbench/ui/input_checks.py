"""Checks for what a browser sends to a dashboard callback: every value is untrusted.

A request can carry anything a JSON body can hold, whatever the component would send
(`"abc"` for a slider, an empty `points` list in hover data, `y=-1`). Each check returns the
value in the type the callback needs, or raises `ValueError` with one line naming the input
and what was wrong; callbacks show that line in the page's red alert
(`components.error_alert`), never an HTTP 500 and never a figure of something else.

- `whole(value, name, count=None)`: an int (whole floats accepted, never bools or strings),
  at least `low`, below `count` when given (layer, head, token positions).
- `optional_whole(...)`: the same, `None`/`""` (a cleared NumberInput) give `None`.
- `number(value, name, low, high)`: a finite float in `[low, high]` (sliders, weights).
- `choice(value, name, allowed)`: one of the page's own options.
- `text(value, name, max_chars)`: a string of bounded length.
- `mapping(value, name)`: a dict (a page's `dcc.Store` data); `None` gives `{}`.
- `event_point(event, name)`: the first point of `hoverData` / `clickData`.
- `job_run_id(job, name)`: the run id in a background job's answer (its error re-raised).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

MAX_TEXT = 20_000


def whole(value: Any, name: str, count: int | None = None, *, low: int = 0) -> int:
    """`value` as an int in `[low, count)`; `ValueError` naming `name` otherwise."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: {_show(value)} is not a whole number")
    if value < low or (count is not None and value >= count):
        top = f"-{count - 1}" if count is not None else " or more"
        raise ValueError(f"{name}: {value} is out of range ({low}{top})")
    return value


def optional_whole(value: Any, name: str, count: int | None = None, *, low: int = 0) -> int | None:
    """Like `whole`, but a cleared input (`None` or `""`) is `None`."""
    return None if value is None or value == "" else whole(value, name, count, low=low)


def number(value: Any, name: str, low: float, high: float) -> float:
    """`value` as a finite float in `[low, high]`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: {_show(value)} is not a number")
    if not low <= value <= high:
        raise ValueError(f"{name}: {value:g} is out of range ({low:g}-{high:g})")
    return float(value)


def choice(value: Any, name: str, allowed: Iterable[str]) -> str:
    """`value` if it is one of `allowed` (strings)."""
    allowed = list(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}: {_show(value)} is not one of {', '.join(allowed)}")
    return value


def text(value: Any, name: str, max_chars: int = MAX_TEXT) -> str:
    """`value` if it is a string of at most `max_chars` characters."""
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected text, got {type(value).__name__}")
    if len(value) > max_chars:
        raise ValueError(f"{name}: {len(value)} characters is more than {max_chars}")
    return value


def mapping(value: Any, name: str) -> dict[str, Any]:
    """A page store's data as a dict (`None` -> `{}`)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{name}: malformed page state (reload the page)")
    return value


def event_point(event: Any, name: str) -> dict[str, Any]:
    """The first point of a plotly `hoverData` / `clickData` event."""
    points = event.get("points") if isinstance(event, dict) else None
    if not isinstance(points, list) or not points or not isinstance(points[0], dict):
        raise ValueError(f"{name}: the event names no point")
    return points[0]


def point_index(point: dict[str, Any], axis: str, name: str, count: int | None = None) -> int:
    """The whole-number coordinate `axis` ("x" or "y") of an event point, below `count`."""
    return whole(point.get(axis), name, count)


def job_run_id(job: Any, name: str) -> str:
    """The run id in a background job's `{"run_id": ...}`; its `{"error": ...}` re-raised."""
    if isinstance(job, dict) and isinstance(job.get("error"), str):
        raise ValueError(job["error"])
    run_id = job.get("run_id") if isinstance(job, dict) else None
    if not isinstance(run_id, str) or not run_id:
        raise ValueError(f"{name}: the job's answer names no run")
    return run_id


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


__all__ = [
    "choice",
    "event_point",
    "job_run_id",
    "mapping",
    "number",
    "optional_whole",
    "point_index",
    "text",
    "whole",
]
