"""Circuit runs for the dashboard: the background job and the figures drawn from its result.

`trace_job(...)` runs in the forked background process: it traces the circuit
(`circuits.trace`), measures its faithfulness curve, optionally an exhaustive-patching
reference and the ROC against it, and saves everything as one run in the store (result JSON
plus `faithfulness` and `roc` tables). Only the run id travels back to the server.
`load_run(run_id, session=...)` reads it back, refusing a run that is not a circuit run this
browser session started (a forged job answer cannot open another session's run);
`curve_figure` / `roc_figure` draw the stored tables (the curve with its bootstrap band and
the current cut marked, the ROC with its AUC interval when stored); `cut_text` reads the
curve at the cut; `tasks_for(model_name)` gives the tasks that fit a model and its default.

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


def tasks_for(model_name: str) -> tuple[list[str], str]:
    """The tasks that fit `model_name` and the default among them: `similarity` for an
    encoder, the others for a decoder (every task, default ioi, when the model fails to load;
    the run reports that error)."""
    from workbench.tasks import TASKS, default_task_for

    try:
        model = state.open_model(model_name)
    except Exception:  # noqa: BLE001 - the trace reports the load error
        return list(TASKS), "ioi"
    fits = [t for t in TASKS if (t == "similarity") != model.is_causal]
    return fits, default_task_for(model)


def trace_job(
    set_progress: Callable[[tuple[int, str]], None],
    *,
    session: str,
    model_name: str,
    task_name: str,
    method: str,
    n_prompts: int,
    reference: bool,
    corruption: str | None = None,
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
    task_options = {"corruption": corruption} if task_name == "ioi" and corruption else {}
    task = make_task(task_name, model, n=n_prompts, **task_options)
    options = (
        {"progress": True}
        if "progress" in inspect.signature(method_function(method)).parameters
        else {}
    )
    with tqdm_progress(set_progress, f"tracing ({method})"):
        set_progress((5, f"tracing ({method})"))
        circuit = trace(model, task, method=method, **options)
    with tqdm_progress(set_progress, "faithfulness curve"):
        measured = faithfulness_curve(model, task, circuit, progress=True)
    curve = measured.to_frame()
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
        **task_options,
        "ci_level": measured.ci_level,
        "n_boot": measured.n_boot,
    }
    if detection is not None:
        config["roc_auc"] = detection.auc
        config["roc_auc_ci"] = list(detection.auc_ci) if detection.auc_ci else None
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
        "auc_ci": info.config.get("roc_auc_ci"),
        "config": dict(info.config),
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


def curve_point(curve: pd.DataFrame | None, n_edges: int) -> pd.Series | None:
    """The curve's row at the measured k nearest `n_edges` (the smaller k on a tie; None
    without a curve)."""
    if curve is None or not len(curve):
        return None
    distance = (curve["n_edges"] - n_edges).abs()
    return curve.loc[(distance * 2 + (curve["n_edges"] > n_edges)).idxmin()]


def band_text(level: Any, n_boot: Any) -> str:
    """`"95% bootstrap, B=200"` from a run's config values (defaults when missing)."""
    level = level if isinstance(level, int | float) else 0.95
    return f"{level:.0%} bootstrap, B={n_boot}" if n_boot else f"{level:.0%} bootstrap"


def cut_text(curve: pd.DataFrame | None, n_edges: int, config: dict[str, Any]) -> str:
    """One line: faithfulness of the top-k curve at the current cut, with its interval."""
    row = curve_point(curve, n_edges)
    if row is None:
        return "no faithfulness curve (an imported circuit has none)"
    text = f"faithfulness of the top {int(row['n_edges'])} edges: {row['faithfulness']:.3f}"
    if {"faithfulness_low", "faithfulness_high"} <= set(row.index):
        band = band_text(config.get("ci_level"), config.get("n_boot"))
        text += f" [{row['faithfulness_low']:.3f}, {row['faithfulness_high']:.3f}] ({band})"
    return text + f" - the curve point nearest the current cut of {n_edges} edges"


def curve_figure(
    curve: pd.DataFrame | None, cut: int | None = None, config: dict[str, Any] | None = None
) -> go.Figure | None:
    """The faithfulness-by-size line of a stored curve table (None without one): the line
    first, then its bootstrap band when the table has `faithfulness_low/high`, then the
    current cut (`cut` edges) as a dashed vertical line with a marker on the curve."""
    if curve is None:
        return None
    config = config or {}
    fig = go.Figure(
        go.Scatter(
            x=curve["n_edges"], y=curve["faithfulness"], mode="lines+markers", name="faithfulness"
        )
    )
    title = "Faithfulness of the top-k edges"
    if {"faithfulness_low", "faithfulness_high"} <= set(curve.columns):
        band = band_text(config.get("ci_level"), config.get("n_boot"))
        fig.add_scatter(
            x=curve["n_edges"],
            y=curve["faithfulness_high"],
            mode="lines",
            line={"width": 0},
            name="upper",
            showlegend=False,
            hoverinfo="skip",
        )
        fig.add_scatter(
            x=curve["n_edges"],
            y=curve["faithfulness_low"],
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor="rgba(99, 110, 250, 0.2)",
            name=f"band ({band})",
        )
        title += f" ({band} band)"
    row = curve_point(curve, cut) if cut is not None else None
    if row is not None:
        fig.add_vline(x=cut, line={"dash": "dash", "color": "gray"})
        fig.add_scatter(
            x=[row["n_edges"]],
            y=[row["faithfulness"]],
            mode="markers",
            marker={"size": 13, "symbol": "diamond", "color": "darkorange"},
            name=f"current cut ({cut} edges)",
            meta="cut",
        )
    fig.update_layout(
        title=title,
        xaxis={"title": "edges kept (by |score|)"},
        yaxis={"title": "faithfulness"},
        template="plotly_white",
        height=340,
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def roc_figure(
    roc: pd.DataFrame | None, auc: float | None, auc_ci: Any = None, band: str = ""
) -> go.Figure | None:
    """The ROC curve of a stored roc table with its AUC and, when stored, its bootstrap
    interval (None without a table)."""
    if roc is None:
        return None
    fig = go.Figure(go.Scatter(x=roc["fpr"], y=roc["tpr"], mode="lines", name="ROC"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot"}, name="chance"))
    fig.update_layout(
        title=_roc_title(auc, auc_ci, band),
        xaxis={"title": "false positive rate"},
        yaxis={"title": "true positive rate"},
        template="plotly_white",
        height=340,
    )
    return fig


def _roc_title(auc: float | None, auc_ci: Any, band: str) -> str:
    if auc is None:
        return "ROC"
    interval = ""
    if isinstance(auc_ci, list | tuple) and len(auc_ci) == 2:
        interval = f" [{auc_ci[0]:.3f}, {auc_ci[1]:.3f}] ({band})"
    return f"ROC against the exhaustive reference (AUC {auc:.3f}{interval})"


__all__ = [
    "band_text",
    "check_own_run",
    "curve_figure",
    "curve_point",
    "cut_text",
    "load_run",
    "roc_figure",
    "tasks_for",
    "trace_job",
]
