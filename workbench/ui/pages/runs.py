"""Runs page ("/runs"): the run store's history; reopen a run's figure, delete it, export it.

Thin: rows come from `RunStore.list_runs`, figures from the stored result's own `.plot()`
(never recomputed), tables from `RunStore.load_table`. By default only runs started from this
browser session are listed (the dashboard records the session id in each run's config); the
switch shows every run in the store (CLI runs included). Delete acts only on a listed run.
Ids are prefixed `runs-`.

Every callback checks its inputs (the switch must be a boolean, the session one we issued, the
run one that is listed) and answers bad ones, and store failures (an unreadable store folder, a
corrupt `result.json`), with the page's red alert, never an HTTP error. When the store had to
rebuild a damaged index, a yellow notice above the list says so.
"""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc
from dash import Input, Output, State, dcc, html, no_update

import analysis  # noqa: F401 - registers the analyses' result types for load_result
import circuits  # noqa: F401 - registers Circuit
from workbench.ui import selection, state
from workbench.ui.components import (
    error_alert,
    figure_card,
    keep_figure,
    page_header,
    register_figure_export,
    register_table_export,
    table_buttons,
)
from workbench.ui.shared import SESSION_KEY

PAGE = {"path": "/runs", "name": "Runs", "title": "Runs · Attention Workbench", "order": 90}


def _switch(only_mine: Any) -> bool:
    if not isinstance(only_mine, bool):
        raise ValueError(f"runs: the switch must be on or off, got {only_mine!r}"[:120])
    return only_mine


def visible_runs(session: str | None, only_mine: bool) -> list[Any]:
    """Published runs, newest first; with `only_mine`, those this session started."""
    runs = state.run_store().list_runs()[::-1]
    if only_mine:
        runs = [r for r in runs if session and r.config.get(SESSION_KEY) == session]
    return runs


def runs_table(runs: list[Any]) -> Any:
    head = dmc.TableThead(
        dmc.TableTr([dmc.TableTh(c) for c in ("Run", "Kind", "Model", "Created", "Tables")])
    )
    rows = [
        dmc.TableTr(
            [
                dmc.TableTd(dmc.Code(r.run_id)),
                dmc.TableTd(r.kind),
                dmc.TableTd(r.model),
                dmc.TableTd(r.created_at.strftime("%Y-%m-%d %H:%M:%S")),
                dmc.TableTd(", ".join(r.tables)),
            ],
            id=f"runs-row-{r.run_id}",
        )
        for r in runs
    ]
    if not rows:
        rows = [dmc.TableTr(html.Td("no runs yet", colSpan=5), id="runs-empty")]
    return dmc.Table([head, dmc.TableTbody(rows)], striped=True, withTableBorder=True)


def layout(**query: str) -> Any:
    controls = dmc.Group(
        [
            dmc.Switch(id="runs-mine", label="Only this browser session's runs", checked=True),
            dmc.Button("Refresh", id="runs-refresh", variant="light", size="xs"),
        ]
    )
    actions = dmc.Group(
        [
            dmc.Select(id="runs-pick", label="Run", data=[], w=300, searchable=True),
            dmc.Button("Open", id="runs-open"),
            dmc.Button("Delete", id="runs-delete", color="red", variant="light"),
            dmc.Button("Result JSON", id="runs-json", variant="default"),
            table_buttons("runs"),
            dcc.Download(id="runs-json-download"),
        ],
        align="flex-end",
    )
    return dmc.Stack(
        [
            selection.query_store("runs", query),
            page_header("Runs", "Analyses saved in the run store: reopen, delete or export."),
            controls,
            html.Div(id="runs-list"),
            actions,
            html.Div(id="runs-status"),
            figure_card("runs-figure", "Stored figure"),
        ],
        gap="md",
    )


def _listed(session: Any, only_mine: Any, run_id: Any) -> str:
    session = state.check_session(session)
    if not isinstance(run_id, str) or not run_id:
        raise ValueError("run: choose one of the listed runs first")
    if run_id not in {r.run_id for r in visible_runs(session, _switch(only_mine))}:
        raise ValueError(f"run: {run_id[:80]!r} is not among the listed runs")
    return run_id


def repaired_notice() -> Any:
    """A yellow notice when the store rebuilt a damaged or incomplete index (else None)."""
    message = state.run_store().repaired
    if not message:
        return None
    return dmc.Alert(
        message, title="Run index rebuilt", color="yellow", variant="light", id="runs-repaired"
    )


def _listing(session: Any, only_mine: Any) -> tuple[Any, list[dict[str, str]]]:
    """The runs table (under the repair notice, if any) and the run picker's options; bad
    input or an unusable store gives the page's alert and no options."""
    try:
        runs = visible_runs(state.check_session(session), _switch(only_mine))
        notice = repaired_notice()
    except Exception as err:  # noqa: BLE001 - shown to the user
        return error_alert(err, title="Cannot list the runs", id="runs-list-alert"), []
    options = [{"value": r.run_id, "label": f"{r.run_id} · {r.kind}"} for r in runs]
    return [notice, runs_table(runs)] if notice else runs_table(runs), options


def register_callbacks(app: Any) -> None:
    selection.register_writer(app, "runs", {})
    register_figure_export(app, "runs-figure")

    @app.callback(
        Output("runs-list", "children"),
        Output("runs-pick", "data"),
        Input("runs-mine", "checked"),
        Input("runs-refresh", "n_clicks"),
        State("session-id", "data"),
    )
    def list_runs(only_mine: Any, _refresh: Any, session: Any) -> Any:
        return _listing(session, only_mine)

    @app.callback(
        Output("runs-figure", "figure"),
        Output("runs-status", "children"),
        Output("runs-list", "children", allow_duplicate=True),
        Output("runs-pick", "data", allow_duplicate=True),
        Input("runs-open", "n_clicks"),
        Input("runs-delete", "n_clicks"),
        State("runs-pick", "value"),
        State("runs-mine", "checked"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def open_or_delete(_open: Any, _delete: Any, run_id: str | None, only_mine: bool, session):
        from dash import ctx

        try:
            store = state.run_store()
            run_id = _listed(session, only_mine, run_id)
            if ctx.triggered_id == "runs-delete":
                store.delete_run(run_id)
                deleted = dmc.Text(f"deleted {run_id}", size="sm", id="runs-deleted")
                return no_update, deleted, *_listing(session, only_mine)
            figure = store.load_result(run_id).plot()
        except Exception as err:  # noqa: BLE001
            alert = error_alert(err, title="Cannot open that run")
            return no_update, alert, no_update, no_update
        opened = dmc.Text(f"opened {run_id}", size="sm", id="runs-opened")
        keep_figure(session, "runs-figure", figure, label=run_id)  # what its export renders
        return figure, opened, no_update, no_update

    @app.callback(
        Output("runs-json-download", "data"),
        Output("runs-status", "children", allow_duplicate=True),
        Input("runs-json", "n_clicks"),
        State("runs-pick", "value"),
        State("runs-mine", "checked"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def download_json(_clicks: Any, run_id: str | None, only_mine: bool, session: str | None):
        try:
            run_id = _listed(session, only_mine, run_id)
            path = state.run_store().runs_dir / run_id / "result.json"
            data = dcc.send_bytes(path.read_bytes(), filename=f"{run_id}.json")
        except Exception as err:  # noqa: BLE001 - shown to the user
            return no_update, error_alert(err, title="Cannot export that run")
        return data, no_update

    def main_table(session: str | None, run_id: Any, only_mine: Any):
        run_id = _listed(session, only_mine, run_id)
        tables = state.run_store().get_run(run_id).tables
        if not tables:
            return None
        name = "main" if "main" in tables else tables[0]
        return f"{run_id}_{name}", state.run_store().load_table(run_id, name)

    register_table_export(
        app, "runs", main_table, State("runs-pick", "value"), State("runs-mine", "checked")
    )
