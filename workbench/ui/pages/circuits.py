"""Circuits page ("/circuits"): trace a task's circuit in the background, prune it live.

- Task, method and number of prompts; Run starts a background job (`circuit_runs.trace_job`)
  with a progress bar and Cancel; the run lands in the store and is reopened here by id.
- Graph view (`Circuit.plot`) with a |score| threshold slider: node and edge counts follow the
  slider while it moves, the graph redraws on release. The slider prunes to a connected
  circuit (edges on input -> output paths, `Circuit.prune`), so no node dangles.
- Faithfulness curve; ROC against the exhaustive-patching reference when one was requested.
- JSON export of the pruned circuit, and import of a circuit JSON file.

Thin: all numbers come from `circuits`; the session's current circuit is kept server-side.
Every input is checked (`workbench.ui.input_checks`): task, method, prompt count, threshold
in [0, 1], the job's run (a circuit run of this session) -> else one red alert. Drawn
figures are kept for the exports (`keep_figure`). Ids are prefixed `circuits-`.
"""

from __future__ import annotations

import base64
from typing import Any

import dash_mantine_components as dmc
from dash import Input, Output, State, ctx, dcc, html, no_update

from workbench.export import safe_filename
from workbench.ui import circuit_runs, jobs, selection, state
from workbench.ui import input_checks as check
from workbench.ui.components import (
    empty_figure,
    error_alert,
    figure_card,
    keep_figure,
    page_header,
    register_figure_export,
)
from workbench.ui.shared import TASKS

PAGE = {"path": "/circuits", "name": "Circuits", "title": "Circuits · Workbench", "order": 30}
METHODS = ["eap", "eap-ig", "activation", "path", "exhaustive", "acdc"]
GRAPHS = ("circuits-graph", "circuits-curve", "circuits-roc")
SLIDER_STEPS = 100


def layout(**query: str) -> Any:
    selected = selection.parse_query(query)
    model_name = selected.get("model", selection.DEFAULT_MODEL)
    controls = dmc.Group(
        [
            dmc.Select(
                id="circuits-task",
                label="Task",
                data=TASKS,
                value=selected.get("task") or "ioi",
                w=140,
            ),
            dmc.Select(id="circuits-method", label="Method", data=METHODS, value="eap", w=140),
            dmc.NumberInput(
                id="circuits-n",
                label="Prompts",
                value=16,
                min=1,
                max=circuit_runs.MAX_PROMPTS,
                w=100,
            ),
            dmc.Switch(id="circuits-reference", label="Exhaustive reference (ROC)", checked=False),
        ],
        align="flex-end",
    )
    io = dmc.Group(
        [
            dmc.Button("Circuit JSON", id="circuits-json", variant="default", size="xs"),
            dcc.Download(id="circuits-json-download"),
            dcc.Upload(
                dmc.Button("Import circuit JSON", variant="default", size="xs"),
                id="circuits-upload",
                accept=".json,application/json",
                max_size=3_000_000,  # below the server's 4 MiB body cap, base64 included
            ),
        ]
    )
    slider = dcc.Slider(
        id="circuits-threshold",
        min=0,
        max=1,
        step=1 / SLIDER_STEPS,
        value=0,
        marks={0: "0", 0.5: "0.5", 1: "max |score|"},
        tooltip={"placement": "bottom"},
    )
    return dmc.Stack(
        [
            selection.query_store("circuits", query),
            dcc.Store(id="circuits-job"),
            page_header("Circuits", "Trace which edges carry a task, then prune by |score|."),
            dmc.Text(["model ", dmc.Code(model_name)], size="sm"),
            controls,
            jobs.job_controls("circuits", run_label="Trace circuit"),
            html.Div(id="circuits-error"),
            dmc.Text("Threshold (fraction of the largest |score|)", size="sm", fw=600),
            slider,
            dmc.Text("no circuit yet", id="circuits-counts", size="sm"),
            io,
            figure_card("circuits-graph", "Circuit graph"),
            dmc.SimpleGrid(
                [
                    figure_card("circuits-curve", "Faithfulness curve"),
                    figure_card("circuits-roc", "ROC"),
                ],
                cols=2,
            ),
        ],
        gap="sm",
    )


def _current(session: str) -> dict[str, Any] | None:
    return state.get_result(session, "circuit")


def _fraction(value: Any) -> float:
    """The slider's threshold, checked: a number in [0, 1] (None, before any move, is 0)."""
    return 0.0 if value is None else check.number(value, "threshold", 0.0, 1.0)


def _pruned(data: dict[str, Any], fraction: float):
    """The circuit at the slider's threshold, connected (edges on input -> output paths only,
    `Circuit.prune`); at 0 the circuit as traced or imported."""
    circuit = data["circuit"]
    if not fraction:
        return circuit
    biggest = float(circuit.scores.abs().max()) if len(circuit.edges) else 0.0
    return circuit.prune(threshold=fraction * biggest, connected=True)


def _session_circuit(session: Any) -> dict[str, Any] | None:
    return _current(state.check_session(session))


def register_callbacks(app: Any) -> None:
    selection.register_writer(app, "circuits", {})
    for graph in GRAPHS:
        register_figure_export(app, graph)

    @app.callback(
        Output("circuits-job", "data"),
        Input("circuits-run", "n_clicks"),
        State("circuits-query", "data"),
        State("circuits-task", "value"),
        State("circuits-method", "value"),
        State("circuits-n", "value"),
        State("circuits-reference", "checked"),
        State("session-id", "data"),
        **jobs.background_options("circuits"),
    )
    def run_trace(set_progress, _clicks, query, task, method, n, reference, session) -> Any:
        try:
            options = {
                "session": state.check_session(session),
                "model_name": selection.model_and_prompt(query)[0],
                "task_name": check.choice(task, "task", TASKS),
                "method": check.choice(method, "method", METHODS),
                "n_prompts": check.whole(n, "prompts", circuit_runs.MAX_PROMPTS + 1, low=1),
                "reference": reference is True,
            }
        except ValueError as err:
            return {"error": str(err)}
        return jobs.job_outcome(circuit_runs.trace_job, set_progress, **options)

    @app.callback(
        Output("circuits-graph", "figure"),
        Output("circuits-curve", "figure"),
        Output("circuits-roc", "figure"),
        Output("circuits-error", "children"),
        Input("circuits-job", "data"),
        Input("circuits-upload", "contents"),
        Input("circuits-threshold", "value"),
        State("circuits-upload", "filename"),
        State("session-id", "data"),
    )
    def show_circuit(job, upload, fraction, filename, session) -> Any:
        try:
            session = state.check_session(session)
            fraction = _fraction(fraction)
            if ctx.triggered_id == "circuits-job" and job is not None:
                run_id = check.job_run_id(job, "trace")
                state.put_result(session, "circuit", circuit_runs.load_run(run_id, session=session))
            elif ctx.triggered_id == "circuits-upload" and upload is not None:
                state.put_result(session, "circuit", _imported(upload, filename))
            data = _current(session)
            if data is None:
                for graph in GRAPHS:
                    keep_figure(session, graph, None)
                blank = empty_figure("run a trace or import a circuit")
                return blank, blank, blank, None
            pruned = _pruned(data, fraction)
        except Exception as err:  # noqa: BLE001
            return no_update, no_update, no_update, error_alert(err, id="circuits-alert")
        curve = circuit_runs.curve_figure(data["curve"])
        roc = circuit_runs.roc_figure(data["roc"], data["auc"])
        graph = pruned.plot().update_layout(
            height=480, template="plotly_white", yaxis={"visible": False}
        )
        label = f"{pruned.model_name}_{pruned.task}_{pruned.method}"
        return (
            keep_figure(session, "circuits-graph", graph, label=label),
            keep_figure(session, "circuits-curve", curve, label=label)
            or empty_figure("no faithfulness curve"),
            keep_figure(session, "circuits-roc", roc, label=label)
            or empty_figure("no reference: switch on 'Exhaustive reference' to get a ROC"),
            None,
        )

    @app.callback(
        Output("circuits-counts", "children"),
        Output("circuits-error", "children", allow_duplicate=True),
        Input("circuits-threshold", "drag_value"),
        Input("circuits-graph", "figure"),
        State("session-id", "data"),
        prevent_initial_call="initial_duplicate",
    )
    def live_counts(fraction, _figure, session) -> Any:
        try:
            fraction = _fraction(fraction)
            data = _session_circuit(session)
            if data is None:
                return "no circuit yet", no_update
            pruned = _pruned(data, fraction)
        except ValueError as err:
            return "no circuit yet", error_alert(err, id="circuits-alert")
        total = len(pruned.edges)
        return (
            f"{pruned.n_edges} of {total} edges, {len(pruned.kept_nodes)} nodes "
            f"({data['circuit'].method} on {data['circuit'].task})"
        ), no_update

    @app.callback(
        Output("circuits-json-download", "data"),
        Output("circuits-error", "children", allow_duplicate=True),
        Input("circuits-json", "n_clicks"),
        State("circuits-threshold", "value"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def export_json(_clicks, fraction, session) -> Any:
        try:
            fraction = _fraction(fraction)
            data = _session_circuit(session)
            if data is None:
                raise ValueError("export: run a trace or import a circuit first")
            pruned = _pruned(data, fraction)
        except ValueError as err:
            return no_update, error_alert(err, id="circuits-alert")
        stem = f"circuit_{pruned.model_name}_{pruned.task}_{pruned.method}"
        name = safe_filename(stem.replace("/", "_").replace("\\", "_"), "json")
        return dcc.send_string(pruned.to_json(), filename=name), None


def _imported(contents: str, filename: str | None) -> dict[str, Any]:
    """An uploaded circuit JSON as the session's current circuit (ValueError if it is not)."""
    from circuits import Circuit

    filename = filename[:100] if isinstance(filename, str) else None
    try:
        _, encoded = contents.split(",", 1)
        circuit = Circuit.from_json(base64.b64decode(encoded))
    except Exception as err:
        raise ValueError(f"import: {filename or 'the file'} is not a circuit JSON ({err})") from err
    return {"run_id": None, "circuit": circuit, "curve": None, "roc": None, "auc": None}
