"""Background jobs for long analyses: Dash background callbacks with progress and cancel.

`manager()` is the app's `DiskcacheManager`; `job_controls(prefix)` lays out Run, Cancel, a
progress bar and its label; `background_options(app, prefix)` gives the keyword arguments
that turn an `app.callback` into a cancellable background callback reporting into them.
`tqdm_progress(set_progress, label)` forwards the library's own tqdm bars to that progress
bar, step by step, and keeps them off the server's stderr (progress belongs in the page), so
analyses need no dashboard-specific hooks.

The progress label is the job's visible state. `register_job_state(app)` (called by
`create_app`) adds, for every background callback with a `<prefix>-cancel` button:
- on Cancel, the truthful outcome: "cancelled" (the job was running and was stopped),
  "finished before cancel" (its process had already ended; its result still arrives) or
  "nothing running" (no job of this browser tab was in flight);
- when the job's answer (`<prefix>-job`) arrives: "finished" or "failed: <one line>".
`JobManager.terminate_job` records which case a cancelled job was in, atomically, so Dash's own
cancel callback and ours agree whichever runs first.

Caveats (Dash's DiskcacheManager): a job runs in a forked process, so
- it sees the models loaded before the fork (and loads others privately);
- its return value is pickled: return JSON-ready values, and hand results back through the
  run store (the job saves, the server loads by run id);
- Cancel terminates the process; a run it was writing stays 'running' until the store's
  `cleanup()` marks it abandoned (its writer pid is dead);
- torch's OpenMP thread pool does not survive a fork: a child that computes with the
  parent's pool size deadlocks in its first parallel op once the server has run any
  multi-threaded torch op. Every forked child therefore sets torch to one thread before
  it runs anything (`_one_torch_thread_in_child`, registered at import).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import dash_mantine_components as dmc
from dash import DiskcacheManager, Input, Output, callback_context, no_update

PROGRESS_INTERVAL_MS = 250
IDLE = "idle"
NOTHING_RUNNING = "nothing running"
CANCELLED = "cancelled"
FINISHED_FIRST = "finished before cancel"
FINISHED = "finished"


class JobManager(DiskcacheManager):
    """Dash's DiskcacheManager, remembering how each job it was asked to stop ended.

    A job marks itself done (under the cache's lock) the moment its function returns, just
    before Dash stores its answer; `terminate_job` decides under the same lock, so a job is
    either "cancelled" (killed before it was done: no answer) or "finished before cancel"
    (left to store its answer, which the page then shows).
    """

    def make_job_fn(self, fn: Callable[..., Any], progress: Any, key: Any = None) -> Any:
        """Dash's job function around `fn`, which also marks the job done when `fn` returns."""
        handle = self.handle

        @functools.wraps(fn)
        def marked(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                with handle.transact():
                    handle.set(_key("done", os.getpid()), True, expire=3600)

        return super().make_job_fn(marked, progress, key)

    def call_job_fn(self, key: Any, job_fn: Any, args: Any, context: Any) -> Any:
        """Start the job; forget any marks an earlier process with the same id left (before
        the id is handed to the page, so no Cancel can name it yet)."""
        job = super().call_job_fn(key, job_fn, args, context)
        if job is not None:
            with self.handle.transact():
                self.handle.delete(_key("outcome", job))
                if self.job_running(job):
                    self.handle.delete(_key("done", job))
        return job

    def terminate_job(self, job: Any) -> None:
        """Stop `job` (a process id) unless it is already done; the first call for a job
        records which it was, later ones keep that."""
        if job is None:
            return
        with self.handle.transact():
            outcome = self.handle.get(_key("outcome", job))
            if outcome is None:
                done = self.handle.get(_key("done", job)) or not self.job_running(job)
                outcome = FINISHED_FIRST if done else CANCELLED
                self.handle.set(_key("outcome", job), outcome, expire=3600)
            if outcome == CANCELLED or not self.job_running(job):
                super().terminate_job(job)

    def cancel_outcome(self, job: Any) -> str | None:
        """What `terminate_job(job)` found, or None if it was never asked to stop `job`."""
        return self.handle.get(_key("outcome", job))


def _one_torch_thread_in_child() -> None:
    """In a forked child, run torch on one thread: the parent's OpenMP pool is gone there."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


os.register_at_fork(after_in_child=_one_torch_thread_in_child)


def _key(what: str, job: Any) -> str:
    return f"workbench-job-{what}-{int(job)}"


def manager(folder: str | None = None) -> JobManager:
    """A JobManager over `folder` (default: a fresh temporary folder)."""
    import diskcache

    folder = folder or tempfile.mkdtemp(prefix="workbench-jobs-")
    return JobManager(diskcache.Cache(folder), expire=3600)


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
            dmc.Text(IDLE, id=f"{prefix}-progress-label", size="xs", c="dimmed"),
        ],
        gap=6,
    )


def background_options(prefix: str) -> dict[str, Any]:
    """`app.callback` keywords: background, progress into the bar, Cancel, buttons toggled.

    No `progress_default`: Dash would write it over the label when the job ends or is
    cancelled, after `register_job_state` has said which it was."""
    return {
        "background": True,
        "interval": PROGRESS_INTERVAL_MS,
        "progress": [
            Output(f"{prefix}-progress", "value"),
            Output(f"{prefix}-progress-label", "children"),
        ],
        "running": [
            (Output(f"{prefix}-run", "disabled"), True, False),
            (Output(f"{prefix}-cancel", "disabled"), False, True),
        ],
        "cancel": [Input(f"{prefix}-cancel", "n_clicks")],
        "prevent_initial_call": True,
    }


def register_job_state(app: Any) -> list[str]:
    """Show each background job's state in its progress label (see the module docstring);
    returns the job prefixes found (background callbacks with a `<prefix>-cancel` input)."""
    prefixes = sorted(
        {
            str(c.component_id).removesuffix("-cancel")
            for spec in app.callback_map.values()
            for c in (spec.get("background") or {}).get("cancel_inputs", [])
            if str(c.component_id).endswith("-cancel")
        }
    )
    for prefix in prefixes:
        app.callback(
            Output(f"{prefix}-progress-label", "children", allow_duplicate=True),
            Output(f"{prefix}-progress", "value", allow_duplicate=True),
            Input(f"{prefix}-cancel", "n_clicks"),
            prevent_initial_call=True,
        )(_cancel_state)
        app.callback(
            Output(f"{prefix}-progress-label", "children", allow_duplicate=True),
            Output(f"{prefix}-progress", "value", allow_duplicate=True),
            Input(f"{prefix}-job", "data"),
            prevent_initial_call=True,
        )(_finished_state)
    return prefixes


def _cancel_state(_clicks: Any) -> tuple[str, Any]:
    """The label after Cancel: the outcome for the jobs this press asked to stop."""
    from dash import _callback, _callback_signing

    signed = callback_context.args.getlist("cancelJob") if callback_context.args else []
    secret = _callback._get_signing_secret()
    scope = _callback_signing.job_scope(_callback.get_request_end_id(secret))
    job_ids = [j for j in (_callback_signing.unsign(secret, scope, s) for s in signed) if j]
    if not job_ids:
        return NOTHING_RUNNING, no_update
    executor = _callback.context_value.get().background_callback_manager
    outcomes = []
    for job in job_ids:
        executor.terminate_job(job)  # idempotent: Dash's own cancel callback does the same
        outcomes.append(executor.cancel_outcome(job) or CANCELLED)
    if CANCELLED in outcomes:
        return CANCELLED, 0
    return FINISHED_FIRST, no_update


def _finished_state(answer: Any) -> tuple[str, Any]:
    """The label once a job's answer arrives: "finished", or "failed: <its error>"."""
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        return f"failed: {answer['error']}", 0
    if isinstance(answer, dict) and "run_id" in answer:
        return FINISHED, 100
    return no_update, no_update


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

    Every step is reported, at most one per `min_interval` seconds (the last step always).
    Patches `tqdm.std.tqdm` for the body only (bars update on every step, `display` prints
    nothing: no bar on stderr); meant for the forked job process, where nothing else shares
    the class.
    """
    import tqdm.std

    cls = tqdm.std.tqdm
    saved = {name: getattr(cls, name) for name in ("__init__", "update", "display")}
    last = [0.0]

    def init(bar: Any, *args: Any, **kwargs: Any) -> None:
        saved["__init__"](bar, *args, **kwargs)
        # tqdm's iterator calls `update` only every `mininterval` seconds; make it every step
        bar.mininterval, bar.miniters, bar.dynamic_miniters = 0, 1, False

    def update(bar: Any, n: float | None = 1) -> Any:
        out = saved["update"](bar, n)
        now = time.monotonic()
        total = bar.total or 0
        if total and (now - last[0] >= min_interval or bar.n >= total):
            last[0] = now
            set_progress((int(100 * bar.n / total), f"{label}: {bar.n:g}/{total:g}"))
        return out

    cls.__init__, cls.update = init, update
    cls.display = lambda bar, msg=None, pos=None: None  # the page shows progress, not stderr
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(cls, name, value)


__all__ = [
    "JobManager",
    "background_options",
    "job_controls",
    "job_outcome",
    "manager",
    "register_job_state",
    "tqdm_progress",
]
