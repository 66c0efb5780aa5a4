"""Heads page ("/heads"): the anatomy of one head, and where it sits among all heads.

- QK/OV SVD spectra and token readouts (`analysis.qk_ov_svd`).
- The head's pattern on the selected prompt; clicking a cell picks a (query, key) pair whose
  attention score is decomposed into singular-direction terms (`analysis.decompose_score`)
  and traced to the earlier heads and layers writing them (`analysis.upstream_contributions`).
- Head taxonomy heatmap and cluster map of every head (`analysis.head_taxonomy`), the selected
  head outlined / pointed at; clicking a head there selects it.

Layer/Head inputs are bounded by the selected model (`workbench.ui.head_limits`); the
readout table is drawn at its own height (every row whole).

Thin: results are computed once per browser session and kept server-side (`state.cached`).
Every input is checked (`workbench.ui.input_checks`): a bad layer, head, position or click
event -> one red alert. Drawn figures are kept for the exports (`keep_figure`).
Ids are prefixed `heads-`.
"""

from __future__ import annotations

import re
from typing import Any

import dash_mantine_components as dmc
from dash import Input, Output, State, html, no_update

from analysis.statistics.attention_pattern import attention_pattern, pattern_figure
from workbench.heads import Head
from workbench.ui import head_limits, selection, state
from workbench.ui import input_checks as check
from workbench.ui.components import (
    empty_figure,
    error_alert,
    figure_card,
    keep_figure,
    page_header,
    register_figure_export,
)

PAGE = {"path": "/heads", "name": "Heads", "title": "Heads · Workbench", "order": 20}
GRAPHS = (
    "heads-spectrum",
    "heads-readouts",
    "heads-pattern",
    "heads-decomposition",
    "heads-upstream",
    "heads-taxonomy",
    "heads-clusters",
)
_HEAD_NAME = re.compile(r"L(\d+)H(\d+)")


def _number(label: str, id: str, value: Any) -> Any:
    return dmc.NumberInput(id=id, label=label, value=value, min=0, w=100)


def layout(**query: str) -> Any:
    selected = selection.parse_query(query)
    settings = selection.parse_page("heads", query)
    model_name, prompt = selection.model_and_prompt(selected)
    controls = dmc.Group(
        [
            _number("Layer", "heads-layer", selected.get("layer", 0)),
            _number("Head", "heads-head", selected.get("head", 0)),
            _number("Query position", "heads-qpos", selected.get("token")),
            _number("Key position", "heads-kpos", settings.get("key")),
        ],
        align="flex-end",
    )
    return dmc.Stack(
        [
            selection.query_store("heads", query),
            page_header(
                "Heads",
                "Weights (SVD) and behaviour of one head. Click a pattern cell to decompose "
                "that attention score; click a head in the taxonomy to select it.",
            ),
            dmc.Text([dmc.Code(model_name), " · ", prompt[:160]], size="sm"),
            controls,
            html.Div(id="heads-error"),
            dmc.SimpleGrid(
                [
                    figure_card("heads-spectrum", "QK / OV singular values"),
                    figure_card("heads-readouts", "Token readouts"),
                ],
                cols=2,
            ),
            dmc.SimpleGrid(
                [
                    figure_card("heads-pattern", "Pattern (click a cell)"),
                    dmc.Stack(
                        [
                            figure_card("heads-decomposition", "Score decomposition"),
                            figure_card("heads-upstream", "Upstream contributions"),
                        ]
                    ),
                ],
                cols=2,
            ),
            # full width: readable with 144 heads (12 x 12)
            figure_card("heads-taxonomy", "Taxonomy (selected head outlined)"),
            figure_card("heads-clusters", "Cluster map (selected head pointed at)"),
        ],
        gap="sm",
    )


def sized(fig: Any, height: int = 380) -> Any:
    """The library's figure at a readable height in a half-width card (titles above the
    plot, not over the axis labels)."""
    return fig.update_layout(
        height=height, margin={"t": 80, "l": 70, "r": 20, "b": 50}, title_font_size=13
    )


def _readouts(svd: Any) -> Any:
    """The token readout table at its own height (every row whole, the token lists wrapped)."""
    fig = svd.plot("readouts")
    return sized(fig, max(380, int(fig.layout.height)))


def _clicked_head(click: Any) -> Head:
    """The `L{layer}H{head}` a taxonomy / cluster-map click names (`ValueError` if none)."""
    point = check.event_point(click, "click")
    match = _HEAD_NAME.search(
        str(point.get("x", ""))[:200] + " " + str(point.get("text", ""))[:200]
    )
    if not match:
        raise ValueError("click: the point names no head (L{layer}H{head})")
    return Head.parse(match.group(0))


def _model_and_head(query: Any, layer: Any, head: Any) -> tuple[Any, str, int, int]:
    """The page's model and prompt with a checked (layer, head)."""
    model_name, prompt = selection.model_and_prompt(query)
    model = state.open_model(model_name)
    layer, head = model.check_head(check.whole(layer, "layer"), check.whole(head, "head"))
    return model, prompt, layer, head


def register_callbacks(app: Any) -> None:
    for graph in GRAPHS:
        register_figure_export(app, graph)
    head_limits.register_callbacks(app, "heads")
    selection.register_writer(
        app,
        "heads",
        {
            "layer": ("heads-layer", "value"),
            "head": ("heads-head", "value"),
            "token": ("heads-qpos", "value"),
            "key": ("heads-kpos", "value"),
        },
    )

    def compute(session: str, model_name: str, key: str, fn) -> Any:
        return state.cached(session, f"heads|{model_name}|{key}", fn, model=model_name)

    @app.callback(
        Output("heads-spectrum", "figure"),
        Output("heads-readouts", "figure"),
        Output("heads-pattern", "figure"),
        Output("heads-error", "children"),
        Input("heads-layer", "value"),
        Input("heads-head", "value"),
        Input("heads-qpos", "value"),
        State("heads-query", "data"),
        State("session-id", "data"),
    )
    def show_head(layer, head, qpos, query, session) -> Any:
        from analysis import qk_ov_svd

        try:
            session = state.check_session(session)
            model, prompt, layer, head = _model_and_head(query, layer, head)
            model_name = model.name
            svd = compute(
                session,
                model_name,
                f"svd|{layer}|{head}",
                lambda: qk_ov_svd(model, layer, head, n_components=3, top_tokens=5),
            )
            pattern = compute(
                session,
                model_name,
                f"pattern|{layer}|{head}|{prompt}",
                lambda: attention_pattern(model, prompt, layer, head),
            )
            qpos = check.optional_whole(qpos, "query position", len(pattern.tokens))
        except Exception as err:  # noqa: BLE001 - shown to the user
            for graph in GRAPHS[:3]:
                keep_figure(session, graph, None)
            blank = empty_figure("no head selected")
            return blank, blank, blank, error_alert(err, id="heads-alert")
        title = f"{model_name} {Head(layer, head)}"
        pattern_fig = pattern_figure(pattern.pattern, pattern.tokens, title=title, query=qpos)
        label = f"{model_name}_{Head(layer, head)}"
        return (
            keep_figure(session, "heads-spectrum", sized(svd.plot("spectrum")), label=label),
            keep_figure(session, "heads-readouts", _readouts(svd), label=label),
            keep_figure(session, "heads-pattern", pattern_fig, label=label),
            None,
        )

    @app.callback(
        Output("heads-qpos", "value"),
        Output("heads-kpos", "value"),
        Output("heads-error", "children", allow_duplicate=True),
        Input("heads-pattern", "clickData"),
        prevent_initial_call=True,
    )
    def pick_pair(click: Any) -> Any:
        if click is None:
            return no_update, no_update, no_update
        try:  # the positions' range is checked against the prompt where they are used
            point = check.event_point(click, "click")
            pair = check.point_index(point, "y", "query position")
            return pair, check.point_index(point, "x", "key position"), no_update
        except ValueError as err:
            return no_update, no_update, error_alert(err, id="heads-alert")

    @app.callback(
        Output("heads-layer", "value"),
        Output("heads-head", "value"),
        Output("heads-error", "children", allow_duplicate=True),
        Input("heads-taxonomy", "clickData"),
        Input("heads-clusters", "clickData"),
        State("heads-query", "data"),
        prevent_initial_call=True,
    )
    def pick_head(heatmap_click: Any, cluster_click: Any, query: Any) -> Any:
        from dash import ctx

        click = heatmap_click if ctx.triggered_id == "heads-taxonomy" else cluster_click
        if click is None:
            return no_update, no_update, no_update
        try:
            _, _, layer, head = _model_and_head(query, *_clicked_head(click))
        except Exception as err:  # noqa: BLE001 - shown to the user
            return no_update, no_update, error_alert(err, id="heads-alert")
        return layer, head, no_update

    @app.callback(
        Output("heads-decomposition", "figure"),
        Output("heads-upstream", "figure"),
        Output("heads-error", "children", allow_duplicate=True),
        Input("heads-layer", "value"),
        Input("heads-head", "value"),
        Input("heads-qpos", "value"),
        Input("heads-kpos", "value"),
        State("heads-query", "data"),
        State("session-id", "data"),
        prevent_initial_call="initial_duplicate",
    )
    def show_decomposition(layer, head, qpos, kpos, query, session) -> Any:
        from analysis import decompose_score, upstream_contributions

        try:
            session = state.check_session(session)
            model, prompt, layer, head = _model_and_head(query, layer, head)
            n_tokens = len(model.to_str_tokens(model.to_tokens(prompt)))
            qpos = check.optional_whole(qpos, "query position", n_tokens)
            kpos = check.optional_whole(kpos, "key position", n_tokens)
            if qpos is None or kpos is None:
                for graph in ("heads-decomposition", "heads-upstream"):
                    keep_figure(session, graph, None)
                blank = empty_figure("click a cell of the pattern to pick a query and a key")
                return blank, blank, no_update
            args = (layer, head, qpos, kpos)
            decomposition = compute(
                session,
                model.name,
                f"decompose|{args}|{prompt}",
                lambda: decompose_score(model, prompt, *args),
            )
            upstream = compute(
                session,
                model.name,
                f"upstream|{args}|{prompt}",
                lambda: upstream_contributions(model, decomposition),
            )
        except Exception as err:  # noqa: BLE001
            for graph in ("heads-decomposition", "heads-upstream"):
                keep_figure(session, graph, None)
            blank = empty_figure("no decomposition")
            return blank, blank, error_alert(err, id="heads-alert")
        label = f"{model.name}_{Head(layer, head)}_q{qpos}k{kpos}"
        return (
            keep_figure(session, "heads-decomposition", sized(decomposition.plot()), label=label),
            keep_figure(session, "heads-upstream", sized(upstream.plot()), label=label),
            None,
        )

    @app.callback(
        Output("heads-taxonomy", "figure"),
        Output("heads-clusters", "figure"),
        Output("heads-error", "children", allow_duplicate=True),
        Input("heads-query", "data"),
        Input("heads-layer", "value"),
        Input("heads-head", "value"),
        State("session-id", "data"),
        prevent_initial_call="initial_duplicate",
    )
    def show_taxonomy(query, layer, head, session) -> Any:
        """Taxonomy and cluster map with the selected head marked (none when the layer/head
        is bad: the head's own callbacks report that)."""
        from analysis import head_taxonomy

        try:
            session = state.check_session(session)
            model_name, _ = selection.model_and_prompt(query)
            model = state.open_model(model_name)
            taxonomy = compute(session, model_name, "taxonomy", lambda: head_taxonomy(model))
            try:
                selected = model.check_head(check.whole(layer, "layer"), check.whole(head, "head"))
            except ValueError:
                selected = None
            heatmap = sized(taxonomy.plot("heatmap", selected=selected), 420)
            clusters = sized(taxonomy.plot("clusters", selected=selected), 480)
        except Exception as err:  # noqa: BLE001
            for graph in ("heads-taxonomy", "heads-clusters"):
                keep_figure(session, graph, None)
            blank = empty_figure("no taxonomy")
            return blank, blank, error_alert(err, id="heads-alert")
        return (
            keep_figure(session, "heads-taxonomy", heatmap, label=model_name),
            keep_figure(session, "heads-clusters", clusters, label=model_name),
            no_update,  # the alert slot belongs to the head's own callbacks
        )
