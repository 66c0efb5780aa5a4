"""The Attacks page's universal mode: one span fitted on search prompts, judged on held-out ones.

`section()` lays out the controls (search prompts, held-out prompts, steps, adversarial tokens),
Run/Cancel with a progress bar (`workbench.ui.jobs`), and the outcome: the span (text and token
ids), a table and a bar chart of the held-out success rate with its 95% bootstrap interval
beside the initial span's and the random baseline's (random spans of the same length and token
filter, `RANDOM_DRAWS` per prompt), and one row per held-out prompt. `register_callbacks(app)`
attaches the background job and the display; the Attacks page calls both.

The job fits `analysis.attacks.UniversalAttack` with the page's objective, heads, dissipation
weight and seed, on IOI prompts made with task seed `SEARCH_SEED` (search) and `HELD_OUT_SEED`
(held out), the CLI's defaults; `embedding` uses sentences of the similarity task instead. It
reports progress per search step, stores the `UniversalAttackResult` in the run store (tagged
with the session) and hands back its run id; the display loads only a universal_attack run of
the same session. Bad input -> one red alert (`attacks-uni-alert`). Ids start `attacks-uni-`.

For the per-prompt attack, `with_baseline` (called by its job) adds the random baseline of its
prompts to its `AttackResult`, and `attacks-baseline` shows its success rate beside the
baseline's, each with a 95% bootstrap interval (`circuits.bootstrap`) over the prompts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dash_mantine_components as dmc
from dash import Input, Output, State, dcc, html

from workbench.ui import input_checks as check
from workbench.ui import jobs, selection, state
from workbench.ui.attack_settings import attack_options, check_shared
from workbench.ui.circuit_runs import check_own_run
from workbench.ui.components import (
    empty_figure,
    error_alert,
    figure_card,
    keep_figure,
    register_figure_export,
)
from workbench.ui.shared import SESSION_KEY

PREFIX = "attacks-uni"
GRAPH = "attacks-uni-rates-figure"
SEARCH_SEED = 7
HELD_OUT_SEED = 1000
RANDOM_DRAWS = 16
N_BOOT = 1000
LIMITS = {"search": (1, 64), "held_out": (1, 200), "steps": (1, 500), "n_adv": (1, 32)}
LABELS = {
    "search": "search prompts",
    "held_out": "held-out prompts",
    "steps": "steps",
    "n_adv": "adversarial tokens",
}


def _number(key: str, label: str, value: int, query: Mapping[str, Any]) -> Any:
    """A count control; its initial value from the address's `uni_<key>` when that is a whole
    number within the control's bounds."""
    low, high = LIMITS[key]
    given = query.get(f"uni_{key.replace('_', '')}")
    if isinstance(given, str) and given.isdigit() and low <= int(given) <= high:
        value = int(given)
    return dmc.NumberInput(
        id=f"{PREFIX}-{key.replace('_', '')}", label=label, value=value, min=low, max=high, w=140
    )


def section(query: Mapping[str, Any] | None = None) -> Any:
    """The universal mode's controls, job controls and outcome panels; `query` (the page's
    address arguments) may set the counts' initial values: `uni_search`, `uni_heldout`,
    `uni_steps`, `uni_nadv` (bad values ignored; not written back to the address)."""
    query = query if isinstance(query, Mapping) else {}
    return dmc.Stack(
        [
            dmc.Title("Universal span", order=4),
            dmc.Text(
                "One span for many prompts (GCG's multi-prompt form): fitted on the search "
                f"prompts (task seed {SEARCH_SEED}), reported on held-out prompts (task seed "
                f"{HELD_OUT_SEED}) beside {RANDOM_DRAWS} random spans per prompt. Objective, "
                "heads, dissipation weight and seed are the controls above.",
                size="sm",
                c="dimmed",
            ),
            dcc.Store(id=f"{PREFIX}-job"),
            dmc.Group(
                [
                    _number("search", "Search prompts", 8, query),
                    _number("held_out", "Held-out prompts", 16, query),
                    _number("steps", "Steps", 10, query),
                    _number("n_adv", "Adversarial tokens", 4, query),
                ],
                align="flex-end",
            ),
            jobs.job_controls(PREFIX, run_label="Run universal attack"),
            html.Div(id=f"{PREFIX}-error"),
            html.Div(id=f"{PREFIX}-span"),
            dmc.SimpleGrid(
                [html.Div(id=f"{PREFIX}-rates"), figure_card(GRAPH, "Success rates")], cols=2
            ),
            html.Div(id=f"{PREFIX}-outcomes"),
        ],
        gap="sm",
    )


def _prompts(model, objective: str, n: int, seed: int) -> Any:
    from workbench.tasks import make_task

    if objective == "embedding":
        return list(make_task("similarity", model, n=n, seed=seed).clean_text)
    return make_task("ioi", model, n=n, seed=seed)


def universal_job(
    set_progress,
    *,
    session,
    model_name,
    objective,
    heads,
    weight,
    seed,
    search,
    held_out,
    steps,
    n_adv,
) -> str:
    """Fit the span, evaluate it beside the baseline and store the result; returns the run id
    (forked job process)."""
    from analysis.attacks.universal import UniversalAttack

    state.check_session(session)
    set_progress((2, "preparing prompts"))
    model = state.open_model(model_name)
    attack = UniversalAttack(**attack_options(objective, heads, weight, steps, n_adv, seed))
    search_prompts = _prompts(model, objective, search, SEARCH_SEED)
    held_prompts = _prompts(model, objective, held_out, HELD_OUT_SEED)
    with jobs.tqdm_progress(set_progress, "search step"):
        attack.fit(model, search_prompts, task_seed=SEARCH_SEED)
    set_progress((95, "held-out prompts and random baseline"))
    result = attack.evaluate(
        model, held_prompts, task_seed=HELD_OUT_SEED, baseline_draws=RANDOM_DRAWS, n_boot=N_BOOT
    )
    set_progress((99, "saving"))
    return state.run_store().save(result, config={**result.config, SESSION_KEY: session})


def span_text(result) -> Any:
    """The span and how it was found, as one line."""
    return dmc.Text(
        [
            "Span ",
            dmc.Code(repr(result.span_text), id=f"{PREFIX}-span-text"),
            f" (token ids {list(result.span_tokens)}) · {result.steps_used} step(s) on "
            f"{result.n_search} search prompt(s), task seed {result.search_seed}: "
            f"{result.search_success_rate:.0%} of them succeed · held out: "
            f"{result.n_held_out} prompt(s), task seed {result.held_out_seed}",
        ],
        size="sm",
    )


def rates_table(result) -> Any:
    """Success rates (share of prompts) with their 95% bootstrap intervals."""
    head = ["span", "success rate", "95% interval", "prompts"]
    rows = [
        dmc.TableTr(
            [
                dmc.TableTd(row["label"]),
                dmc.TableTd(f"{row['estimate']:.1%}"),
                dmc.TableTd(f"{row['low']:.1%} – {row['high']:.1%}"),
                dmc.TableTd(str(row["n_prompts"])),
            ],
            id=f"{PREFIX}-rate-{row['name']}",
        )
        for row in result.rates().to_dict("records")
    ]
    caption = (
        f"Percentile bootstrap over the held-out prompts ({N_BOOT} resamples). Random span: "
        f"{RANDOM_DRAWS} draws per prompt, same length and token filter."
    )
    return dmc.Stack(
        [
            dmc.Table(
                [dmc.TableThead(dmc.TableTr([dmc.TableTh(c) for c in head])), dmc.TableTbody(rows)],
                striped=True,
                withTableBorder=True,
            ),
            dmc.Text(caption, size="xs", c="dimmed"),
        ],
        gap=4,
    )


def outcomes_table(result) -> Any:
    """One row per held-out prompt: success and task metric with the initial and the learned span."""
    columns = ["index", "success_before", "success", "metric_before", "metric_after"]
    rows = [
        dmc.TableTr(
            [
                dmc.TableTd(f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c]))
                for c in columns
            ],
            id=f"{PREFIX}-outcome-{row['index']}",
        )
        for row in result.prompts[columns].to_dict("records")
    ]
    head = dmc.TableThead(dmc.TableTr([dmc.TableTh(c) for c in columns]))
    title = "Held-out prompts: success and task metric with the initial span (before) and the span"
    return dmc.Stack(
        [
            dmc.Text(title, size="sm", fw=500),
            dmc.Table([head, dmc.TableTbody(rows)], striped=True, withTableBorder=True),
        ],
        gap=4,
    )


def with_baseline(model, attack, prompts, result) -> Any:
    """The per-prompt attack's `result` with the random baseline of its prompts added
    (`RANDOM_DRAWS` spans per prompt of the attack's length and filter; run in the job)."""
    import dataclasses

    from analysis.attacks.baseline import random_baseline

    table = random_baseline(model, attack, prompts, n_draws=RANDOM_DRAWS, seed=attack.seed)
    return dataclasses.replace(result, baseline=table)


def baseline_line(result) -> Any:
    """The per-prompt attack's success rate and the random baseline's, with 95% intervals."""
    from circuits.bootstrap import bootstrap_interval

    def rate(values) -> str:
        ci = bootstrap_interval([float(v) for v in values], n_boot=N_BOOT, seed=0)
        return f"{ci.estimate:.1%} (95% interval {ci.low:.1%} – {ci.high:.1%})"

    parts = [f"Success rate {rate(result.prompts['success'])} over {len(result.prompts)} prompt(s)"]
    if result.baseline is not None:
        parts.append(
            f"random span of the same length and filter: {rate(result.baseline['rate'])} "
            f"per draw ({RANDOM_DRAWS} draws per prompt)"
        )
    return dmc.Text(" · ".join(parts), id="attacks-baseline-text", size="sm")


def register_callbacks(app: Any) -> None:
    """The background job (Run / Cancel / progress) and the display of its stored result;
    also the per-prompt attack's rate beside its random baseline (`attacks-baseline`)."""
    register_figure_export(app, GRAPH)

    @app.callback(
        Output("attacks-baseline", "children"),
        Input("attacks-job", "data"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def show_per_prompt_baseline(job, session) -> Any:
        from analysis.attacks.token_attack import AttackResult  # registers the result type

        try:
            session = state.check_session(session)
            run_id = check_own_run(check.job_run_id(job, "attack"), AttackResult.kind, session)
            return baseline_line(state.run_store().load_result(run_id))
        except Exception:  # noqa: BLE001 - the page's own alert reports a bad run
            return None

    @app.callback(
        Output(f"{PREFIX}-job", "data"),
        Input(f"{PREFIX}-run", "n_clicks"),
        State("attacks-objective", "value"),
        State("attacks-heads", "value"),
        State("attacks-weight", "value"),
        State("attacks-seed", "value"),
        State(f"{PREFIX}-search", "value"),
        State(f"{PREFIX}-heldout", "value"),
        State(f"{PREFIX}-steps", "value"),
        State(f"{PREFIX}-nadv", "value"),
        State("attacks-query", "data"),
        State("session-id", "data"),
        **jobs.background_options(PREFIX),
    )
    def run_universal(
        set_progress,
        _clicks,
        objective,
        heads,
        weight,
        seed,
        search,
        held_out,
        steps,
        n_adv,
        query,
        session,
    ) -> Any:
        try:
            model_name, _prompt = selection.model_and_prompt(query)
            options = check_shared(session, objective, heads, weight, seed)
            values = {"search": search, "held_out": held_out, "steps": steps, "n_adv": n_adv}
            for name, value in values.items():
                low, high = LIMITS[name]
                options[name] = check.whole(value, LABELS[name], high + 1, low=low)
        except ValueError as err:
            return {"error": str(err)}
        return jobs.job_outcome(universal_job, set_progress, model_name=model_name, **options)

    @app.callback(
        Output(f"{PREFIX}-span", "children"),
        Output(f"{PREFIX}-rates", "children"),
        Output(GRAPH, "figure"),
        Output(f"{PREFIX}-outcomes", "children"),
        Output(f"{PREFIX}-error", "children"),
        Input(f"{PREFIX}-job", "data"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def show_universal(job, session) -> Any:
        from analysis.attacks.universal_result import UniversalAttackResult  # registers it

        keep_figure(session, GRAPH, None)
        try:
            session = state.check_session(session)
            kind = UniversalAttackResult.kind
            run_id = check_own_run(check.job_run_id(job, "universal attack"), kind, session)
            result = state.run_store().load_result(run_id)
        except Exception as err:  # noqa: BLE001 - shown on the page
            alert = error_alert(err, id=f"{PREFIX}-alert")
            return None, None, empty_figure("no universal attack yet"), None, alert
        figure = keep_figure(
            session, GRAPH, result.plot("rates", height=360), label=result.model_name
        )
        return span_text(result), rates_table(result), figure, outcomes_table(result), None


__all__ = ["baseline_line", "register_callbacks", "section", "universal_job", "with_baseline"]
