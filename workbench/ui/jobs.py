"""Background jobs for long analyses: Dash background callbacks with progress and cancel.

`manager()` is the app's `DiskcacheManager`; `job_controls(prefix)` lays out Run, Cancel, a
progress bar and its label; `background_options(app, prefix)` gives the keyword arguments
that turn an `app.callback` into a cancellable background callback reporting into them.
`tqdm_progress(set_progress, label)` forwards the library's own tqdm bars to that progress
bar, so analyses need no dashboard-specific hooks.

Caveats (Dash's DiskcacheManager): a job runs in a forked process, so
- it sees the models loaded before the fork (and loads others privately);
- its return value is pickled: return JSON-ready values, and hand results back through the
  run store (the job saves, the server loads by run id);
- Cancel terminates the process; a run it was writing stays 'running' until the store's
  `cleanup()` marks it abandoned (its writer pid is dead).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import dash_mantine_components as dmc
from dash import DiskcacheManager, Input, Output

PROGRESS_INTERVAL_MS = 250


def manager(folder: str | None = None) -> DiskcacheManager:
    """A DiskcacheManager over `folder` (default: a fresh temporary folder)."""
    import diskcache

    folder = folder or tempfile.mkdtemp(prefix="workbench-jobs-")
    return DiskcacheManager(diskcache.Cache(folder), expire=3600)


def job_controls(prefix: str, *, run_label: str = "Run") -> Any:
    """Run and Cancel buttons, a progress bar (`<prefix>-progress`) and its label."""
    return dmc.Stack(
        [
            dmc.Group(
                [
                    dmc.Button(run_label, id=f"{prefix}-run"),
                    dmc.Button(
                        "Cancel", id=f"{prefix}-cancel", color="red", variant="light", disabled=True
                    ),
                ],
                gap="xs",
            ),
            dmc.Progress(id=f"{prefix}-progress", value=0, size="lg", striped=True, animated=True),
            dmc.Text("idle", id=f"{prefix}-progress-label", size="xs", c="dimmed"),
        ],
        gap=6,
    )


def background_options(prefix: str) -> dict[str, Any]:
    """`app.callback` keywords: background, progress into the bar, Cancel, buttons toggled."""
    return {
        "background": True,
        "interval": PROGRESS_INTERVAL_MS,
        "progress": [
            Output(f"{prefix}-progress", "value"),
            Output(f"{prefix}-progress-label", "children"),
        ],
        "progress_default": [0, "idle"],
        "running": [
            (Output(f"{prefix}-run", "disabled"), True, False),
            (Output(f"{prefix}-cancel", "disabled"), False, True),
        ],
        "cancel": [Input(f"{prefix}-cancel", "n_clicks")],
        "prevent_initial_call": True,
    }


def job_outcome(job: Callable[..., str], *args: Any, **kwargs: Any) -> dict[str, str]:
    """`{"run_id": job(...)}`, or `{"error": one line}` when it raises: the JSON a background
    callback hands to the page, which shows the error as an alert."""
    from workbench.ui.components import user_message

    try:
        return {"run_id": job(*args, **kwargs)}
    except Exception as err:  # noqa: BLE001 - reported on the page, the server keeps serving
        return {"error": user_message(err)}


@contextlib.contextmanager
def tqdm_progress(
    set_progress: Callable[[tuple[int, str]], None], label: str, *, min_interval: float = 0.2
) -> Iterator[None]:
    """Report every tqdm bar's position as `(percent, "label: n/total")` while inside.

    Patches `tqdm.std.tqdm.update` for the body only; meant for the forked job process,
    where nothing else shares the class.
    """
    import tqdm.std

    original = tqdm.std.tqdm.update
    last = [0.0]

    def update(bar: Any, n: float | None = 1) -> Any:
        out = original(bar, n)
        now = time.monotonic()
        total = bar.total or 0
        if total and (now - last[0] >= min_interval or bar.n >= total):
            last[0] = now
            set_progress((int(100 * bar.n / total), f"{label}: {bar.n:g}/{total:g}"))
        return out

    tqdm.std.tqdm.update = update
    try:
        yield
    finally:
        tqdm.std.tqdm.update = original


__all__ = ["background_options", "job_controls", "job_outcome", "manager", "tqdm_progress"]
