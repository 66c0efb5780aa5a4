"""Building blocks shared by the pages: messages, figure cards with exports, table exports.

- `error_alert(err)`: a red `dmc.Alert` with one clear line (never a traceback);
  `user_message(err)` turns an exception into that line (`ValueError`s carry their own
  message; anything else is logged server-side and shown as a short generic line).
- `figure_card(graph_id, title)` + `register_figure_export(app, graph_id)`: a graph with
  PNG / SVG / PDF / HTML buttons that download the figure as shown, through
  `workbench.export` (one kaleido server) and `dcc.Download`.
- `table_buttons(prefix)` + `register_table_export(app, prefix, frame_for)`: CSV / Parquet
  downloads of a server-side table.

Download names go through `workbench.export.safe_filename`, so nothing a browser sends can
name a path outside the download.
"""

from __future__ import annotations

import logging
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

log = logging.getLogger("workbench.ui")


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
    return dmc.Paper(
        [header, graph, dcc.Download(id=f"{graph_id}-download")],
        id=f"{graph_id}-card",
        withBorder=True,
        p="sm",
        radius="md",
    )


def register_figure_export(app: Any, graph_id: str) -> None:
    """PNG/SVG/PDF/HTML buttons of `figure_card(graph_id)` -> a download of the figure."""

    @app.callback(
        Output(f"{graph_id}-download", "data"),
        [Input(f"{graph_id}-export-{fmt}", "n_clicks") for fmt in FIGURE_FORMATS],
        State(graph_id, "figure"),
        State("selection", "data"),
        prevent_initial_call=True,
    )
    def export_figure(*args: Any) -> Any:
        from dash import ctx

        figure, selection = args[-2], args[-1] or {}
        if not figure or not ctx.triggered_id:
            return no_update
        fmt = str(ctx.triggered_id).rsplit("-", 1)[-1]
        parts = [graph_id, selection.get("model"), _head_tag(selection)]
        name = safe_filename("_".join(str(p) for p in parts if p), fmt)
        try:
            data = figure_bytes(go.Figure(figure), fmt)
        except Exception as err:  # noqa: BLE001 - the server must keep serving
            log.warning("export of %s as %s failed: %s", graph_id, fmt, user_message(err))
            return no_update
        return dcc.send_bytes(data, filename=name)


def _head_tag(selection: dict[str, Any]) -> str:
    layer, head = selection.get("layer"), selection.get("head")
    return f"L{layer}H{head}" if layer is not None and head is not None else ""


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
    return html.Div([dmc.Group(buttons, gap=4), dcc.Download(id=f"{prefix}-table-download")])


def register_table_export(
    app: Any, prefix: str, frame_for: Callable[..., Any], *states: State
) -> None:
    """CSV/Parquet buttons -> `frame_for(session, *state values)` as a download.

    `frame_for` returns `(name, DataFrame)` or None when there is nothing to export.
    """

    @app.callback(
        Output(f"{prefix}-table-download", "data"),
        [Input(f"{prefix}-table-{fmt}", "n_clicks") for fmt in TABLE_FORMATS],
        State("session-id", "data"),
        *states,
        prevent_initial_call=True,
    )
    def export_table(*args: Any) -> Any:
        from dash import ctx

        fmt = str(ctx.triggered_id).rsplit("-", 1)[-1]
        session, values = args[len(TABLE_FORMATS)], args[len(TABLE_FORMATS) + 1 :]
        try:
            found = frame_for(session, *values)
        except Exception as err:  # noqa: BLE001
            log.warning("table export failed: %s", user_message(err))
            return no_update
        if found is None:
            return no_update
        name, frame = found
        return dcc.send_bytes(table_bytes(frame, fmt), filename=safe_filename(name, fmt))


def page_header(title: str, description: str) -> Any:
    return dmc.Stack(
        [dmc.Title(title, order=2), dmc.Text(description, c="dimmed", size="sm")], gap=4
    )


__all__ = [
    "empty_figure",
    "error_alert",
    "figure_card",
    "info_alert",
    "page_header",
    "register_figure_export",
    "register_table_export",
    "table_buttons",
    "user_message",
]
