"""Layer / head number inputs bounded by the selected model (`max` = n_layers - 1, n_heads - 1).

`register_callbacks(app, prefix)` sets the `max` of `<prefix>-layer` and `<prefix>-head` from
the page's selection store (`<prefix>-query`, which names the model): on every page load and
whenever the store changes, so a different model gives different bounds. A bad or unknown
model leaves the inputs as they are (the page's own callbacks show the alert).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dash import Input, Output, no_update

from workbench.ui import selection, state


def limits(query: Mapping[str, Any] | None) -> tuple[int, int]:
    """`(n_layers - 1, n_heads - 1)` of the model the selection names (`ValueError` if bad)."""
    model = state.open_model(selection.model_and_prompt(query)[0])
    return model.n_layers - 1, model.n_heads - 1


def register_callbacks(app: Any, prefix: str) -> None:
    """The bounds callback for the page whose ids start with `prefix` (e.g. `heads`)."""

    @app.callback(
        Output(f"{prefix}-layer", "max"),
        Output(f"{prefix}-head", "max"),
        Input(f"{prefix}-query", "data"),
    )
    def bound_inputs(query: Any) -> Any:
        try:
            return limits(query)
        except Exception:  # noqa: BLE001 - the page's callbacks report a bad model
            return no_update, no_update


__all__ = ["limits", "register_callbacks"]
