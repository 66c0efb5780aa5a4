"""Heads page ("/heads"): the anatomy of one head, and where it sits among all heads.

- QK/OV SVD spectra and token readouts (`analysis.qk_ov_svd`).
- The head's pattern on the selected prompt; clicking a cell picks a (query, key) pair whose
  attention score is decomposed into singular-direction terms (`analysis.decompose_score`)
  and traced to the earlier heads and layers writing them (`analysis.upstream_contributions`).
- Head taxonomy heatmap and cluster map of every head (`analysis.head_taxonomy`); clicking a
  head there selects it.

Thin: results are computed once per browser session and kept server-side (`state.cached`).
Bad layer/head/positions -> one red alert. Ids are prefixed `heads-`.
"""

from __future__ import annotations

import re
from typing import Any

import dash_mantine_components as dmc
from dash import Input, Output, State, html, no_update

from workbench.ui import selection, state
from workbench.ui.components import (
    empty_figure,
    error_alert,
    figure_card,
    page_header,
    register_figure_export,
    user_message,
)
from workbench.ui.figures import attention_pattern, check_head, pattern_figure

PAGE = {"path": "/heads", "name": "Heads", "title": "Heads · Workbench", "order": 20}
GRAPHS = ("heads-spectrum", "heads-readouts", "heads-pattern", "heads-decomposition",
          "heads-upstream", "heads-taxonomy", "heads-clusters")  # fmt: skip
_HEAD_NAME = re.compile(r"L(\d+)H(\d+)")


def _number(label: str, id: str, value: Any) -> Any:
    return dmc.NumberInput(id=id, label=label, value=value, min=0, w=100)


def layout(**query: str) -> Any:
    selected = selection.parse_query(query)
    model_name, prompt = selection.model_and_prompt(selected)
    controls = dmc.Group(
        [
            _number("Layer", "heads-layer", selected.get("layer", 0)),
            _number("Head", "heads-head", selected.get("head", 0)),
            _number("Query position", "heads-qpos", selected.get("token")),
            _number("Key position", "heads-kpos", None),
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
            dmc.SimpleGrid(
                [
                    figure_card("heads-taxonomy", "Taxonomy"),
                    figure_card("heads-clusters", "Cluster map"),
                ],
                cols=2,
            ),
        ],
        gap="sm",
    )


def sized(fig: Any, height: int = 380) -> Any:
    """The library's figure at a readable height in a half-width card (titles above the
    plot, not over the axis labels)."""
    return fig.update_layout(
        height=height, margin={"t": 80, "l": 70, "r": 20, "b": 50}, title_font_size=13
    )


def _head(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and float(value).is_integer() else None


def _clicked_head(click: dict | None) -> tuple[int, int] | None:
    if not click:
        return None
    point = click["points"][0]
    match = _HEAD_NAME.search(str(point.get("x", "")) + " " + str(point.get("text", "")))
    return (int(match.group(1)), int(match.group(2))) if match else None


def register_callbacks(app: Any) -> None:
    for graph in GRAPHS:
        register_figure_export(app, graph)
    selection.register_writer(
        app,
        "heads",
        {
            "layer": ("heads-layer", "value"),
            "head": ("heads-head", "value"),
            "token": ("heads-qpos", "value"),
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

        model_name, prompt = selection.model_and_prompt(query)
        try:
            model = state.get_model(model_name)
            layer, head = check_head(model, _head(layer), _head(head))
            svd = compute(
                session, model_name, f"svd|{layer}|{head}",
                lambda: qk_ov_svd(model, layer, head, n_components=3, top_tokens=5),
            )  # fmt: skip
            pattern = compute(
                session, model_name, f"pattern|{layer}|{head}|{prompt}",
                lambda: attention_pattern(model, prompt, layer, head),
            )  # fmt: skip
        except Exception as err:  # noqa: BLE001 - shown to the user
            blank = empty_figure("no head selected")
            return blank, blank, blank, error_alert(err, id="heads-alert")
        title = f"{model_name} L{layer}H{head}"
        pattern_fig = pattern_figure(
            pattern.pattern, pattern.tokens, title=title, query=_head(qpos)
        )
        return sized(svd.plot("spectrum")), sized(svd.plot("readouts"), 460), pattern_fig, None

    @app.callback(
        Output("heads-qpos", "value"),
        Output("heads-kpos", "value"),
        Input("heads-pattern", "clickData"),
        prevent_initial_call=True,
    )
    def pick_pair(click: dict | None) -> Any:
        if not click:
            return no_update, no_update
        point = click["points"][0]
        return int(point["y"]), int(point["x"])

    @app.callback(
        Output("heads-layer", "value"),
        Output("heads-head", "value"),
        Input("heads-taxonomy", "clickData"),
        Input("heads-clusters", "clickData"),
        prevent_initial_call=True,
    )
    def pick_head(heatmap_click: dict | None, cluster_click: dict | None) -> Any:
        from dash import ctx

        click = heatmap_click if ctx.triggered_id == "heads-taxonomy" else cluster_click
        found = _clicked_head(click)
        return found if found else (no_update, no_update)

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

        if _head(qpos) is None or _head(kpos) is None:
            blank = empty_figure("click a cell of the pattern to pick a query and a key")
            return blank, blank, no_update
        model_name, prompt = selection.model_and_prompt(query)
        try:
            model = state.get_model(model_name)
            args = (int(layer), int(head), int(qpos), int(kpos))
            decomposition = compute(
                session, model_name, f"decompose|{args}|{prompt}",
                lambda: decompose_score(model, prompt, *args),
            )  # fmt: skip
            upstream = compute(
                session, model_name, f"upstream|{args}|{prompt}",
                lambda: upstream_contributions(model, decomposition),
            )  # fmt: skip
        except Exception as err:  # noqa: BLE001
            blank = empty_figure("no decomposition")
            return blank, blank, error_alert(err, id="heads-alert")
        return sized(decomposition.plot()), sized(upstream.plot()), None

    @app.callback(
        Output("heads-taxonomy", "figure"),
        Output("heads-clusters", "figure"),
        Input("heads-query", "data"),
        State("session-id", "data"),
    )
    def show_taxonomy(query, session) -> Any:
        from analysis import head_taxonomy

        model_name, _ = selection.model_and_prompt(query)
        try:
            model = state.get_model(model_name)
            taxonomy = compute(session, model_name, "taxonomy", lambda: head_taxonomy(model))
        except Exception as err:  # noqa: BLE001
            blank = empty_figure(f"no taxonomy: {user_message(err)}"[:140])
            return blank, blank
        return sized(taxonomy.plot("heatmap")), sized(taxonomy.plot("clusters"), 440)
