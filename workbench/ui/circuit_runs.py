"""Circuit runs for the dashboard: the background job and the figures drawn from its result.

`trace_job(...)` runs in the forked background process: it traces the circuit
(`circuits.trace`), measures its faithfulness curve, optionally an exhaustive-patching
reference and the ROC against it, and saves everything as one run in the store (result JSON
plus `faithfulness` and `roc` tables). Only the run id travels back to the server.
`load_run(run_id, session=...)` reads it back, refusing a run that is not a circuit run this
browser session started (a forged job answer cannot open another session's run);
`curve_figure` / `roc_figure` draw the stored tables.

Caveat: progress comes from the library's own tqdm bars (`jobs.tqdm_progress`), so stages
without a bar (tracing with EAP) show only their stage label.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from workbench.ui import state
from workbench.ui.jobs import tqdm_progress
from workbench.ui.shared import SESSION_KEY

MAX_PROMPTS = 256


def trace_job(
    set_progress: Callable[[tuple[int, str]], None],
    *,
    session: str,
    model_name: str,
    task_name: str,
    method: str,
    n_prompts: int,
    reference: bool,
) -> str:
    """Trace, evaluate and store one circuit; returns the run id (raises ValueError on bad
    input, which the page shows)."""
    import inspect

    from circuits import (
        exhaustive_patching,
        faithfulness_curve,
        reference_circuit,
        roc,
        trace,
    )
    from circuits.tracing import method_function
    from workbench.tasks import make_task

    state.check_session(session)
    if not isinstance(n_prompts, int) or not 1 <= n_prompts <= MAX_PROMPTS:
        raise ValueError(f"prompts: {n_prompts!r} is not a number of prompts in 1..{MAX_PROMPTS}")
    set_progress((2, "loading model and task"))
    model = state.open_model(model_name)
    task = make_task(task_name, model, n=n_prompts)
    options = (
        {"progress": True}
        if "progress" in inspect.signature(method_function(method)).parameters
        else {}
    )
    with tqdm_progress(set_progress, f"tracing ({method})"):
        set_progress((5, f"tracing ({method})"))
        circuit = trace(model, task, method=method, **options)
    with tqdm_progress(set_progress, "faithfulness curve"):
        curve = faithfulness_curve(model, task, circuit, progress=True).to_frame()
    detection = None
    if reference:
        with tqdm_progress(set_progress, "exhaustive reference"):
            exact = (
                circuit
                if method == "exhaustive"
                else exhaustive_patching(model, task, progress=True)
            )
        ref = reference_circuit(exact, gap=task.summary(model)["gap"])
        detection = roc(circuit, ref)
    set_progress((99, "saving"))
    config = {
        "task": task_name,
        "method": method,
        "n_prompts": n_prompts,
        "reference": bool(reference),
        SESSION_KEY: session,
    }
    if detection is not None:
        config["roc_auc"] = detection.auc
    with state.run_store().begin_run(kind=circuit.kind, model=model.name, config=config) as run:
        run.write_result(circuit)
        run.write_table("faithfulness", curve)
        if detection is not None:
            run.write_table("roc", detection.to_frame())
    return run.run_id


def load_run(run_id: str, *, session: str | None = None) -> dict[str, Any]:
    """A stored circuit run: `circuit`, `curve`, `roc` (None without a reference), `auc`.

    With `session`, only a circuit run started by that session (`ValueError` otherwise).
    """
    from circuits import Circuit  # importing circuits registers the Circuit result type

    store = state.run_store()
    if session is not None:
        check_own_run(run_id, Circuit.kind, session)
    info = store.get_run(run_id)
    return {
        "run_id": run_id,
        "circuit": store.load_result(run_id),
        "curve": store.load_table(run_id, "faithfulness")
        if "faithfulness" in info.tables
        else None,
        "roc": store.load_table(run_id, "roc") if "roc" in info.tables else None,
        "auc": info.config.get("roc_auc"),
    }


def check_own_run(run_id: Any, kind: str, session: str) -> str:
    """`run_id` if it names a `kind` run this session started (`ValueError` otherwise, without
    saying whether some other run of that id exists)."""
    refusal = f"run: {str(run_id)[:80]!r} is not a {kind} run of this session"
    if not isinstance(run_id, str):
        raise ValueError(refusal)
    try:
        info = state.run_store().get_run(run_id)
    except (KeyError, ValueError, OSError) as err:
        raise ValueError(refusal) from err
    if info.kind != kind or info.config.get(SESSION_KEY) != state.check_session(session):
        raise ValueError(refusal)
    return run_id


def curve_figure(curve: pd.DataFrame | None) -> go.Figure | None:
    """The faithfulness-by-size line of a stored curve table (None without one)."""
    if curve is None:
        return None
    fig = go.Figure(
        go.Scatter(
            x=curve["n_edges"], y=curve["faithfulness"], mode="lines+markers", name="faithfulness"
        )
    )
    fig.update_layout(
        title="Faithfulness of the top-k edges",
        xaxis={"title": "edges kept (by |score|)"},
        yaxis={"title": "faithfulness"},
        template="plotly_white",
        height=340,
    )
    return fig


def roc_figure(roc: pd.DataFrame | None, auc: float | None) -> go.Figure | None:
    """The ROC curve of a stored roc table with its AUC (None without one)."""
    if roc is None:
        return None
    fig = go.Figure(go.Scatter(x=roc["fpr"], y=roc["tpr"], mode="lines", name="ROC"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot"}, name="chance"))
    fig.update_layout(
        title=f"ROC against the exhaustive reference (AUC {auc:.3f})" if auc is not None else "ROC",
        xaxis={"title": "false positive rate"},
        yaxis={"title": "true positive rate"},
        template="plotly_white",
        height=340,
    )
    return fig


__all__ = ["check_own_run", "curve_figure", "load_run", "roc_figure", "trace_job"]
