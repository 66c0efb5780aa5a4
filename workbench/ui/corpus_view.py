"""The Attention page's "Corpus" section: stored corpus statistics (`analysis.statistics`).

Lists the complete "corpus-stats" runs in the run store for the page's model (from every
session: these runs usually come from `workbench corpus-stats` on the command line), and shows
the chosen run's layer x head heatmap of one statistic's mean or quantile and the distance
histogram of the page's selected (layer, head), with the run's document and query counts.
Figures come from the stored result's own `CorpusStats.plot` (never recomputed); the result is
read once per browser session and kept server-side (`state.put_result`).

Every input is checked (`workbench.ui.input_checks`): a run id that is not a complete
corpus-stats run, an unknown statistic or aggregate, a layer/head outside the run's model ->
the section's red alert. Drawn figures are kept for the exports (`keep_figure`).

Caveats: runs are matched to the model by the name they were stored under (`tiny-ioi`, or the
folder path exactly as given). A run written after the page opened appears after "Refresh".
Ids are prefixed `attention-corpus-`.
"""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc
from dash import Input, Output, State, html, no_update

from workbench.heads import Head
from workbench.ui import input_checks as check
from workbench.ui import selection, state
from workbench.ui.components import (
    empty_figure,
    error_alert,
    figure_card,
    info_alert,
    keep_figure,
    register_figure_export,
    register_table_export,
    table_buttons,
)

STATISTICS = ["entropy", "sink", "max_prob", "mean_distance"]
AGGREGATES = ["mean", "q5", "q25", "q50", "q75", "q95"]  # corpus_stats' default quantiles
GRAPHS = ("attention-corpus-heads", "attention-corpus-distance")


def as_index(value: Any) -> int:
    """A layer/head NumberInput value (int, whole float, or '' when cleared) as an int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("layer/head: enter a whole number")


def corpus_runs(model_name: str) -> list[Any]:
    """Complete corpus-stats runs of `model_name` in the run store, newest first."""
    from analysis.statistics.corpus_stats import CorpusStats

    runs = state.run_store().list_runs()[::-1]
    return [r for r in runs if r.kind == CorpusStats.kind and r.model == model_name]


def load_corpus(session: str, run_id: str) -> Any:
    """The stored `CorpusStats` of `run_id`, read once per session (refuses other kinds)."""
    from analysis.statistics.corpus_stats import CorpusStats

    if not isinstance(run_id, str) or not run_id or len(run_id) > 200:
        raise ValueError("run: choose a corpus-stats run")
    key = f"corpus|{run_id}"
    found = state.get_result(session, key)
    if found is None:
        try:
            info = state.run_store().get_run(run_id)
        except (KeyError, ValueError, OSError) as err:
            raise ValueError(f"run: {run_id!r} is not a run in the store") from err
        if info.kind != CorpusStats.kind or info.status != "complete":
            raise ValueError(f"run: {run_id!r} is not a complete {CorpusStats.kind} run")
        found = state.run_store().load_result(run_id)
        state.put_result(session, key, found)
    return found


def counts_line(result: Any) -> str:
    """The run's documents and queries, e.g. '6 documents · 84 queries per head · inprocess'."""
    queries = sorted(set(result.per_head["n_queries"].astype(int)))
    per_head = str(queries[0]) if len(queries) == 1 else f"{queries[0]}-{queries[-1]}"
    config = result.config
    return (
        f"{config.get('documents', '?')} documents · {per_head} queries per head · "
        f"{config.get('docs_per_shard', '?')} documents per shard · "
        f"executor {config.get('executor', '?')}"
    )


def section() -> Any:
    """The section's controls, counts line, alert slot and its two figure cards."""
    controls = dmc.Group(
        [
            dmc.Select(id="attention-corpus-run", label="Corpus run", data=[], w=440),
            dmc.Select(
                id="attention-corpus-stat",
                label="Statistic",
                data=STATISTICS,
                value="entropy",
                w=160,
            ),
            dmc.Select(
                id="attention-corpus-aggregate",
                label="Aggregate",
                data=AGGREGATES,
                value="mean",
                w=110,
            ),
            dmc.Button(
                "Refresh", id="attention-corpus-refresh", size="compact-sm", variant="light"
            ),
            table_buttons("attention-corpus"),
        ],
        align="flex-end",
    )
    return dmc.Stack(
        [
            dmc.Title("Corpus", order=3),
            dmc.Text(
                [
                    "Statistics aggregated over a corpus by ",
                    dmc.Code("workbench corpus-stats"),
                    " (or ",
                    dmc.Code("analysis.statistics.corpus_stats(..., store=...)"),
                    "); the "
                    "histogram follows the layer/head selected above, and clicking a cell "
                    "selects that head.",
                ],
                c="dimmed",
                size="sm",
            ),
            controls,
            dmc.Text(id="attention-corpus-counts", size="sm"),
            html.Div(id="attention-corpus-error"),
            dmc.Grid(
                [
                    dmc.GridCol(
                        figure_card("attention-corpus-heads", "Corpus layer × head"), span=5
                    ),
                    dmc.GridCol(
                        figure_card("attention-corpus-distance", "Corpus distance histogram"),
                        span=7,
                    ),
                ]
            ),
        ],
        gap="xs",
    )


def register_callbacks(app: Any) -> None:
    """The section's callbacks (run listing, figures, exports)."""
    for graph in GRAPHS:
        register_figure_export(app, graph)
    register_table_export(
        app,
        "attention-corpus",
        lambda session, run_id: (f"corpus_{run_id}", load_corpus(session, run_id).to_frame()),
        State("attention-corpus-run", "value"),
    )

    @app.callback(
        Output("attention-corpus-run", "data"),
        Output("attention-corpus-run", "value"),
        Output("attention-corpus-error", "children", allow_duplicate=True),
        Input("attention-query", "data"),
        Input("attention-corpus-refresh", "n_clicks"),
        State("attention-corpus-run", "value"),
        prevent_initial_call="initial_duplicate",
    )
    def list_runs(query: Any, _refresh: Any, current: Any) -> Any:
        try:
            model_name, _ = selection.model_and_prompt(query)
        except ValueError as err:
            return [], None, error_alert(err, id="attention-corpus-alert")
        runs = corpus_runs(model_name)
        options = [
            {
                "value": r.run_id,
                "label": f"{r.created_at:%Y-%m-%d %H:%M} · {r.config.get('documents', '?')} "
                f"docs · {r.run_id}",
            }
            for r in runs
        ]
        ids = [r.run_id for r in runs]
        chosen = current if isinstance(current, str) and current in ids else None
        return options, chosen or (ids[0] if ids else None), no_update

    @app.callback(
        Output("attention-corpus-heads", "figure"),
        Output("attention-corpus-distance", "figure"),
        Output("attention-corpus-counts", "children"),
        Output("attention-corpus-error", "children"),
        Output("attention-corpus-aggregate", "data"),
        Input("attention-corpus-run", "value"),
        Input("attention-corpus-stat", "value"),
        Input("attention-corpus-aggregate", "value"),
        Input("attention-layer", "value"),
        Input("attention-head", "value"),
        State("attention-query", "data"),
        State("session-id", "data"),
    )
    def render(run_id, stat, aggregate, layer, head, query, session) -> Any:
        blank = empty_figure("no corpus run")
        for graph in GRAPHS:
            keep_figure(session, graph, None)
        try:
            model_name, _ = selection.model_and_prompt(query)
            if not run_id:
                hint = info_alert(
                    f"No corpus-stats runs for {model_name} in the run store: run "
                    f"`workbench corpus-stats {model_name} --texts PATH`, then Refresh."
                )
                return blank, blank, "", hint, AGGREGATES
            result = load_corpus(state.check_session(session), run_id)
            n_layers, n_heads = result.distance_hist.shape[:2]
            stat = check.choice(stat, "statistic", STATISTICS)
            aggregate = check.choice(aggregate, "aggregate", result.aggregates())
            picked = Head(
                check.whole(as_index(layer), "layer"), check.whole(as_index(head), "head")
            )
            layer, head = picked.check(n_layers, n_heads, result.config.get("model", ""))
            heads = result.plot(stat, aggregate=aggregate)
            distance = result.plot("distance", layer=layer, head=head)
        except Exception as err:  # noqa: BLE001 - shown to the user
            alert = error_alert(err, id="attention-corpus-alert")
            return blank, blank, "", alert, AGGREGATES
        height = max(300, 36 * n_layers + 160)
        heads.update_layout(height=height)
        distance.update_layout(height=height)
        model = result.config.get("model", model_name)
        return (
            keep_figure(session, GRAPHS[0], heads, label=f"{model}_{run_id}"),
            keep_figure(
                session, GRAPHS[1], distance, label=f"{model}_{run_id}_{Head(layer, head)}"
            ),
            counts_line(result),
            None,
            result.aggregates(),
        )
