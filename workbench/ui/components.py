"""Building blocks shared by the pages: messages, figure cards with exports, table exports.

- `error_alert(err)`: a red `dmc.Alert` with one clear line (never a traceback);
  `user_message(err)` turns an exception into that line (`ValueError`s carry their own
  message; anything else is logged server-side and shown as a short generic line).
- `figure_card(graph_id, title)` + `register_figure_export(app, graph_id)`: a graph (with a
  loading spinner while a callback computes it) with PNG / SVG / PDF / HTML buttons that download the figure, through `workbench.export` (one
  kaleido server) and `dcc.Download`.
- `keep_figure(session, graph_id, fig, label=...)`: every callback that draws a figure card's
  graph keeps that figure server-side for the session; the export renders ONLY that kept
  figure, never the figure a browser sends (a client figure could point kaleido's chromium
  at `http://127.0.0.1:...` or `file:///...`, or ask for a 20000 px page). With nothing
  kept the card's alert says to compute the figure first.
- `table_buttons(prefix)` + `register_table_export(app, prefix, frame_for)`: CSV / Parquet
  downloads of a server-side table; problems show in the buttons' own alert slot.

Download names go through `workbench.export.safe_filename`, so nothing a browser sends can
name a path outside the download.

Caveat: the kept figures of a session live under one key of `workbench.ui.state`'s
per-session results (`FIGURES_KEY`), so they are evicted with that session's other results.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import dash_mantine_components as dmc
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html, no_update

from workbench.export import (
    FIGURE_FORMATS,
    TABLE_FORMATS,
    figure_bytes,
    safe_filename,
    table_bytes,
)
from workbench.ui import state
from workbench.ui.input_checks import choice

log = logging.getLogger("workbench.ui")
FIGURES_KEY = "figures"
NOTHING_TO_EXPORT = "export: compute the figure first (nothing to export yet)"
_figures_lock = threading.Lock()


def user_message(err: BaseException) -> str:
    """One line for the user: the `ValueError`'s own message, else a generic line."""
    if isinstance(err, ValueError | KeyError | FileNotFoundError):
        text = str(err.args[0]) if err.args else type(err).__name__
        return text.strip().splitlines()[0] if text.strip() else type(err).__name__
    log.exception("dashboard callback failed", exc_info=err)
    return f"Something went wrong ({type(err).__name__}); the server log has the details."


def error_alert(err: BaseException | str, *, title: str = "Cannot do that", id: str | None = None):
    """A visible red message for bad input or a failed action."""
    message = err if isinstance(err, str) else user_message(err)
    kwargs = {"id": id} if id else {}
    return dmc.Alert(message, title=title, color="red", variant="light", **kwargs)


def info_alert(message: str, *, title: str | None = None):
    """A blue informational alert showing `message`."""
    return dmc.Alert(message, title=title, color="blue", variant="light")


def empty_figure(message: str = "Nothing to show yet") -> go.Figure:
    """A blank figure holding one centred line of text."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={"size": 14, "color": "#868e96"})
    fig.update_layout(
        xaxis={"visible": False},
        yaxis={"visible": False},
        height=260,
        template="plotly_white",
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return fig


def figure_card(graph_id: str, title: str, *, figure: go.Figure | None = None, **graph_kwargs):
    """A titled card: the graph, one export button per format and the download target."""
    buttons = [
        dmc.Button(fmt.upper(), id=f"{graph_id}-export-{fmt}", size="compact-xs", variant="default")
        for fmt in FIGURE_FORMATS
    ]
    header = dmc.Group(
        [dmc.Text(title, fw=600), dmc.Group(buttons, gap=4)], justify="space-between"
    )
    graph = dcc.Graph(
        id=graph_id,
        figure=figure if figure is not None else empty_figure(),
        config={"displaylogo": False},
        **graph_kwargs,
    )
    # a spinner over the graph while a callback computes it (after 300 ms, so quick
    # hover/click answers don't flash); the old figure stays visible underneath
    loading = dcc.Loading(
        graph,
        id=f"{graph_id}-loading",
        type="circle",
        delay_show=300,
        overlay_style={"visibility": "visible", "opacity": 0.55},
    )
    return dmc.Paper(
        [
            header,
            html.Div(id=f"{graph_id}-export-message"),
            loading,
            dcc.Download(id=f"{graph_id}-download"),
        ],
        id=f"{graph_id}-card",
        withBorder=True,
        p="sm",
        radius="md",
    )


def keep_figure(session: str, graph_id: str, fig: go.Figure | None, *, label: str = "") -> Any:
    """Keep `fig` as what `graph_id`'s export buttons render for this session; returns `fig`.

    `label` ends the download name (`graph_id_label.png`): the model, plus `L{l}H{h}` only
    for figures of one head. `None` forgets the graph's figure (nothing to export). A
    malformed session keeps nothing (the callback reports it).
    """
    try:
        session = state.check_session(session)
    except ValueError:
        return fig
    with _figures_lock:  # read-copy-write: two callbacks of one session may finish at once
        kept = dict(state.get_result(session, FIGURES_KEY) or {})
        if fig is None:
            kept.pop(graph_id, None)
        else:
            kept[graph_id] = (fig.to_json(), label)
        with contextlib.suppress(state.ResultTooLarge):  # then export says "compute it first"
            state.put_result(session, FIGURES_KEY, kept)
    return fig


def kept_figure(session: str, graph_id: str) -> tuple[go.Figure, str] | None:
    """The figure and label kept for `graph_id` in this session, or None."""
    import plotly.io as pio

    found = (state.get_result(state.check_session(session), FIGURES_KEY) or {}).get(graph_id)
    return None if found is None else (pio.from_json(found[0]), found[1])


def _button_suffix(prefix: str) -> str:
    """The format named by the pressed button's id (`prefix` + format); what a forged
    request names instead is returned whole, for the format check to refuse."""
    from dash import ctx

    button = str(ctx.triggered_id or "")
    return button.removeprefix(prefix) if button.startswith(prefix) else button


def register_figure_export(app: Any, graph_id: str) -> None:
    """PNG/SVG/PDF/HTML buttons of `figure_card(graph_id)` -> a download of the figure this
    session's callbacks kept (`keep_figure`); the figure in the browser is never read."""

    @app.callback(
        Output(f"{graph_id}-download", "data"),
        Output(f"{graph_id}-export-message", "children"),
        [Input(f"{graph_id}-export-{fmt}", "n_clicks") for fmt in FIGURE_FORMATS],
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def export_figure(*args: Any) -> Any:
        session = args[len(FIGURE_FORMATS)] if len(args) > len(FIGURE_FORMATS) else None
        try:
            fmt = choice(_button_suffix(f"{graph_id}-export-"), "format", FIGURE_FORMATS)
            found = kept_figure(session, graph_id)
            if found is None:
                raise ValueError(NOTHING_TO_EXPORT)
            figure, label = found
            data = figure_bytes(figure, fmt)
        except Exception as err:  # noqa: BLE001 - the server must keep serving
            alert = error_alert(err, title="Cannot export", id=f"{graph_id}-export-alert")
            return no_update, alert
        name = safe_filename("_".join(p for p in (graph_id, label) if p), fmt)
        return dcc.send_bytes(data, filename=name), None


def table_buttons(prefix: str) -> Any:
    """CSV / Parquet buttons and the download target for one server-side table."""
    buttons = [
        dmc.Button(
            f"Table {fmt.upper()}",
            id=f"{prefix}-table-{fmt}",
            size="compact-xs",
            variant="default",
        )
        for fmt in TABLE_FORMATS
    ]
    return html.Div(
        [
            dmc.Group(buttons, gap=4),
            html.Div(id=f"{prefix}-table-message"),
            dcc.Download(id=f"{prefix}-table-download"),
        ]
    )


def register_table_export(
    app: Any, prefix: str, frame_for: Callable[..., Any], *states: State
) -> None:
    """CSV/Parquet buttons -> `frame_for(session, *state values)` as a download.

    `frame_for` returns `(name, DataFrame)` or None when there is nothing to export.
    """

    n_buttons = len(TABLE_FORMATS)

    @app.callback(
        Output(f"{prefix}-table-download", "data"),
        Output(f"{prefix}-table-message", "children"),
        [Input(f"{prefix}-table-{fmt}", "n_clicks") for fmt in TABLE_FORMATS],
        State("session-id", "data"),
        *states,
        prevent_initial_call=True,
    )
    def export_table(*args: Any) -> Any:
        session, values = args[n_buttons], args[n_buttons + 1 : n_buttons + 1 + len(states)]
        try:
            fmt = choice(_button_suffix(f"{prefix}-table-"), "format", TABLE_FORMATS)
            found = frame_for(state.check_session(session), *values)
            if found is None:
                raise ValueError("export: this run has no table")
            name, frame = found
            data = table_bytes(frame, fmt)
        except Exception as err:  # noqa: BLE001 - shown to the user
            alert = error_alert(err, title="Cannot export", id=f"{prefix}-table-alert")
            return no_update, alert
        return dcc.send_bytes(data, filename=safe_filename(name, fmt)), None


def page_header(title: str, description: str) -> Any:
    """A page's title with its one-line description beneath."""
    return dmc.Stack(
        [dmc.Title(title, order=2), dmc.Text(description, c="dimmed", size="sm")], gap=4
    )


__all__ = [
    "empty_figure",
    "error_alert",
    "figure_card",
    "info_alert",
    "keep_figure",
    "kept_figure",
    "page_header",
    "register_figure_export",
    "register_table_export",
    "table_buttons",
    "user_message",
]
