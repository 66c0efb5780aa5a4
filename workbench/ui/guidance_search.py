"""The Guidance page's head search: its controls, request checks, background job and display.

Used by `workbench.ui.pages.guidance` (which registers the callbacks):

- `search_controls()`: the objective selector (the registry's objectives,
  `analysis.steering.objectives.OBJECTIVES`; inflated ones labelled so), the number of the
  objective's prompts (split half search / half held out) and the number of greedy rounds;
- `search_request(raw)`: the checked settings of a search request (`ValueError` naming the
  first bad one; `workbench.ui.input_checks`);
- `search_job(...)`: runs `HeadHunter` in the forked job process and stores its
  `HeadSearchResult` as a run of the session (returns the run id);
- `search_note(result)` and `comparison_table(result, table)`: what the search chose (or a
  visible note that it chose nothing) and the held-out comparison
  (`analysis.steering.head_search_comparison.heldout_comparison`) with units and intervals.

No numbers are computed here.
"""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc
from dash import html

from analysis.steering.head_search_comparison import objective_axis_label
from analysis.steering.objectives import OBJECTIVES
from workbench.ui import input_checks as check
from workbench.ui import jobs, state
from workbench.ui.components import error_alert, info_alert
from workbench.ui.shared import SESSION_KEY

METHODS = ["identity", "uniform", "mean_query", "temperature", "zero", "mean"]
MAX_W = 5.0
DEFAULT_OBJECTIVE = "ioi_logprob"
SEARCH_PROMPTS = (4, 64)  # the objective's prompts, split half search / half held out
SEARCH_ROUNDS = (1, 4)


def objective_options() -> list[dict[str, str]]:
    """The registry's objectives for the selector; inflated ones say so in their label."""
    return [
        {"value": name, "label": name + (" (inflated)" if spec.inflated else "")}
        for name, spec in sorted(OBJECTIVES.items())
    ]


def search_controls(settings: dict[str, Any] | None = None) -> Any:
    """Objective selector, number of prompts and rounds (initial values from `settings`, the
    page's checked URL settings), and the objective's description."""
    settings = settings or {}
    return dmc.Stack(
        [
            dmc.Group(
                [
                    dmc.Select(
                        id="guidance-objective",
                        label="Search objective (scored on the guided output)",
                        data=objective_options(),
                        value=settings.get("objective", DEFAULT_OBJECTIVE),
                        w=300,
                        allowDeselect=False,
                    ),
                    dmc.NumberInput(
                        id="guidance-prompts",
                        label="Objective prompts",
                        value=settings.get("n", 16),
                        min=SEARCH_PROMPTS[0],
                        max=SEARCH_PROMPTS[1],
                        w=140,
                    ),
                    dmc.NumberInput(
                        id="guidance-rounds",
                        label="Rounds",
                        value=settings.get("rounds", 2),
                        min=SEARCH_ROUNDS[0],
                        max=SEARCH_ROUNDS[1],
                        w=90,
                    ),
                ],
                align="flex-end",
            ),
            dmc.Text(id="guidance-objective-help", size="xs", c="dimmed"),
        ],
        gap=4,
    )


def search_request(raw: dict[str, Any]) -> dict[str, Any]:
    """The checked search settings (objective, n, rounds, method, u, w) of a request."""
    return {
        "objective": check.choice(raw.get("objective"), "objective", sorted(OBJECTIVES)),
        "n": check.whole(raw.get("n"), "objective prompts", SEARCH_PROMPTS[1] + 1, low=4),
        "rounds": check.whole(raw.get("rounds"), "rounds", SEARCH_ROUNDS[1] + 1, low=1),
        "method": check.choice(raw.get("method"), "perturbation", METHODS),
        "u": check.number(raw.get("u"), "u", 0.0, 1.0),
        "w": check.number(raw.get("w"), "w", 0.0, MAX_W),
    }


def search_job(
    set_progress,
    *,
    session: str,
    model_name: str,
    objective: str,
    n: int,
    rounds: int,
    method: str,
    u: float,
    w: float,
) -> str:
    """Run HeadHunter and store its result; returns the run id (forked job process)."""
    from analysis.steering.head_hunter import HeadHunter, split_rows
    from analysis.steering.objectives import make_objective

    state.check_session(session)
    set_progress((3, f"preparing {objective}"))
    model = state.open_model(model_name)
    options = {"n": n} if "n" in OBJECTIVES[objective].options else {}
    built = make_objective(objective, model, **options)
    select, heldout = split_rows(built.n_prompts, seed=0)
    hunter = HeadHunter(method=method, u=u, w=w, rounds=rounds, progress=True)
    with jobs.tqdm_progress(set_progress, "head search"):
        hunter.fit(model, built, select=select, heldout=heldout)
    set_progress((99, "saving"))
    config = {"objective": objective, "n": n, "rounds": rounds, "method": method, "u": u, "w": w}
    return state.run_store().save(
        hunter.result_, model=model.name, config={**config, SESSION_KEY: session}
    )


def search_note(result) -> Any:
    """What the search chose, or a visible note that it chose nothing; inflation flagged."""
    notes = []
    if not result.heads:
        notes.append(
            info_alert(
                f"No candidate head improved {result.objective} on the search split, so no "
                "heads were selected (the Heads field is cleared). Guidance with no perturbed "
                "heads is plain decoding: the HeadHunter row equals no guidance.",
                title="HeadHunter selected no heads",
            )
        )
    else:
        heads = ", ".join(str(h) for h in result.heads)
        notes.append(
            dmc.Text(
                f"HeadHunter selected {heads} for {result.objective} (filled into Heads).",
                size="sm",
                id="guidance-search-heads",
            )
        )
    if result.inflated:
        notes.append(
            error_alert(
                f"{result.objective} is inflated by construction (guided LD = LD + w (LD - "
                "LD_pert)): it rewards heads whose perturbation hurts the task.",
                title="Inflated objective",
            )
        )
    return html.Div(notes, id="guidance-search-outcome")


def _interval(mean: float, low: float, high: float, *, signed: bool = False) -> str:
    if mean != mean:  # NaN: the setting is HeadHunter itself
        return "-"
    fmt = "{:+.4g}" if signed else "{:.4g}"
    return f"{fmt.format(mean)} [{fmt.format(low)}, {fmt.format(high)}]"


def comparison_table(result, table) -> Any:
    """The held-out comparison as a table; the caption names the unit and the intervals."""
    header = [
        "setting",
        "heads",
        "held-out mean [95% CI]",
        "minus no guidance [95% CI]",
        "HeadHunter minus setting [95% CI]",
    ]
    rows = [
        dmc.TableTr(
            [
                dmc.TableTd(row["label"]),
                dmc.TableTd(row["heads"]),
                dmc.TableTd(_interval(row["mean"], row["low"], row["high"])),
                dmc.TableTd(
                    _interval(row["diff_vs_none"], row["diff_low"], row["diff_high"], signed=True)
                ),
                dmc.TableTd(
                    _interval(row["headhunter_minus"], row["hh_low"], row["hh_high"], signed=True)
                ),
            ],
            id=f"guidance-comparison-{row['setting']}",
        )
        for row in table.to_dict("records")
    ]
    n = int(table["n_prompts"].iloc[0]) if len(table) else 0
    caption = (
        f"Scores: {objective_axis_label(result.objective)}. {n} held-out prompts; brackets are "
        "95% percentile bootstrap intervals over prompts (2000 resamples). Layer-level: the "
        "layer best on the search split; random heads: as many as HeadHunter chose, averaged "
        "over the draws."
    )
    head = dmc.TableThead(dmc.TableTr([dmc.TableTh(c) for c in header]))
    return dmc.Stack(
        [
            dmc.Table([head, dmc.TableTbody(rows)], striped=True, withTableBorder=True),
            dmc.Text(caption, size="xs", c="dimmed"),
        ],
        gap=4,
    )


__all__ = [
    "DEFAULT_OBJECTIVE",
    "MAX_W",
    "METHODS",
    "comparison_table",
    "objective_options",
    "search_controls",
    "search_job",
    "search_note",
    "search_request",
]
