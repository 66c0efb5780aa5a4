"""Guidance page ("/guidance"): head-perturbation guided decoding, side by side with plain.

- Heads by hand (multi-select of `L1H2`) or by search: `HeadHunter` runs as a background job
  (progress, Cancel) on the IOI task for decoders that handle it, else on the prompt's
  next-token loss, and fills the selection with the heads it chose.
- Perturbation method, `u` (interpolation towards the target pattern) and `w` (guidance
  scale) sliders; Generate decodes the prompt twice with `analysis.steering.guidance.guide`: `w = 0`
  (plain) and the chosen `w`, shown side by side with the per-step logit shift figure.

Thin: all numbers come from `analysis`. Every input is checked (`workbench.ui.input_checks`):
heads (`L1H2`) inside the model, a listed method, `u` in [0, 1], `w` in [0, 5], 1-64 new
tokens -> else one red alert. The logit-shift figure is kept for the exports
(`keep_figure`). Ids are prefixed `guidance-`.
"""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc
from dash import Input, Output, State, html

from workbench.heads import Head
from workbench.ui import input_checks as check
from workbench.ui import jobs, selection, state
from workbench.ui.components import (
    empty_figure,
    error_alert,
    figure_card,
    keep_figure,
    page_header,
    register_figure_export,
    user_message,
)
from workbench.ui.shared import head_options, parse_heads

PAGE = {"path": "/guidance", "name": "Guidance", "title": "Guidance · Workbench", "order": 40}
METHODS = ["identity", "uniform", "mean_query", "temperature", "zero", "mean"]
MAX_W = 5.0
MAX_NEW_TOKENS = 64


def layout(**query: str) -> Any:
    selected = selection.parse_query(query)
    model_name, prompt = selection.model_and_prompt(selected)
    first = (
        [str(Head(selected["layer"], selected["head"]))]
        if "layer" in selected and "head" in selected
        else []
    )
    controls = dmc.Stack(
        [
            dmc.Group(
                [
                    dmc.MultiSelect(
                        id="guidance-heads",
                        label="Heads",
                        data=head_options(model_name),
                        value=first,
                        w=360,
                        searchable=True,
                        clearable=True,
                    ),
                    dmc.Select(
                        id="guidance-method",
                        label="Perturbation",
                        data=METHODS,
                        value="identity",
                        w=150,
                    ),
                    dmc.NumberInput(
                        id="guidance-tokens", label="New tokens", value=8, min=1, max=64, w=110
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
                value=1.0,
                marks=[{"value": v, "label": str(v)} for v in (0, 0.5, 1)],
            ),
            dmc.Text("w: guidance scale (0 = plain decoding)", size="sm", mt="md"),
            dmc.Slider(
                id="guidance-w",
                min=0,
                max=5,
                step=0.1,
                value=1.5,
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
            html.Div(id="guidance-error"),
            outputs,
            figure_card("guidance-shift", "Logit shift per step"),
        ],
        gap="sm",
    )


def register_callbacks(app: Any) -> None:
    selection.register_writer(app, "guidance", {})
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

    @app.callback(
        Output("guidance-heads", "value"),
        Output("guidance-error", "children", allow_duplicate=True),
        Input("guidance-run", "n_clicks"),
        State("guidance-method", "value"),
        State("guidance-u", "value"),
        State("guidance-w", "value"),
        State("guidance-query", "data"),
        **jobs.background_options("guidance"),
    )
    def search_heads(set_progress, _clicks, method, u, w, query) -> Any:
        try:
            heads = _search(
                set_progress,
                *selection.model_and_prompt(query),
                method=check.choice(method, "perturbation", METHODS),
                u=check.number(u, "u", 0.0, 1.0),
                w=check.number(w, "w", 0.0, MAX_W),
            )
        except Exception as err:  # noqa: BLE001
            return [], error_alert(user_message(err), id="guidance-alert")
        return [str(head) for head in heads], None


def _search(set_progress, model_name: str, prompt: str, *, method: str, u: float, w: float):
    """HeadHunter's heads (runs in the forked job process)."""
    from analysis.steering.head_hunter import HeadHunter, ioi_objective, loss_objective, split_rows
    from workbench.tasks import make_task

    set_progress((5, "preparing the objective"))
    model = state.open_model(model_name)
    try:
        task = make_task("ioi", model, n=16, seed=0)
        objective, n_rows = ioi_objective(task), task.n_prompts
    except ValueError:  # not an IOI model: the prompt's own next-token loss
        objective, n_rows = loss_objective(model, [prompt, prompt]), 2
    select, heldout = split_rows(n_rows, seed=0)
    hunter = HeadHunter(method=method, u=u, w=w, rounds=2, progress=True)
    with jobs.tqdm_progress(set_progress, "head search"):
        hunter.fit(model, objective, select=select, heldout=heldout)
    return hunter.heads_
