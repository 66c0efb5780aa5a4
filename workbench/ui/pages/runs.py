"""Runs page ("/runs"): the run store's history; reopen a run's figure, delete it, export it.

Thin: rows come from `RunStore.list_runs`, figures from the stored result's own `.plot()`
(never recomputed), tables from `RunStore.load_table`. By default only runs started from this
browser session are listed (the dashboard records the session id in each run's config); the
switch shows every run in the store (CLI runs included). Delete acts only on a listed run.
Ids are prefixed `runs-`.
"""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc
from dash import Input, Output, State, dcc, html, no_update

from workbench.ui import selection, state
from workbench.ui.components import (
    error_alert,
    figure_card,
    page_header,
    register_figure_export,
    register_table_export,
    table_buttons,
)
from workbench.ui.figures import import_result_modules

PAGE = {"path": "/runs", "name": "Runs", "title": "Runs · Attention Workbench", "order": 90}
SESSION_KEY = "dashboard_session"


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


def _listed(session: str | None, only_mine: bool, run_id: str | None) -> str:
    if not run_id or run_id not in {r.run_id for r in visible_runs(session, only_mine)}:
        raise ValueError(f"run: {run_id!r} is not among the listed runs")
    return run_id


def _listing(session: str | None, only_mine: bool) -> tuple[Any, list[dict[str, str]]]:
    """The runs table and the run picker's options."""
    runs = visible_runs(session, only_mine)
    options = [{"value": r.run_id, "label": f"{r.run_id} · {r.kind}"} for r in runs]
    return runs_table(runs), options


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
    def list_runs(only_mine: bool, _refresh: Any, session: str | None) -> Any:
        return _listing(session, bool(only_mine))

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

        store = state.run_store()
        try:
            run_id = _listed(session, bool(only_mine), run_id)
            if ctx.triggered_id == "runs-delete":
                store.delete_run(run_id)
                deleted = dmc.Text(f"deleted {run_id}", size="sm", id="runs-deleted")
                return no_update, deleted, *_listing(session, bool(only_mine))
            import_result_modules()
            figure = store.load_result(run_id).plot()
        except Exception as err:  # noqa: BLE001
            alert = error_alert(err, title="Cannot open that run")
            return no_update, alert, no_update, no_update
        opened = dmc.Text(f"opened {run_id}", size="sm", id="runs-opened")
        return figure, opened, no_update, no_update

    @app.callback(
        Output("runs-json-download", "data"),
        Input("runs-json", "n_clicks"),
        State("runs-pick", "value"),
        State("runs-mine", "checked"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def download_json(_clicks: Any, run_id: str | None, only_mine: bool, session: str | None):
        try:
            run_id = _listed(session, bool(only_mine), run_id)
            path = state.run_store().runs_dir / run_id / "result.json"
            return dcc.send_bytes(path.read_bytes(), filename=f"{run_id}.json")
        except (ValueError, OSError):
            return no_update

    def main_table(session: str | None, run_id: str | None, only_mine: bool):
        run_id = _listed(session, bool(only_mine), run_id)
        tables = state.run_store().get_run(run_id).tables
        if not tables:
            return None
        name = "main" if "main" in tables else tables[0]
        return f"{run_id}_{name}", state.run_store().load_table(run_id, name)

    register_table_export(
        app, "runs", main_table, State("runs-pick", "value"), State("runs-mine", "checked")
    )
