"""Attention page: the small-multiples grid of heads (`analysis.statistics.pattern_grid`).

`register_callbacks(app, checked)` draws `attention-grid` for the page's layer ("this layer")
or every head ("all heads"), the selected head outlined; a click on a thumbnail selects that
head (`clicked_head` maps it back to a checked (layer, head)); a new selection moves the
outline on the layer x head map too (a `Patch` of its shapes, no redraw). Thumbnails are computed
once per (model, prompt, block, scope, layer) from the page's all-head patterns and kept
server-side (`state.cached`); a bad layer, head or scope -> the page's red alert.
"""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc
from dash import Input, Output, Patch, State, no_update

from analysis.statistics.head_stats_plots import selected_cell
from analysis.statistics.pattern_grid import check_scope, grid_figure, grid_layout, head_at
from workbench.heads import Head
from workbench.ui import input_checks as check
from workbench.ui import selection, state
from workbench.ui.components import empty_figure, error_alert, figure_card, keep_figure

SCOPE_LABELS = {"layer": "this layer", "all": "all heads"}
SELECTED_KEY = "attention|selected"  # the session's last selected (layer, head)


def selected_head(session: str, query: Any, model: Any, *, opening: bool) -> tuple[int, int] | None:
    """The head to outline on a freshly drawn layer x head map: on the page's first draw
    (`opening`) the selection it was opened with (then kept), later the last one selected
    (`mark_heatmap` keeps it); None if not a head of `model` (its own views report that)."""
    key = f"{SELECTED_KEY}|{model.name}"
    kept = None if opening else state.get_result(session, key)  # (layer, head) as sent
    if kept is None:
        kept = ((query or {}).get("layer", 0), (query or {}).get("head", 0))
        state.put_result(session, key, kept)
    layer, head = kept
    try:
        return model.check_head(check.whole(layer, "layer"), check.whole(head, "head"))
    except ValueError:
        return None


def section(scope: str = "layer") -> Any:
    """The scope picker and the grid's card."""
    picker = dmc.SegmentedControl(
        id="attention-grid-scope",
        data=[{"value": v, "label": label} for v, label in SCOPE_LABELS.items()],
        value=scope if scope in SCOPE_LABELS else "layer",
        size="xs",
    )
    card = figure_card(
        "attention-grid", "Every head (click a thumbnail to select it)", figure=empty_figure()
    )
    return dmc.Stack([picker, card], gap=4)


def _layout(data: dict, scope: Any, layer: int):
    n_layers, n_heads, n_q, n_k = data["patterns"].shape
    return grid_layout(n_layers, n_heads, check_scope(scope), layer, n_q, n_k)


def grid(session: str, data: dict, key: str, scope: Any, layer: int, head: int) -> Any:
    """The grid figure (thumbnails cached under `key` + scope/layer)."""
    from analysis.statistics.pattern_grid import thumbnails

    layout = _layout(data, scope, layer)
    where = "every head" if layout.scope == "all" else f"layer {layer}"
    thumbs = state.cached(
        session,
        f"{key}|grid|{layout.scope}|{layer if layout.scope == 'layer' else ''}",
        lambda: thumbnails(data["patterns"], layout),
        model=data["model"].name,
    )
    title = (
        f"{data['model'].name}: {where}, block max of {layout.block}×{layout.block}-token tiles"
        if layout.block > 1
        else f"{data['model'].name}: {where}"
    )
    return grid_figure(thumbs, layout, selected=Head(layer, head), title=title)


def clicked_head(data: dict, scope: Any, layer: Any, click: Any) -> tuple[int, int]:
    """The (layer, head) a click on the grid names, checked against the model."""
    model = data["model"]
    layer = model.check_head(check.whole(layer, "layer"), 0)[0]
    point = check.event_point(click, "click")
    x, y = check.point_index(point, "x", "grid x"), check.point_index(point, "y", "grid y")
    head = head_at(_layout(data, scope, layer), x, y)
    return model.check_head(head.layer, head.head)


def register_callbacks(app: Any, checked: Any) -> None:
    """`checked(session, query, block)`: the page's cached analysis (see attention.py)."""

    @app.callback(
        Output("attention-grid", "figure"),
        Output("attention-error", "children", allow_duplicate=True),
        Input("attention-grid-scope", "value"),
        Input("attention-layer", "value"),
        Input("attention-head", "value"),
        Input("attention-block-size", "value"),
        State("attention-query", "data"),
        State("session-id", "data"),
        prevent_initial_call="initial_duplicate",
    )
    def render_grid(scope, layer, head, block, query, session) -> Any:
        try:
            data = checked(session, query, block)
            layer, head = data["model"].check_head(
                check.whole(layer, "layer"), check.whole(head, "head")
            )
            model_name, prompt = selection.model_and_prompt(query)
            key = f"attention|{model_name}|{int(block)}|{prompt}"
            fig = grid(session, data, key, scope, layer, head)
        except Exception as err:  # noqa: BLE001 - shown to the user
            keep_figure(session, "attention-grid", None)
            return empty_figure("no grid"), error_alert(err, id="attention-alert")
        label = data["model"].name + ("" if scope == "all" else f"_layer{layer}")
        return keep_figure(session, "attention-grid", fig, label=label), no_update

    @app.callback(
        Output("attention-error", "children", allow_duplicate=True),
        Output("attention-layer", "value", allow_duplicate=True),
        Output("attention-head", "value", allow_duplicate=True),
        Input("attention-grid", "clickData"),
        State("attention-grid-scope", "value"),
        State("attention-layer", "value"),
        State("attention-block-size", "value"),
        State("attention-query", "data"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def select_from_grid(click, scope, layer, block, query, session) -> Any:
        if click is None:
            return no_update, no_update, no_update
        try:
            data = checked(session, query, block)
            layer, head = clicked_head(data, scope, layer, click)
        except Exception as err:  # noqa: BLE001 - shown to the user
            return error_alert(err, id="attention-alert"), no_update, no_update
        return None, layer, head

    @app.callback(
        Output("attention-heads", "figure", allow_duplicate=True),
        Input("attention-layer", "value"),
        Input("attention-head", "value"),
        State("attention-query", "data"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def mark_heatmap(layer, head, query, session) -> Any:
        """Move the outline on the layer x head map (none for a bad head: its views say so)
        and remember the head for the map's next redraw."""
        patch = Patch()
        patch["layout"]["shapes"] = []
        try:
            model = state.open_model(selection.model_and_prompt(query)[0])
            state.put_result(session, f"{SELECTED_KEY}|{model.name}", (layer, head))  # as sent
            layer, head = model.check_head(check.whole(layer, "layer"), check.whole(head, "head"))
        except Exception:  # noqa: BLE001 - reported by the head's own callbacks
            return patch
        patch["layout"]["shapes"] = [selected_cell(layer, head)]
        return patch
