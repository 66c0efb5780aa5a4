"""Training page ("/training"): a zoo decoder's training run, from its saved snapshots.

- The loss-plateau view (`analysis.loss_plateau`): held-out loss, repetition of greedy outputs
  (with the data's rate), mean pairwise cosine of hidden states per layer and attention distance
  to the final maps, against the training step.
- Measured attention entropy against sigma-Reparam's lower bound (`analysis.entropy_bound`), per
  head: entropy vs bound at every checkpoint, and both across training; the bound's sigma form
  (paper / logits / row) is chosen in the select.

Thin: results are computed on "Measure" once per browser session and kept server-side
(`state.cached`); a model without a training history or an encoder -> one red alert.
Ids are prefixed `training-`.
"""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc
from dash import Input, Output, State, html

from workbench.ui import selection, state
from workbench.ui.components import (
    empty_figure,
    error_alert,
    figure_card,
    keep_figure,
    page_header,
    register_figure_export,
)

PAGE = {"path": "/training", "name": "Training", "title": "Training · Workbench", "order": 60}
GRAPHS = ("training-plateau", "training-bound", "training-bound-steps")
BOUND_FORMS = ("logits", "paper", "row")


def layout(**query: str) -> Any:
    selected = selection.parse_query(query)
    model_name, _ = selection.model_and_prompt(selected)
    return dmc.Stack(
        [
            selection.query_store("training", query),
            page_header(
                "Training",
                "What the saved training snapshots show: the loss-plateau measures "
                "(repetition, representation collapse, attention progress) and attention "
                "entropy against sigma-Reparam's lower bound.",
            ),
            dmc.Text([dmc.Code(model_name), " · snapshots under history/"], size="sm"),
            dmc.Group(
                [
                    dmc.Select(
                        id="training-bound-form",
                        label="Bound sigma",
                        data=list(BOUND_FORMS),
                        value="logits",
                        allowDeselect=False,
                        w=140,
                    ),
                    dmc.Button("Measure", id="training-run"),
                ],
                align="flex-end",
            ),
            html.Div(id="training-error"),
            figure_card("training-plateau", "Loss plateau view"),
            dmc.SimpleGrid(
                [
                    figure_card("training-bound", "Entropy vs bound (per head)"),
                    figure_card("training-bound-steps", "Entropy and bound across training"),
                ],
                cols=2,
            ),
        ],
        gap="sm",
    )


def _check_form(value: Any) -> str:
    if value not in BOUND_FORMS:
        raise ValueError(f"bound: choose one of {', '.join(BOUND_FORMS)}")
    return value


def register_callbacks(app: Any) -> None:
    for graph in GRAPHS:
        register_figure_export(app, graph)
    selection.register_writer(app, "training", {})

    @app.callback(
        Output("training-plateau", "figure"),
        Output("training-bound", "figure"),
        Output("training-bound-steps", "figure"),
        Output("training-error", "children"),
        Input("training-run", "n_clicks"),
        Input("training-bound-form", "value"),
        State("training-query", "data"),
        State("session-id", "data"),
        prevent_initial_call=True,
    )
    def measure(_clicks, form, query, session) -> Any:
        from analysis import entropy_bound, loss_plateau

        try:
            session = state.check_session(session)
            form = _check_form(form)
            model_name, _ = selection.model_and_prompt(query)
            model = state.open_model(model_name)
            plateau = state.cached(
                session,
                f"training|plateau|{model.name}",
                lambda: loss_plateau(model),
                model=model.name,
            )
            bound = state.cached(
                session,
                f"training|bound|{model.name}",
                lambda: entropy_bound(model),
                model=model.name,
            )
        except Exception as err:  # noqa: BLE001 - shown to the user
            for graph in GRAPHS:
                keep_figure(session, graph, None)
            blank = empty_figure("nothing measured")
            return blank, blank, blank, error_alert(err, id="training-alert")
        label = model.name
        return (
            keep_figure(session, "training-plateau", plateau.plot("curves"), label=label),
            keep_figure(session, "training-bound", bound.plot("scatter", bound=form), label=label),
            keep_figure(
                session, "training-bound-steps", bound.plot("training", bound=form), label=label
            ),
            None,
        )
