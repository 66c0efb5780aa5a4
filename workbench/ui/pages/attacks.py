"""Attacks page ("/attacks"): GCG token attacks with attention dissipation, in the background.

- Configure objective, targeted heads, dissipation weight, steps, adversarial length and the
  number of IOI prompts; Run starts a background job (progress, Cancel) that fits
  `analysis.attacks.TokenAttack` and stores its `AttackResult` as a run.
- Loss curve per prompt, the adversarial tokens and outcomes per prompt, the targeted heads'
  entropy before/after (`AttackResult.plot`), and the first targeted head's pattern on the
  original and on the attacked text of a chosen prompt.
- Universal mode (`workbench.ui.attack_universal`): one span fitted on search prompts, its
  held-out success rate with a 95% bootstrap interval beside the random baseline's.

Prompts: the IOI task for decoders that handle it (`flip`, `raise_loss`, `dissipation`), the
selected prompt for `embedding` (encoders) and for `dissipation` on other models.
Every input is checked (`workbench.ui.input_checks`) against the controls' own bounds; the
job's run must be an attack run of this session; a bad value -> one red alert. Drawn
figures are kept for the exports (`keep_figure`). Ids are prefixed `attacks-`.
"""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc
from dash import Input, Output, State, dcc, html, no_update

from analysis.statistics.attention_pattern import attention_pattern, pattern_figure
from workbench.heads import Head
from workbench.ui import attack_universal, jobs, selection, state
from workbench.ui import input_checks as check
from workbench.ui.attack_settings import (
    OBJECTIVES,
    SEED_LIMITS,
    WEIGHT_LIMITS,
    attack_options,
    check_shared,
)
from workbench.ui.circuit_runs import check_own_run
from workbench.ui.components import (
    empty_figure,
    error_alert,
    figure_card,
    keep_figure,
    page_header,
    register_figure_export,
    user_message,
)
from workbench.ui.shared import SESSION_KEY, head_options

PAGE = {"path": "/attacks", "name": "Attacks", "title": "Attacks · Workbench", "order": 50}
GRAPHS = ("attacks-loss", "attacks-entropy", "attacks-before", "attacks-after")
LIMITS = {
    "weight": WEIGHT_LIMITS,
    "steps": (1, 1000),
    "n_adv": (1, 32),
    "n_prompts": (1, 64),
    "seed": SEED_LIMITS,
}
COUNTS = {"steps": "steps", "n_adv": "adversarial tokens", "n_prompts": "prompts"}


def _number(id: str, label: str, value: float, *, min: float = 1, max: float = 1000, **kw):
    return dmc.NumberInput(id=id, label=label, value=value, min=min, max=max, w=120, **kw)


def layout(**query: str) -> Any:
    selected = selection.parse_query(query)
    settings = selection.parse_page("attacks", query)
    model_name, prompt = selection.model_and_prompt(selected)
    options = head_options(model_name)
    value = settings.get
    controls = dmc.Group(
        [
            dmc.Select(
                id="attacks-objective",
                label="Objective",
                data=list(OBJECTIVES),
                value=value("objective", "flip"),
                w=150,
            ),
            dmc.MultiSelect(
                id="attacks-heads",
                label="Heads to dissipate",
                data=options,
                value=[h for h in value("heads", []) if h in options],
                w=260,
                clearable=True,
            ),
            _number(
                "attacks-weight",
                "Dissipation weight",
                value("weight", 0.0),
                min=0,
                max=100,
                step=0.5,
            ),
            _number("attacks-steps", "Steps", value("steps", 20)),
            _number("attacks-nadv", "Adversarial tokens", value("n_adv", 4), max=32),
            _number("attacks-prompts", "Prompts", value("n_prompts", 2), max=64),
            _number("attacks-seed", "Seed", value("seed", 0), min=0, max=2**31),
        ],
        align="flex-end",
    )
    return dmc.Stack(
        [
            selection.query_store("attacks", query),
            dcc.Store(id="attacks-job", data={"run_id": value("run")} if value("run") else None),
            page_header(
                "Attacks",
                "Greedy Coordinate Gradient token attacks on the model's answer and attention.",
            ),
            dmc.Text([dmc.Code(model_name), " · ", prompt[:160]], size="sm"),
            controls,
            jobs.job_controls("attacks", run_label="Run attack"),
            html.Div(id="attacks-error"),
            html.Div(id="attacks-table"),
            html.Div(id="attacks-baseline"),
            dmc.SimpleGrid(
                [
                    figure_card("attacks-loss", "Loss per step"),
                    figure_card("attacks-entropy", "Targeted heads' entropy"),
                ],
                cols=2,
            ),
            dmc.Select(id="attacks-row", label="Prompt for the patterns", data=[], w=200),
            dmc.SimpleGrid(
                [
                    figure_card("attacks-before", "Attention before"),
                    figure_card("attacks-after", "Attention after"),
                ],
                cols=2,
            ),
            attack_universal.section(query),
        ],
        gap="sm",
    )


def attack_job(
    set_progress,
    *,
    session,
    model_name,
    prompt,
    objective,
    heads,
    weight,
    steps,
    n_adv,
    n_prompts,
    seed,
) -> str:
    """Fit the attack and store its result; returns the run id (forked job process)."""
    from analysis.attacks.token_attack import TokenAttack
    from workbench.tasks import make_task

    state.check_session(session)
    set_progress((3, "preparing prompts"))
    model = state.open_model(model_name)
    attack = TokenAttack(**attack_options(objective, heads, weight, steps, n_adv, seed))
    if objective == "embedding":
        prompts: Any = [prompt]
    else:
        try:
            prompts = make_task("ioi", model, n=int(n_prompts), seed=int(seed))
        except ValueError:
            if objective != "dissipation":
                raise
            prompts = [prompt]
    with jobs.tqdm_progress(set_progress, "attack"):
        result = attack.fit(model, prompts).result_
    set_progress((97, "random baseline"))
    result = attack_universal.with_baseline(model, attack, prompts, result)
    set_progress((99, "saving"))
    config = {
        "objective": objective,
        "heads": [str(h) for h in heads],
        "steps": int(steps),
        "n_adv": int(n_adv),
        "seed": int(seed),
        "weight": float(weight),
        "n_prompts": int(n_prompts),
        SESSION_KEY: session,
    }
    return state.run_store().save(result, model=model.name, config=config)


def outcomes_table(frame) -> Any:
    columns = ["index", "success", "steps_used", "metric_before", "metric_after", "adversarial"]
    rows = [
        dmc.TableTr(
            [
                dmc.TableTd(f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c]))
                for c in columns
            ],
            id=f"attacks-outcome-{row['index']}",
        )
        for row in frame.to_dict("records")
    ]
    head = dmc.TableThead(dmc.TableTr([dmc.TableTh(c) for c in columns]))
    return dmc.Table([head, dmc.TableTbody(rows)], striped=True, withTableBorder=True)


def register_callbacks(app: Any) -> None:
    selection.register_writer(
        app,
        "attacks",
        {
            "objective": ("attacks-objective", "value"),
            "heads": ("attacks-heads", "value"),
            "weight": ("attacks-weight", "value"),
            "steps": ("attacks-steps", "value"),
            "n_adv": ("attacks-nadv", "value"),
            "n_prompts": ("attacks-prompts", "value"),
            "seed": ("attacks-seed", "value"),
            "run": ("attacks-job", "data"),
        },
    )
    for graph in GRAPHS:
        register_figure_export(app, graph)
    attack_universal.register_callbacks(app)

    @app.callback(
        Output("attacks-job", "data"),
        Input("attacks-run", "n_clicks"),
        State("attacks-objective", "value"),
        State("attacks-heads", "value"),
        State("attacks-weight", "value"),
        State("attacks-steps", "value"),
        State("attacks-nadv", "value"),
        State("attacks-prompts", "value"),
        State("attacks-seed", "value"),
        State("attacks-query", "data"),
        State("session-id", "data"),
        **jobs.background_options("attacks"),
    )
    def run_attack(
        set_progress,
        _clicks,
        objective,
        heads,
        weight,
        steps,
        n_adv,
        n_prompts,
        seed,
        query,
        session,
    ) -> Any:
        try:
            model_name, prompt = selection.model_and_prompt(query)
            options = check_shared(session, objective, heads, weight, seed)
            for name, value in (("steps", steps), ("n_adv", n_adv), ("n_prompts", n_prompts)):
                low, high = LIMITS[name]
                options[name] = check.whole(value, COUNTS[name], high + 1, low=low)
        except ValueError as err:
            return {"error": str(err)}
        return jobs.job_outcome(
            attack_job, set_progress, model_name=model_name, prompt=prompt, **options
        )

    @app.callback(
        Output("attacks-table", "children"),
        Output("attacks-loss", "figure"),
        Output("attacks-entropy", "figure"),
        Output("attacks-row", "data"),
        Output("attacks-row", "value"),
        Output("attacks-error", "children"),
        Input("attacks-job", "data"),
        State("session-id", "data"),
        prevent_initial_call="initial_duplicate",  # a `run=` link fills the job store
    )
    def show_attack(job, session) -> Any:
        from analysis.attacks.token_attack import AttackResult  # registers the result type

        if job is None:  # the empty store: the page's first call (no run linked) or a reset
            return (no_update,) * 6
        blank = empty_figure("no attack yet")
        for graph in GRAPHS:
            keep_figure(session, graph, None)
        try:
            session = state.check_session(session)
            run_id = check_own_run(check.job_run_id(job, "attack"), AttackResult.kind, session)
            result = state.run_store().load_result(run_id)
            state.put_result(session, "attack", result)
        except Exception as err:  # noqa: BLE001
            return None, blank, blank, [], None, error_alert(err, id="attacks-alert")
        entropy = result.plot("entropy") if result.heads else None
        rows = [str(i) for i in result.prompts["index"]]
        return (
            outcomes_table(result.prompts),
            keep_figure(session, "attacks-loss", result.plot("loss"), label=result.model_name),
            keep_figure(session, "attacks-entropy", entropy, label=result.model_name)
            or empty_figure("no heads targeted"),
            rows,
            rows[0],
            None,
        )

    @app.callback(
        Output("attacks-before", "figure"),
        Output("attacks-after", "figure"),
        Output("attacks-error", "children", allow_duplicate=True),
        Input("attacks-row", "value"),
        State("attacks-query", "data"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def show_patterns(row, query, session) -> Any:
        try:
            session = state.check_session(session)
            result = state.get_result(session, "attack")
            if result is None or row is None:
                return empty_figure(), empty_figure(), no_update
            rows = [str(i) for i in result.prompts["index"]]
            row = check.choice(row, "prompt", rows)
        except ValueError as err:
            return no_update, no_update, error_alert(err, id="attacks-alert")
        record = result.prompts[result.prompts["index"].astype(str) == row].iloc[0]
        target = result.heads[0] if result.heads else Head(0, 0)
        layer, head = target
        model_name = result.model_name
        original = str(record["text_after"]).replace(str(record["adversarial"]), "", 1).strip()
        figures = []
        for label, text in (("before", original), ("after", str(record["text_after"]))):
            try:
                with state.model_lock(model_name):
                    found = attention_pattern(state.open_model(model_name), text, layer, head)
                title = f"{label}: {model_name} {target}"
                fig = pattern_figure(found.pattern, found.tokens, title=title)
                name = f"{model_name}_{target}_prompt{row}"
                figures.append(keep_figure(session, f"attacks-{label}", fig, label=name))
            except Exception as err:  # noqa: BLE001
                keep_figure(session, f"attacks-{label}", None)
                figures.append(empty_figure(user_message(err)))
        return *figures, None
