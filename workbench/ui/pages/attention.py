"""Attention page ("/attention"): statistics of every head and the pattern of one.

- Layer x head heatmap of any statistic (`analysis.attention_stats` -> `HeadStats.plot`);
  hovering a cell previews that head's pattern, clicking locks the layer/head selection.
- Pattern view: tokens on both axes (`index:token`, whitespace visible); clicking a cell locks
  its query token (boxed), whose statistic along the prompt is drawn below. Numbers only go to
  the browser (the hover readout under it is built client-side from the one token list in the
  figure's `meta`); prompts over `FULL_LIMIT` tokens get a block-max overview plus a
  full-resolution window around the locked query (`pattern_figure`). Colour: 0-1, the head's
  max, or log.
- Token view (`workbench.ui.token_view`): the prompt as text; hovering a token colours the
  others by the selected head's weights (its row, or with the toggle its column), in the
  browser. Layer/Head inputs are bounded by the model (`workbench.ui.head_limits`).
- Every head at once (`workbench.ui.head_grid`): block-max thumbnails of this layer's heads
  or of all heads; clicking one selects it; the selected head is outlined there and on the
  layer x head map.
- Attention mass by SIGNED key - query offset (previous- vs next-token heads) and the
  block-mass map of the selected head (query rows averaged in groups past 64 queries).
- Figures show a loading spinner while computed (`figure_card`); a `token` from the URL beyond
  this prompt is dropped with a visible note.
- "Save run" stores the statistics in the run store (reopened from the Runs page).
- "Corpus" section (`workbench.ui.corpus_view`): stored corpus-stats runs of the model.

Thin: one `attention_stats` run and one pattern cache per (model, prompt, block size), kept
server-side per browser session (`state.cached`), so hover/click callbacks only slice arrays.
Every input is checked (`workbench.ui.input_checks`): a bad model, prompt, statistic, block
size, layer, head, token or hover/click event -> one red alert; the server keeps serving and
never draws another head than the one named. Drawn figures are kept for the exports
(`keep_figure`). Ids are prefixed `attention-`.
"""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc
import numpy as np
import plotly.graph_objects as go
from dash import Input, Output, State, ctx, html, no_update

from analysis.statistics.attention_pattern import SCALES, offset_figure, pattern_figure
from workbench.heads import Head
from workbench.ui import corpus_view, head_grid, head_limits, selection, state, token_view
from workbench.ui import input_checks as check
from workbench.ui.components import (
    empty_figure,
    error_alert,
    figure_card,
    info_alert,
    keep_figure,
    page_header,
    register_figure_export,
    register_table_export,
    table_buttons,
)

PAGE = {"path": "/attention", "name": "Attention", "title": "Attention · Workbench", "order": 10}
STATISTICS = ["entropy", "sink", "max_prob", "mean_distance", "effective_keys", "lse"]
BLOCK_SIZES = ["4", "8", "16", "32", "64"]
BLOCK_MASS_ROWS = 64  # the block-mass map averages queries in groups past this many
FLOAT16_FROM = 64 * 2**20  # all-head patterns over this many float32 bytes are kept as float16
HOVER_JS = """
function(hover, figure) {
    const p = hover && hover.points && hover.points[0];
    const labels = figure && figure.layout && figure.layout.meta && figure.layout.meta.labels;
    if (!p || !labels) { return ""; }
    const weight = typeof p.z === "number" ? p.z.toFixed(3) : p.z;
    return "query " + labels[p.y] + "  →  key " + labels[p.x] + "   (" + weight + ")";
}
"""
GRAPHS = (
    "attention-heads",
    "attention-pattern",
    "attention-along",
    "attention-distance",
    "attention-block",
)


def checked(session: Any, query: Any, block: Any) -> dict[str, Any]:
    """`analyse` for what a request sent: session, page selection and block size checked."""
    session = state.check_session(session)
    model_name, prompt = selection.model_and_prompt(query)
    block = int(check.choice(block, "key block", BLOCK_SIZES))
    return analyse(session, model_name, prompt, block)


def analyse(session: str, model_name: str, prompt: str, block: int) -> dict[str, Any]:
    """This session's statistics and patterns for (model, prompt, block), computed once."""
    from analysis.statistics.attention_stats import attention_stats
    from kernels import DEFAULT_STATS

    def compute() -> dict[str, Any]:
        import torch

        model = state.open_model(model_name)
        stats = attention_stats(
            model, [prompt], stats=[*DEFAULT_STATS, "block_mass"], mass_block=block
        )
        tokens = model.to_tokens(prompt)  # [1, pos]
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens, names=lambda n: n.endswith(".hook_pattern"))
        names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.n_layers)]
        patterns = np.stack([cache[n][0].float().cpu().numpy() for n in names])
        # patterns: [layer, head, query, key]; float16 (3 significant digits) when very large
        if patterns.nbytes > FLOAT16_FROM:
            patterns = patterns.astype(np.float16)
        return {"model": model, "stats": stats, "patterns": patterns, "tokens": stats.tokens[0]}

    key = f"attention|{model_name}|{block}|{prompt}"
    return state.cached(session, key, compute, model=model_name)


def _stale_token(selected: dict[str, Any], model_name: str, prompt: str) -> Any:
    """Drop a `token` beyond this prompt (a link made for a longer prompt) and say so."""
    token = selected.get("token")
    if token is None:
        return None
    try:
        n = int(state.open_model(model_name).to_tokens(prompt).shape[1])
    except Exception:  # noqa: BLE001 - the page's callbacks report a bad model or prompt
        return None
    if token < n:
        return None
    del selected["token"]
    return info_alert(
        f"query token {token} is beyond this {n}-token prompt (0-{n - 1}); no token is locked.",
        title="Query token cleared",
    )


def layout(**query: str) -> Any:
    selected = selection.parse_query(query)
    settings = selection.parse_page("attention", query)
    model_name, prompt = selection.model_and_prompt(selected)
    stale = _stale_token(selected, model_name, prompt)
    controls = dmc.Group(
        [
            dmc.Select(
                id="attention-stat",
                label="Statistic",
                data=STATISTICS,
                value=settings.get("stat", "entropy"),
                w=170,
            ),
            dmc.NumberInput(
                id="attention-layer", label="Layer", value=selected.get("layer", 0), min=0, w=90
            ),
            dmc.NumberInput(
                id="attention-head", label="Head", value=selected.get("head", 0), min=0, w=90
            ),
            dmc.NumberInput(
                id="attention-token", label="Query token", value=selected.get("token"), min=0, w=110
            ),
            dmc.Select(
                id="attention-block-size",
                label="Key block",
                data=BLOCK_SIZES,
                value=settings.get("block", "8"),
                w=100,
            ),
            dmc.Select(
                id="attention-scale",
                label="Colour",
                data=list(SCALES),
                value=selected.get("scale") if selected.get("scale") in SCALES else "0-1",
                allowDeselect=False,
                w=120,
            ),
            table_buttons("attention"),
            dmc.Button("Save run", id="attention-save", size="compact-sm", variant="light"),
            html.Div(id="attention-saved"),
        ],
        align="flex-end",
    )
    summary = dmc.Text(
        [dmc.Code(model_name), " · ", html.Span(prompt[:160], id="attention-prompt")],
        size="sm",
    )
    return dmc.Stack(
        [
            selection.query_store("attention", query),
            page_header(
                "Attention",
                "Hover a head to preview its pattern, click to lock it; click a pattern cell "
                "to lock its query token. Change model or prompt on the Model & prompt page.",
            ),
            summary,
            controls,
            html.Div(stale, id="attention-stale"),
            html.Div(id="attention-error"),
            dmc.Grid(
                [
                    dmc.GridCol(
                        [
                            figure_card(
                                "attention-heads",
                                "Layer × head",
                                figure=empty_figure("computing…"),
                                clear_on_unhover=True,
                            ),
                            token_view.section(),
                        ],
                        span=5,
                    ),
                    dmc.GridCol(
                        [
                            figure_card(
                                "attention-pattern", "Pattern", figure=empty_figure("computing…")
                            ),
                            dmc.Text("", id="attention-hover", size="sm", ff="monospace", mih=20),
                        ],
                        span=7,
                    ),
                ]
            ),
            head_grid.section(settings.get("grid", "layer")),
            figure_card(
                "attention-along", "Statistic along the prompt", figure=empty_figure("computing…")
            ),
            dmc.SimpleGrid(
                [
                    figure_card(
                        "attention-distance",
                        "Attention by signed offset (key − query)",
                        figure=empty_figure("computing…"),
                    ),
                    figure_card(
                        "attention-block", "Block-mass map", figure=empty_figure("computing…")
                    ),
                ],
                cols=2,
            ),
            dmc.Divider(my="sm"),
            corpus_view.section(),
        ],
        gap="sm",
    )


def register_callbacks(app: Any) -> None:
    for graph in (*GRAPHS, "attention-grid"):
        register_figure_export(app, graph)
    app.clientside_callback(
        HOVER_JS,
        Output("attention-hover", "children"),
        Input("attention-pattern", "hoverData"),
        State("attention-pattern", "figure"),
        prevent_initial_call=True,
    )
    corpus_view.register_callbacks(app)
    selection.register_writer(
        app,
        "attention",
        {
            "layer": ("attention-layer", "value"),
            "head": ("attention-head", "value"),
            "token": ("attention-token", "value"),
            "scale": ("attention-scale", "value"),
            "stat": ("attention-stat", "value"),
            "block": ("attention-block-size", "value"),
            "grid": ("attention-grid-scope", "value"),
        },
    )

    def per_head_table(session: str, query: dict[str, Any], block: str):
        data = checked(session, query, block)
        return f"attention_{data['model'].name}_per_head", data["stats"].per_head()

    register_table_export(
        app,
        "attention",
        per_head_table,
        State("attention-query", "data"),
        State("attention-block-size", "value"),
    )

    @app.callback(
        Output("attention-saved", "children"),
        Input("attention-save", "n_clicks"),
        State("attention-query", "data"),
        State("attention-block-size", "value"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def save_run(_clicks, query, block, session) -> Any:
        from workbench.ui.shared import SESSION_KEY

        try:
            stats = checked(session, query, block)["stats"]
            model_name, prompt = selection.model_and_prompt(query)
            config = {"prompt": prompt, "mass_block": int(block), SESSION_KEY: session}
            run_id = state.run_store().save(stats, model=model_name, config=config)
        except Exception as err:  # noqa: BLE001
            return error_alert(err, title="Cannot save")
        return dmc.Text(f"saved {run_id}", size="xs", id="attention-saved-id")

    @app.callback(
        Output("attention-layer", "value"),
        Output("attention-head", "value"),
        Output("attention-error", "children", allow_duplicate=True),
        Input("attention-heads", "clickData"),
        Input("attention-corpus-heads", "clickData"),
        State("attention-query", "data"),
        prevent_initial_call=True,
    )
    def lock_head(click: Any, corpus_click: Any, query: Any) -> Any:
        click = corpus_click if ctx.triggered_id == "attention-corpus-heads" else click
        if click is None:
            return no_update, no_update, no_update
        try:
            model = state.open_model(selection.model_and_prompt(query)[0])
            point = check.event_point(click, "click")
            layer, head = model.check_head(
                check.point_index(point, "y", "layer"), check.point_index(point, "x", "head")
            )
        except Exception as err:  # noqa: BLE001 - shown to the user
            return no_update, no_update, error_alert(err, id="attention-alert")
        return layer, head, no_update

    @app.callback(
        Output("attention-token", "value"),
        Output("attention-error", "children", allow_duplicate=True),
        Input("attention-pattern", "clickData"),
        prevent_initial_call=True,
    )
    def lock_token(click: Any) -> Any:
        if click is None:
            return no_update, no_update
        try:  # its range is checked against the prompt where the token is drawn
            point = check.event_point(click, "click")
            return check.point_index(point, "y", "token"), no_update
        except ValueError as err:
            return no_update, error_alert(err, id="attention-alert")

    @app.callback(
        Output("attention-heads", "figure"),
        Output("attention-error", "children"),
        Input("attention-stat", "value"),
        Input("attention-block-size", "value"),
        State("attention-query", "data"),
        State("session-id", "data"),
    )
    def render_heads(stat: Any, block: Any, query: Any, session: Any) -> Any:
        """The layer x head map, the selected head outlined (`head_grid` moves the outline)."""
        try:
            data = checked(session, query, block)
            stat = check.choice(stat, "statistic", STATISTICS)
            opening = ctx.triggered_id is None  # the page's first draw
            selected = head_grid.selected_head(session, query, data["model"], opening=opening)
            fig = data["stats"].plot("heatmap", stat=stat, selected=selected)
        except Exception as err:  # noqa: BLE001 - shown to the user
            keep_figure(session, "attention-heads", None)
            return empty_figure("no statistics"), error_alert(err, id="attention-alert")
        fig.update_layout(height=max(300, 36 * data["model"].n_layers + 160))
        return keep_figure(session, "attention-heads", fig, label=data["model"].name), None

    @app.callback(
        Output("attention-pattern", "figure"),
        Output("attention-along", "figure"),
        Output("attention-distance", "figure"),
        Output("attention-block", "figure"),
        Output("attention-error", "children", allow_duplicate=True),
        Input("attention-layer", "value"),
        Input("attention-head", "value"),
        Input("attention-token", "value"),
        Input("attention-stat", "value"),
        Input("attention-block-size", "value"),
        Input("attention-heads", "hoverData"),
        State("attention-query", "data"),
        State("session-id", "data"),
        prevent_initial_call="initial_duplicate",
    )
    def render_head(layer, head, token, stat, block, hover, query, session) -> Any:
        if ctx.triggered_id == "attention-heads" and hover is not None:
            return _preview(session, query, block, token, hover)
        try:
            data = checked(session, query, block)
            model = data["model"]
            layer, head = model.check_head(check.whole(layer, "layer"), check.whole(head, "head"))
            token = check.optional_whole(token, "query token", len(data["tokens"]))
            stat = check.choice(stat, "statistic", STATISTICS)
            scale = _scale(query)
            stats = data["stats"]
            pattern = data["patterns"][layer, head]  # [query, key]
            offsets = f"{model.name}: attention mass by key − query offset, {Head(layer, head)}"
            figures = {
                "attention-pattern": _pattern(data, layer, head, token, scale, preview=False),
                "attention-along": stats.plot("query", layer=layer, head=head, stat=stat),
                "attention-distance": offset_figure(pattern, title=offsets, causal=model.is_causal),
                "attention-block": stats.plot(
                    "block_mass", layer=layer, head=head, max_rows=BLOCK_MASS_ROWS
                ),
            }
        except Exception as err:  # noqa: BLE001
            for graph in GRAPHS[1:]:
                keep_figure(session, graph, None)
            blank = empty_figure("no head selected")
            return blank, blank, blank, blank, error_alert(err, id="attention-alert")
        figures["attention-block"].update_layout(height=420, margin={"t": 60})
        if token is not None:
            figures["attention-along"].add_vline(x=token, line={"color": "crimson", "dash": "dot"})
        label = f"{model.name}_{Head(layer, head)}"
        return *(keep_figure(session, g, f, label=label) for g, f in figures.items()), None

    @app.callback(
        Output("attention-pattern", "figure", allow_duplicate=True),
        Output("attention-query", "data", allow_duplicate=True),
        Output("attention-error", "children", allow_duplicate=True),
        Input("attention-scale", "value"),
        State("attention-layer", "value"),
        State("attention-head", "value"),
        State("attention-token", "value"),
        State("attention-block-size", "value"),
        State("attention-query", "data"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def rescale(scale, layer, head, token, block, query, session) -> Any:
        """A new colour scale: kept in the page's selection (so the head views and the URL
        use it) and the pattern redrawn."""
        try:
            data = checked(session, query, block)
            model = data["model"]
            layer, head = model.check_head(check.whole(layer, "layer"), check.whole(head, "head"))
            token = check.optional_whole(token, "query token", len(data["tokens"]))
            scale = check.choice(scale, "colour scale", SCALES)
            fig = _pattern(data, layer, head, token, scale, preview=False)
        except Exception as err:  # noqa: BLE001 - shown to the user
            return no_update, no_update, error_alert(err, id="attention-alert")
        label = f"{model.name}_{Head(layer, head)}"
        kept = keep_figure(session, "attention-pattern", fig, label=label)
        return kept, {**(query or {}), "scale": scale}, None

    head_grid.register_callbacks(app, checked)  # after `lock_head` (tests find that first)
    token_view.register_callbacks(app, checked)
    head_limits.register_callbacks(app, "attention")


def _scale(query: Any) -> str:
    """The colour scale in the page's selection (`0-1` when it names none)."""
    return check.choice((query or {}).get("scale", "0-1"), "colour scale", SCALES)


def _preview(session: Any, query: Any, block: Any, token: Any, hover: Any) -> Any:
    """The hovered head's pattern (checked: a hover names a head of this model, or the page
    says so and keeps what it shows)."""
    try:
        data = checked(session, query, block)
        model = data["model"]
        point = check.event_point(hover, "hover")
        layer, head = model.check_head(
            check.point_index(point, "y", "layer"), check.point_index(point, "x", "head")
        )
        token = check.optional_whole(token, "query token", len(data["tokens"]))
        scale = _scale(query)
    except Exception as err:  # noqa: BLE001 - shown to the user
        return *([no_update] * 4), error_alert(err, id="attention-alert")
    fig = _pattern(data, layer, head, token, scale, preview=True)
    label = f"{model.name}_{Head(layer, head)}"
    return keep_figure(session, "attention-pattern", fig, label=label), *([no_update] * 3), None


def _pattern(
    data: dict, layer: int, head: int, token: Any, scale: str, *, preview: bool
) -> go.Figure:
    name = data["model"].name
    title = f"{'preview (click to lock) ' if preview else ''}{name} {Head(layer, head)}"
    token = token if isinstance(token, int) else None
    pattern = data["patterns"][layer, head].astype(np.float32)  # [query, key]
    return pattern_figure(pattern, data["tokens"], title=title, query=token, scale=scale)
