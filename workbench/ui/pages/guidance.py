"""Guidance page ("/guidance"): head-perturbation guided decoding, side by side with plain.

- Heads by hand (multi-select of `L1H2`) or by search: `HeadHunter` runs as a background job
  (progress, Cancel) with an objective chosen from the registry
  (`analysis.steering.objectives.OBJECTIVES`; default `ioi_logprob`, a score of the guided
  output; `ioi_logit_diff` is listed but marked inflated by construction) on a search split of
  the objective's prompts, stores its `HeadSearchResult` as a run and fills the selection with
  the heads it chose. The page then shows the HELD-OUT comparison (no guidance, HeadHunter's
  heads, layer-level guidance, random heads; means with 95% bootstrap intervals and paired
  differences, `analysis.steering.head_search_comparison`) as a figure and a table, and a
  visible note when the search selected no heads.
- Perturbation method, `u` (interpolation towards the target pattern) and `w` (guidance
  scale) sliders; Generate decodes the prompt twice with `analysis.steering.guidance.guide`: `w = 0`
  (plain) and the chosen `w`, shown side by side with the per-step logit shift figure.

Thin: all numbers come from `analysis`. Every input is checked (`workbench.ui.input_checks`):
heads (`L1H2`) inside the model, a listed method, `u` in [0, 1], `w` in [0, 5], 1-64 new
tokens, a registered objective, 4-64 search prompts, 1-4 rounds -> else one red alert. The
search request is checked in an ordinary callback before the background job starts (and again
in the job); the job's run must be a head-search run of this session. Figures are kept for
the exports (`keep_figure`). Ids are prefixed `guidance-`.

The URL keeps the shared selection and the page's controls (`selection.PAGE_KEYS["guidance"]`:
heads, method, tokens, u, w, objective, n, rounds) and, after a head search, `run=<its run>`:
opening such a link shows that search again (a head-search run of this browser session only).
"""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc
from dash import Input, Output, State, dcc, html, no_update

from analysis.steering.head_search_comparison import (
    comparison_figure,
    heldout_comparison,
    objective_axis_label,
)
from analysis.steering.objectives import OBJECTIVES
from workbench.heads import Head
from workbench.ui import input_checks as check
from workbench.ui import jobs, selection, state
from workbench.ui.circuit_runs import check_own_run
from workbench.ui.components import (
    empty_figure,
    error_alert,
    figure_card,
    keep_figure,
    page_header,
    register_figure_export,
)
from workbench.ui.guidance_search import (
    MAX_W,
    METHODS,
    comparison_table,
    search_controls,
    search_job,
    search_note,
    search_request,
)
from workbench.ui.shared import head_options, parse_heads

PAGE = {"path": "/guidance", "name": "Guidance", "title": "Guidance · Workbench", "order": 40}
MAX_NEW_TOKENS = 64


def layout(**query: str) -> Any:
    selected = selection.parse_query(query)
    settings = selection.parse_page("guidance", query)
    model_name, prompt = selection.model_and_prompt(selected)
    options = head_options(model_name)
    first = (
        [str(Head(selected["layer"], selected["head"]))]
        if "layer" in selected and "head" in selected
        else []
    )
    if "heads" in settings:  # the URL's heads, those of this model
        first = [h for h in settings["heads"] if h in options]
    controls = dmc.Stack(
        [
            dmc.Group(
                [
                    dmc.MultiSelect(
                        id="guidance-heads",
                        label="Heads",
                        data=options,
                        value=first,
                        w=360,
                        searchable=True,
                        clearable=True,
                    ),
                    dmc.Select(
                        id="guidance-method",
                        label="Perturbation",
                        data=METHODS,
                        value=settings.get("method", "identity"),
                        w=150,
                    ),
                    dmc.NumberInput(
                        id="guidance-tokens",
                        label="New tokens",
                        value=settings.get("tokens", 8),
                        min=1,
                        max=64,
                        w=110,
                    ),
                ],
                align="flex-end",
            ),
            dmc.Text("u: interpolation towards the perturbed pattern", size="sm"),
            dmc.Slider(
                id="guidance-u",
                min=0,
                max=1,
                step=0.05,
                value=settings.get("u", 1.0),
                marks=[{"value": v, "label": str(v)} for v in (0, 0.5, 1)],
            ),
            dmc.Text("w: guidance scale (0 = plain decoding)", size="sm", mt="md"),
            dmc.Slider(
                id="guidance-w",
                min=0,
                max=5,
                step=0.1,
                value=settings.get("w", 1.5),
                marks=[{"value": v, "label": str(v)} for v in (0, 1, 2, 3, 4, 5)],
            ),
        ],
        gap=6,
    )
    outputs = dmc.SimpleGrid(
        [
            dmc.Paper(
                [dmc.Text("Plain (w = 0)", fw=600), dmc.Code("", id="guidance-plain", block=True)],
                withBorder=True,
                p="sm",
            ),
            dmc.Paper(
                [dmc.Text("Guided", fw=600), dmc.Code("", id="guidance-guided", block=True)],
                withBorder=True,
                p="sm",
            ),
        ],
        cols=2,
    )
    return dmc.Stack(
        [
            selection.query_store("guidance", query),
            page_header(
                "Guidance",
                "Decode with l = (1 + w) l_orig - w l_perturbed, perturbing the chosen heads.",
            ),
            dmc.Text([dmc.Code(model_name), " · ", prompt[:160]], size="sm"),
            controls,
            search_controls(settings),
            dmc.Group(
                [
                    dmc.Button("Generate", id="guidance-generate"),
                    html.Div(
                        jobs.job_controls("guidance", run_label="Search heads"), style={"flex": 1}
                    ),
                ],
                align="flex-start",
                mt="lg",
            ),
            dcc.Store(id="guidance-search-request"),
            dcc.Store(
                id="guidance-job",
                data={"run_id": settings["run"]} if "run" in settings else None,
            ),
            html.Div(id="guidance-error"),
            outputs,
            figure_card("guidance-shift", "Logit shift per step"),
            html.Div(id="guidance-search-note"),
            figure_card("guidance-comparison", "Head search: held-out comparison"),
            html.Div(id="guidance-comparison-table"),
        ],
        gap="sm",
    )


def register_callbacks(app: Any) -> None:
    selection.register_writer(
        app,
        "guidance",
        {
            "heads": ("guidance-heads", "value"),
            "method": ("guidance-method", "value"),
            "tokens": ("guidance-tokens", "value"),
            "u": ("guidance-u", "value"),
            "w": ("guidance-w", "value"),
            "objective": ("guidance-objective", "value"),
            "n": ("guidance-prompts", "value"),
            "rounds": ("guidance-rounds", "value"),
            "run": ("guidance-job", "data"),
        },
    )
    register_figure_export(app, "guidance-shift")

    @app.callback(
        Output("guidance-plain", "children"),
        Output("guidance-guided", "children"),
        Output("guidance-shift", "figure"),
        Output("guidance-error", "children"),
        Input("guidance-generate", "n_clicks"),
        State("guidance-heads", "value"),
        State("guidance-method", "value"),
        State("guidance-u", "value"),
        State("guidance-w", "value"),
        State("guidance-tokens", "value"),
        State("guidance-query", "data"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def generate(_clicks, heads, method, u, w, n_tokens, query, session) -> Any:
        from analysis.steering.guidance import guide
        from analysis.steering.head_perturbation import HeadPerturbation

        try:
            session = state.check_session(session)
            model_name, prompt = selection.model_and_prompt(query)
            model = state.open_model(model_name)
            p = HeadPerturbation(
                heads=parse_heads(heads),
                method=check.choice(method, "perturbation", METHODS),
                u=check.number(u, "u", 0.0, 1.0),
            )
            p.check(model)
            w = check.number(w, "w", 0.0, MAX_W)
            n = check.whole(n_tokens, "new tokens", MAX_NEW_TOKENS + 1, low=1)
            with state.model_lock(model_name):
                plain = guide(model, prompt, p, w=0.0, max_new_tokens=n)
                guided = guide(model, prompt, p, w=w, max_new_tokens=n)
        except Exception as err:  # noqa: BLE001 - shown to the user
            keep_figure(session, "guidance-shift", None)
            return "", "", empty_figure("no generation"), error_alert(err, id="guidance-alert")
        figure = keep_figure(session, "guidance-shift", guided.plot(), label=model_name)
        return plain.text, guided.text, figure, None

    register_figure_export(app, "guidance-comparison")

    @app.callback(
        Output("guidance-objective-help", "children"),
        Input("guidance-objective", "value"),
    )
    def objective_help(objective) -> Any:
        try:
            name = check.choice(objective, "objective", sorted(OBJECTIVES))
        except ValueError as err:
            return str(err)
        spec = OBJECTIVES[name]
        return f"{spec.description}. Scores: {objective_axis_label(name)}."

    @app.callback(
        Output("guidance-search-request", "data"),
        Output("guidance-error", "children", allow_duplicate=True),
        Input("guidance-run", "n_clicks"),
        State("guidance-objective", "value"),
        State("guidance-prompts", "value"),
        State("guidance-rounds", "value"),
        State("guidance-method", "value"),
        State("guidance-u", "value"),
        State("guidance-w", "value"),
        State("guidance-query", "data"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def request_search(_clicks, objective, n, rounds, method, u, w, query, session) -> Any:
        raw = {"objective": objective, "n": n, "rounds": rounds, "method": method, "u": u, "w": w}
        try:
            model_name, _ = selection.model_and_prompt(query)
            request = {"session": state.check_session(session), "model_name": model_name}
            request |= search_request(raw)
        except ValueError as err:
            return no_update, error_alert(err, id="guidance-alert")
        return request, None

    @app.callback(
        Output("guidance-job", "data"),
        Input("guidance-search-request", "data"),
        **jobs.background_options("guidance"),
    )
    def search_heads(set_progress, request) -> Any:
        try:
            request = check.mapping(request, "search request")
            options = search_request(request)
            model_name, _ = selection.model_and_prompt({"model": request.get("model_name")})
            session = state.check_session(request.get("session"))
        except ValueError as err:
            return {"error": str(err)}
        return jobs.job_outcome(
            search_job, set_progress, session=session, model_name=model_name, **options
        )

    @app.callback(
        Output("guidance-heads", "value"),
        Output("guidance-search-note", "children"),
        Output("guidance-comparison", "figure"),
        Output("guidance-comparison-table", "children"),
        Output("guidance-error", "children", allow_duplicate=True),
        Input("guidance-job", "data"),
        State("session-id", "data"),
        prevent_initial_call="initial_duplicate",  # a `run=` link fills the job store
    )
    def show_search(job, session) -> Any:
        from analysis.steering.head_search_result import HeadSearchResult

        if job is None:  # the empty store: the page's first call (no run linked) or a reset
            return no_update, no_update, no_update, no_update, no_update
        keep_figure(session, "guidance-comparison", None)
        try:
            session = state.check_session(session)
            run_id = check_own_run(check.job_run_id(job, "head search"), "head_search", session)
            result = state.run_store().load_result(run_id)
            if not isinstance(result, HeadSearchResult):
                raise ValueError("head search: the run holds no head-search result")
            table = heldout_comparison(result)
        except Exception as err:  # noqa: BLE001 - shown to the user
            blank = empty_figure("no head search")
            return no_update, None, blank, None, error_alert(err, id="guidance-alert")
        fig = keep_figure(
            session,
            "guidance-comparison",
            comparison_figure(result, table),
            label=result.model_name,
        )
        heads = [str(head) for head in result.heads]
        return heads, search_note(result), fig, comparison_table(result, table), None
