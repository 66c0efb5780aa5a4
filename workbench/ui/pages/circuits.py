"""Circuits page ("/circuits"): trace a task's circuit in the background, prune it live.

- Task (only the tasks that fit the model: `circuit_runs.tasks_for`; IOI adds its corruption,
  s2 / s1s2 / abc), method (every `circuits.tracing.METHODS` entry, AtP* included) and number
  of prompts; Run starts a background job (`circuit_runs.trace_job`) with a progress bar and
  Cancel; the run lands in the store and is reopened here by id.
- The cut: the top N edges (default 20), or, with the |score| threshold slider above 0, the
  edges at or above that fraction of the largest |score|; either way pruned to a connected
  circuit (edges on input -> output paths, `Circuit.prune`), so no node dangles. Counts follow
  the slider while it moves; the graph redraws on release (`updatemode="mouseup"`).
- Graph view (`Circuit.plot`: legend for sign and width, q/k/v ports as three anchors with
  solid/dashed/dotted lines) with a caption for the node notation; clicking a head gives a
  link that opens it on the Heads page.
- Faithfulness curve with its bootstrap band and the current cut marked, and one line giving
  the curve's faithfulness and interval at the cut; ROC (AUC with its interval when stored)
  against the exhaustive-patching reference when one was requested.
- JSON export of the pruned circuit, and import of a circuit JSON file.

Thin: all numbers come from `circuits`; the session's current circuit is kept server-side.
Every input is checked (`workbench.ui.input_checks`): task, method, prompt count, threshold
in [0, 1], top N, corruption, a clicked node, the job's run (a circuit run of this session) -> else one red alert. Drawn
figures are kept for the exports (`keep_figure`). Ids are prefixed `circuits-`.
"""

from __future__ import annotations

import base64
import urllib.parse
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
METHODS = ["eap", "eap-ig", "atp*", "activation", "path", "exhaustive", "acdc"]
CORRUPTIONS = ["s2", "s1s2", "abc"]
GRAPHS = ("circuits-graph", "circuits-curve", "circuits-roc")
SLIDER_STEPS = 100
DEFAULT_TOP = 20
MAX_TOP = 100_000
CAPTION = (
    "Nodes: input (token + position embeddings), L1H2 (layer 1, head 2), MLP1 (layer 1's "
    "MLP), output (the logits, or the task's readout). Edges run left to right; an edge into "
    "a head lands on its q (upper, solid), k (middle, dashed) or v (lower, dotted) port. "
    "Colour is the sign of the score, width its magnitude. Click a head to open it on the "
    "Heads page."
)


def layout(**query: str) -> Any:
    selected = selection.parse_query(query)
    settings = selection.parse_page("circuits", query)
    model_name = selected.get("model", selection.DEFAULT_MODEL)
    tasks, default = circuit_runs.tasks_for(model_name)
    task = selected.get("task") if selected.get("task") in tasks else default
    controls = dmc.Group(
        [
            dmc.Select(id="circuits-task", label="Task", data=tasks, value=task, w=140),
            html.Div(
                dmc.Select(
                    id="circuits-corruption",
                    label="IOI corruption",
                    data=CORRUPTIONS,
                    value=settings.get("corruption", "s2"),
                    w=120,
                ),
                id="circuits-corruption-box",
                style=_shown(task == "ioi"),
            ),
            dmc.Select(
                id="circuits-method",
                label="Method",
                data=METHODS,
                value=settings.get("method", "eap"),
                w=140,
            ),
            dmc.NumberInput(
                id="circuits-n",
                label="Prompts",
                value=settings.get("n", 16),
                min=1,
                max=circuit_runs.MAX_PROMPTS,
                w=100,
            ),
            dmc.Switch(
                id="circuits-reference",
                label="Exhaustive reference (ROC)",
                checked=settings.get("reference", False),
            ),
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
        value=settings.get("threshold", 0),
        drag_value=settings.get("threshold", 0),
        marks={0: "0 (top N)", 0.5: "0.5", 1: "max |score|"},
        tooltip={"placement": "bottom"},
        updatemode="mouseup",
    )
    top = dmc.NumberInput(
        id="circuits-top",
        label="Top N edges (slider at 0; empty = all)",
        value=DEFAULT_TOP,
        min=0,
        max=MAX_TOP,
        w=260,
    )
    return dmc.Stack(
        [
            selection.query_store("circuits", query),
            dcc.Store(id="circuits-job", data=_linked_run(settings)),
            page_header("Circuits", "Trace which edges carry a task, then prune by |score|."),
            dmc.Text(["model ", dmc.Code(model_name)], size="sm"),
            controls,
            jobs.job_controls("circuits", run_label="Trace circuit"),
            html.Div(id="circuits-error"),
            top,
            dmc.Text(
                "Threshold (fraction of the largest |score|; above 0 it replaces the top N)",
                size="sm",
                fw=600,
            ),
            slider,
            dmc.Text("no circuit yet", id="circuits-counts", size="sm"),
            dmc.Text("", id="circuits-faithfulness", size="sm"),
            io,
            figure_card("circuits-graph", "Circuit graph"),
            dmc.Text(CAPTION, id="circuits-caption", size="xs", c="dimmed"),
            html.Div(id="circuits-node-link"),
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


def _linked_run(settings: dict[str, Any]) -> dict[str, str] | None:
    """The job answer a `run=<id>` link stands for (the run is opened, session-checked, by
    `show_circuit` on the page's first call), or None."""
    return {"run_id": settings["run"]} if "run" in settings else None


def _current(session: str) -> dict[str, Any] | None:
    return state.get_result(session, "circuit")


def _shown(visible: bool) -> dict[str, str]:
    return {} if visible else {"display": "none"}


def _fraction(value: Any) -> float:
    """The slider's threshold, checked: a number in [0, 1] (None, before any move, is 0)."""
    return 0.0 if value is None else check.number(value, "threshold", 0.0, 1.0)


def _top(value: Any) -> int | None:
    """The top-N input, checked: a whole number in 0..MAX_TOP, or None (cleared: all)."""
    return check.optional_whole(value, "top N edges", MAX_TOP + 1)


def _pruned(data: dict[str, Any], fraction: float, top: int | None):
    """The current cut, connected (edges on input -> output paths only, `Circuit.prune`): the
    slider's threshold when above 0, else the top `top` edges (None: the circuit as traced
    or imported). An imported circuit that is already pruned keeps its cut at slider 0."""
    circuit = data["circuit"]
    if not fraction and circuit.n_edges < len(circuit.edges):
        return circuit  # an imported, already pruned circuit: its own cut until the slider moves
    if fraction:
        biggest = float(circuit.scores.abs().max()) if len(circuit.edges) else 0.0
        return circuit.prune(threshold=fraction * biggest, connected=True)
    if top is None:
        return circuit
    return circuit.prune(top_n=min(top, len(circuit.edges)), connected=True)


def _session_circuit(session: Any) -> dict[str, Any] | None:
    return _current(state.check_session(session))


def _stored_top(session: str) -> int | None:
    """The top-N cut last set on this session's page (DEFAULT_TOP until it is changed)."""
    stored = state.get_result(session, "circuit-top")
    return stored["top"] if isinstance(stored, dict) else DEFAULT_TOP


def _draw(session: str, fraction: float, top: int | None) -> tuple[Any, Any, Any, Any]:
    """Graph, curve and ROC figures of the session's circuit at the current cut."""
    data = _current(session)
    if data is None:
        for graph in GRAPHS:
            keep_figure(session, graph, None)
        blank = empty_figure("run a trace or import a circuit")
        return blank, blank, blank, None
    pruned = _pruned(data, fraction, top)
    config = data.get("config") or {}
    curve = circuit_runs.curve_figure(data["curve"], pruned.n_edges, config)
    band = circuit_runs.band_text(config.get("ci_level"), config.get("n_boot"))
    roc = circuit_runs.roc_figure(data["roc"], data["auc"], data.get("auc_ci"), band)
    graph = pruned.plot().update_layout(template="plotly_white", yaxis={"visible": False})
    label = f"{pruned.model_name}_{pruned.task}_{pruned.method}"
    return (
        keep_figure(session, "circuits-graph", graph, label=label),
        keep_figure(session, "circuits-curve", curve, label=label)
        or empty_figure("no faithfulness curve"),
        keep_figure(session, "circuits-roc", roc, label=label)
        or empty_figure("no reference: switch on 'Exhaustive reference' to get a ROC"),
        None,
    )


def _node_link(click: Any, query: Any) -> Any:
    """A link opening the clicked head on the Heads page (a note for other nodes; nothing for
    a click on an edge)."""
    from circuits.graph import parse_node

    point = check.event_point(click, "node")
    name = point.get("customdata")
    if name is None:
        return no_update
    if not isinstance(name, str) or len(name) > 20:
        raise ValueError(f"node: {str(name)[:20]!r} is not a node of the circuit graph")
    node = parse_node(name)
    if node.kind != "head":
        return dmc.Text(f"{name} is not a head; the Heads page shows heads.", size="sm")
    opening = check.mapping(query, "selection")
    target = selection.clean({**opening, "layer": node.layer, "head": node.head})
    href = "/heads?" + urllib.parse.urlencode(target)
    return dmc.Anchor(f"Open {name} on the Heads page", href=href, id="circuits-head-link")


def register_callbacks(app: Any) -> None:
    selection.register_writer(
        app,
        "circuits",
        {
            "task": ("circuits-task", "value"),
            "method": ("circuits-method", "value"),
            "corruption": ("circuits-corruption", "value"),
            "n": ("circuits-n", "value"),
            "reference": ("circuits-reference", "checked"),
            "threshold": ("circuits-threshold", "value"),
            "run": ("circuits-job", "data"),
        },
    )
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
        State("circuits-corruption", "value"),
        State("session-id", "data"),
        **jobs.background_options("circuits"),
    )
    def run_trace(
        set_progress, _clicks, query, task, method, n, reference, corruption, session
    ) -> Any:
        try:
            task = check.choice(task, "task", TASKS)
            options = {
                "session": state.check_session(session),
                "model_name": selection.model_and_prompt(query)[0],
                "task_name": task,
                "method": check.choice(method, "method", METHODS),
                "n_prompts": check.whole(n, "prompts", circuit_runs.MAX_PROMPTS + 1, low=1),
                "reference": reference is True,
                "corruption": check.choice(corruption, "corruption", CORRUPTIONS)
                if task == "ioi"
                else None,
            }
        except ValueError as err:
            return {"error": str(err)}
        return jobs.job_outcome(circuit_runs.trace_job, set_progress, **options)

    @app.callback(
        Output("circuits-corruption-box", "style"),
        Input("circuits-task", "value"),
    )
    def corruption_box(task) -> Any:
        return _shown(task == "ioi")

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
            opening = ctx.triggered_id is None  # the first call: a `run=` link's job store
            if (opening or ctx.triggered_id == "circuits-job") and job is not None:
                run_id = check.job_run_id(job, "trace")
                state.put_result(session, "circuit", circuit_runs.load_run(run_id, session=session))
            elif ctx.triggered_id == "circuits-upload" and upload is not None:
                state.put_result(session, "circuit", _imported(upload, filename))
            return _draw(session, fraction, _stored_top(session))
        except Exception as err:  # noqa: BLE001
            return no_update, no_update, no_update, error_alert(err, id="circuits-alert")

    @app.callback(
        Output("circuits-graph", "figure", allow_duplicate=True),
        Output("circuits-curve", "figure", allow_duplicate=True),
        Output("circuits-roc", "figure", allow_duplicate=True),
        Output("circuits-error", "children", allow_duplicate=True),
        Output("circuits-top", "error"),
        Input("circuits-top", "value"),
        State("circuits-threshold", "value"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def apply_top(top, fraction, session) -> Any:
        try:
            session = state.check_session(session)
            top = _top(top)
            state.put_result(session, "circuit-top", {"top": top})
            return (*_draw(session, _fraction(fraction), top), None)
        except Exception as err:  # noqa: BLE001
            alert = error_alert(err, id="circuits-alert")
            return no_update, no_update, no_update, alert, str(err)[:200]

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
            pruned = _pruned(data, fraction, _stored_top(state.check_session(session)))
        except ValueError as err:
            return "no circuit yet", error_alert(err, id="circuits-alert")
        total = len(pruned.edges)
        return (
            f"{pruned.n_edges} of {total} edges, {len(pruned.kept_nodes)} nodes "
            f"({data['circuit'].method} on {data['circuit'].task})"
        ), no_update

    @app.callback(
        Output("circuits-faithfulness", "children"),
        Input("circuits-graph", "figure"),
        State("circuits-threshold", "value"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def cut_faithfulness(_figure, fraction, session) -> Any:
        try:
            data = _session_circuit(session)
            if data is None:
                return ""
            pruned = _pruned(data, _fraction(fraction), _stored_top(state.check_session(session)))
        except ValueError as err:
            return f"faithfulness at the cut: {err}"
        return circuit_runs.cut_text(data["curve"], pruned.n_edges, data.get("config") or {})

    @app.callback(
        Output("circuits-node-link", "children"),
        Output("circuits-error", "children", allow_duplicate=True),
        Input("circuits-graph", "clickData"),
        State("circuits-query", "data"),
        prevent_initial_call=True,
    )
    def open_node(click, query) -> Any:
        try:
            return _node_link(click, query), no_update
        except ValueError as err:
            return None, error_alert(err, id="circuits-alert")

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
            pruned = _pruned(data, fraction, _stored_top(state.check_session(session)))
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
