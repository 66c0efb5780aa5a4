"""Runs page ("/runs"): the run store's history; reopen a run's figure, delete it, export it.

Thin: rows come from `RunStore.list_runs`, figures from the stored result's own `.plot()`
(never recomputed), tables from `RunStore.load_table`. By default only runs started from this
browser session are listed (the dashboard records the session id in each run's config); the
switch shows every run in the store (CLI runs included). Delete acts only on a listed run, and
only after a second click on "Delete for good" (Cancel, Open or another run forgets it).
Ids are prefixed `runs-`.

Each row shows the run's settings (its stored config, less the session id) and its permalink,
`/runs?run=<run id>`: opening it (in any tab) lists every run, picks that one and draws its
stored figure. A link naming no published run of this server's store (malformed, path-like,
too long, unknown, still running) gets the page's red alert; ids are checked against the
store's name rule before the store is asked, so a link can never reach a path. The address bar
keeps `run=<chosen run>` next to the shared selection (set after the shell's URL sync).
Runs made on a page (attention statistics, circuits, head searches, attacks) also get a
"reopen" link (`reopen_link`): the page that made the run, with the run's model, its stored
settings as that page's URL settings (`selection.PAGE_KEYS`) and, for the job pages, `run=<id>`
so the page shows that run again (job runs open only in the browser session that made them;
attention statistics are recomputed from the same model, prompt and key block).

Every callback checks its inputs (the switch must be a boolean, the session one we issued, the
run one that is listed) and answers bad ones, and store failures (an unreadable store folder, a
corrupt `result.json`), with the page's red alert, never an HTTP error. When the store had to
rebuild a damaged index, a yellow notice above the list says so.
"""

from __future__ import annotations

import re
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
MAX_RUN_ID = 64
_RUN_ID_RE = re.compile(rf"[A-Za-z0-9_-][A-Za-z0-9_.-]{{0,{MAX_RUN_ID - 1}}}")
FIRST_SETTINGS = ("method", "task", "objective", "prompt")


def permalink(run_id: str) -> str:
    """The URL path that reopens `run_id` on this page."""
    return f"{PAGE['path']}?run={run_id}"


REOPEN = {  # run kind -> (page, {config key: that page's URL key})
    "attention_stats": ("attention", {"prompt": "prompt", "mass_block": "block"}),
    "circuit": (
        "circuits",
        {
            "task": "task",
            "method": "method",
            "n_prompts": "n",
            "reference": "reference",
            "corruption": "corruption",
        },
    ),
    "head_search": (
        "guidance",
        {k: k for k in ("objective", "n", "rounds", "method", "u", "w")},
    ),
    "attack": (
        "attacks",
        {k: k for k in ("objective", "heads", "weight", "steps", "n_adv", "n_prompts", "seed")},
    ),
}


def reopen_link(run: Any) -> tuple[str, str] | None:
    """(page name, URL) reopening `run` on the page that made it in the state it was saved
    (None for a kind no page makes). Stored values a page would refuse are left out."""
    target = REOPEN.get(run.kind)
    if target is None:
        return None
    page, names = target
    values = {"model": run.model}
    values |= {key: run.config[old] for old, key in names.items() if old in run.config}
    if page != "attention":  # the job pages load the run itself
        values["run"] = run.run_id
    return page.capitalize(), selection.page_url(page, values)


def _reopen_anchor(run: Any, id: str) -> Any:
    link = reopen_link(run)
    return None if link is None else dmc.Anchor(f"reopen on {link[0]}", href=link[1], id=id)


def settings_text(config: dict[str, Any]) -> str:
    """A run's stored settings on one line (method/task/objective/prompt first; the session id
    left out; long values cut to 40 characters)."""
    keys = [k for k in FIRST_SETTINGS if k in config]
    keys += sorted(k for k in config if k not in FIRST_SETTINGS and k != SESSION_KEY)
    parts = []
    for key in keys:
        value = config[key]
        if isinstance(value, float):
            text = f"{value:.4g}"
        elif isinstance(value, list | tuple):
            text = ",".join(str(v) for v in value)
        else:
            text = str(value)
        parts.append(f"{key}={text if len(text) <= 40 else text[:39] + '…'}")
    return " · ".join(parts) or "—"


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
    columns = ("Run", "Kind", "Model", "Settings", "Created", "Tables", "Link")
    head = dmc.TableThead(dmc.TableTr([dmc.TableTh(c) for c in columns]))
    rows = [
        dmc.TableTr(
            [
                dmc.TableTd(dmc.Code(r.run_id)),
                dmc.TableTd(r.kind),
                dmc.TableTd(r.model),
                dmc.TableTd(settings_text(r.config), id=f"runs-settings-{r.run_id}"),
                dmc.TableTd(r.created_at.strftime("%Y-%m-%d %H:%M:%S")),
                dmc.TableTd(", ".join(r.tables)),
                dmc.TableTd(
                    dmc.Stack(
                        [
                            dmc.Anchor(
                                "permalink", href=permalink(r.run_id), id=f"runs-link-{r.run_id}"
                            ),
                            _reopen_anchor(r, f"runs-reopen-{r.run_id}"),
                        ],
                        gap=0,
                    )
                ),
            ],
            id=f"runs-row-{r.run_id}",
        )
        for r in runs
    ]
    if not rows:
        rows = [dmc.TableTr(html.Td("no runs yet", colSpan=len(columns)), id="runs-empty")]
    return dmc.Table([head, dmc.TableTbody(rows)], striped=True, withTableBorder=True)


def linked_run(query: dict[str, Any]) -> Any:
    """The `run` query argument as given (checked later, in a callback that can alert)."""
    value = query.get("run")
    return None if value is None else value if isinstance(value, str) else repr(value)[:200]


def layout(**query: Any) -> Any:
    link = linked_run(query)
    controls = dmc.Group(
        [
            dmc.Switch(
                id="runs-mine", label="Only this browser session's runs", checked=link is None
            ),
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
            dcc.Store(id="runs-link", data=link),
            dcc.Store(id="runs-url", data=None),
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


def check_link(run_id: Any) -> str:
    """A permalink's run id if it names a published run of this server's store, else
    `ValueError` (one message for every kind of miss: nothing about paths or other stores)."""
    if not isinstance(run_id, str) or not _RUN_ID_RE.fullmatch(run_id):
        shown = run_id if isinstance(run_id, str) else repr(run_id)
        raise ValueError(
            f"run link: {shown[:80]!r} is not a run id (expected up to {MAX_RUN_ID} of "
            "A-Z a-z 0-9 _ . -, as listed on this page)"
        )
    published = {r.run_id for r in state.run_store().list_runs()}
    if run_id not in published:
        raise ValueError(f"run link: no saved run {run_id!r} in this dashboard's run store")
    return run_id


def confirm_panel(run_id: str) -> Any:
    """The question Delete asks: the run named, "Delete for good" and Cancel. Any later
    status (Open, an alert) replaces it, forgetting the pending delete."""
    buttons = dmc.Group(
        [
            dmc.Button("Delete for good", id="runs-delete-confirm", color="red", size="xs"),
            dmc.Button("Cancel", id="runs-delete-cancel", variant="default", size="xs"),
        ]
    )
    text = dmc.Text(f"Run {run_id} and its tables will be removed from the store.", size="sm")
    return dmc.Alert(
        [dcc.Store(id="runs-delete-pending", data=run_id), text, buttons],
        title="Delete this run?",
        color="orange",
        variant="light",
        id="runs-confirm",
    )


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


def _opened(session: Any, run_id: str) -> tuple[Any, Any]:
    """The stored figure of `run_id` (kept for export) and the status line with its link."""
    figure = state.run_store().load_result(run_id).plot()
    keep_figure(session, "runs-figure", figure, label=run_id)  # what its export renders
    status = dmc.Group(
        [
            dmc.Text(f"opened {run_id}", size="sm"),
            dmc.Anchor("permalink", href=permalink(run_id), size="sm", id="runs-permalink"),
            _reopen_anchor(state.run_store().get_run(run_id), "runs-reopen"),
        ],
        gap="xs",
        id="runs-opened",
    )
    return figure, status


def register_callbacks(app: Any) -> None:
    selection.register_writer(app, "runs", {})
    register_figure_export(app, "runs-figure")

    app.clientside_callback(  # after the shell's URL sync (it sets the nav hrefs first)
        """
        function(navHref, runId) {
            const params = new URL(navHref || "/runs", window.location.origin).searchParams;
            if (typeof runId === "string" && runId) params.set("run", runId);
            const qs = params.toString();
            const target = window.location.pathname + (qs ? "?" + qs : "");
            if (window.location.pathname + window.location.search !== target) {
                window.history.replaceState(window.history.state, "", target);
            }
            return target;
        }
        """,
        Output("runs-url", "data"),
        Input("nav-runs", "href"),
        Input("runs-pick", "value"),
    )

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
        Output("runs-figure", "figure", allow_duplicate=True),
        Output("runs-status", "children", allow_duplicate=True),
        Output("runs-pick", "value", allow_duplicate=True),
        Input("runs-link", "data"),
        State("session-id", "data"),
        prevent_initial_call="initial_duplicate",
    )
    def open_link(link: Any, session: Any) -> Any:
        if link is None:
            return no_update, no_update, no_update
        try:
            run_id = check_link(link)
            figure, status = _opened(state.check_session(session), run_id)
        except Exception as err:  # noqa: BLE001 - shown to the user
            return (
                no_update,
                error_alert(err, title="Cannot open that link", id="runs-link-alert"),
                None,
            )
        return figure, status, run_id

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
    def open_or_ask(_open: Any, _delete: Any, run_id: Any, only_mine: Any, session: Any):
        """Open: the stored figure. Delete: only the question (nothing is deleted here)."""
        from dash import ctx

        try:
            run_id = _listed(session, only_mine, run_id)
            if ctx.triggered_id == "runs-delete":
                return no_update, confirm_panel(run_id), no_update, no_update
            figure, status = _opened(session, run_id)
        except Exception as err:  # noqa: BLE001
            alert = error_alert(err, title="Cannot open that run")
            return no_update, alert, no_update, no_update
        return figure, status, no_update, no_update

    @app.callback(
        Output("runs-status", "children", allow_duplicate=True),
        Output("runs-list", "children", allow_duplicate=True),
        Output("runs-pick", "data", allow_duplicate=True),
        Input("runs-delete-confirm", "n_clicks"),
        Input("runs-delete-cancel", "n_clicks"),
        State("runs-delete-pending", "data"),
        State("runs-pick", "value"),
        State("runs-mine", "checked"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def confirm_delete(confirm: Any, cancel: Any, pending: Any, run_id: Any, only_mine, session):
        """The second step: delete the run asked about, if it is still the one chosen."""
        from dash import ctx

        if not confirm and not cancel:  # the panel just appeared: nothing pressed yet
            return no_update, no_update, no_update
        if ctx.triggered_id == "runs-delete-cancel" or not confirm:
            return dmc.Text("nothing deleted", size="sm", id="runs-kept"), no_update, no_update
        try:
            run_id = _listed(session, only_mine, run_id)
            if pending != run_id:
                raise ValueError("delete: nothing deleted; press Delete again for the chosen run")
            state.run_store().delete_run(run_id)
        except Exception as err:  # noqa: BLE001
            return error_alert(err, title="Cannot delete that run"), no_update, no_update
        deleted = dmc.Text(f"deleted {run_id}", size="sm", id="runs-deleted")
        return deleted, *_listing(session, only_mine)

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
