"""The one shared selection (model, prompt, task, layer, head, token, colour scale), kept in
the URL.

Every page reads the selection from its query string (`layout(**query)` -> `parse_query`) and
writes it back into the shell's `dcc.Store(id="selection")` through `register_writer`. One
clientside callback then rewrites the address bar with `history.replaceState` (no page
reload, no re-render) and points every navigation link at the same query, so a view can be
shared by copying the URL and the selection follows the user from page to page.

Caveat: values are strings in the URL; `parse_query` turns them back into ints and drops
what does not parse (a hand-edited `?layer=abc` is ignored rather than failing the page).
A page's `<prefix>-query` store comes back from the browser with every callback, so
`model_and_prompt` refuses (`ValueError`) a store that is not a dict of text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dash import Input, Output, dcc

KEYS = ("model", "prompt", "task", "layer", "head", "token", "scale")
INT_KEYS = frozenset({"layer", "head", "token"})
MAX_PROMPT_CHARS = 20_000
DEFAULT_MODEL = "tiny-ioi"
DEFAULT_PROMPT = "When Mary and John went to the store, John gave a drink to"


def parse_query(query: Mapping[str, Any]) -> dict[str, Any]:
    """The selection in a page's query arguments (unknown keys and bad values dropped)."""
    selection: dict[str, Any] = {}
    for key in KEYS:
        value = query.get(key)
        if value is None or value == "" or not isinstance(value, str | int | float):
            continue
        if isinstance(value, bool):
            continue
        if key in INT_KEYS:
            try:
                number = int(str(value))
            except ValueError:
                continue
            if number >= 0:
                selection[key] = number
        else:
            selection[key] = str(value)[:MAX_PROMPT_CHARS]
    return selection


def model_and_prompt(selection: Mapping[str, Any] | None) -> tuple[str, str]:
    """The selected model and prompt, or the defaults (tiny-ioi on an IOI sentence).

    Raises `ValueError` when the selection (a page store sent back by the browser) is not a
    mapping, or its model or prompt is not text of a sensible length.
    """
    if selection is None:
        selection = {}
    if not isinstance(selection, Mapping):
        raise ValueError("selection: malformed page state (reload the page)")
    model = selection.get("model", DEFAULT_MODEL)
    prompt = selection.get("prompt", DEFAULT_PROMPT)
    if not isinstance(model, str) or not model.strip() or len(model) > 4096:
        raise ValueError("model: the selection names no model (choose one on the first page)")
    if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"prompt: expected text of at most {MAX_PROMPT_CHARS} characters")
    return model, prompt


def clean(selection: Mapping[str, Any]) -> dict[str, Any]:
    """Only the known keys with a value (what goes into the URL)."""
    return parse_query({k: v for k, v in selection.items() if v is not None})


def query_store(prefix: str, query: Mapping[str, Any]) -> dcc.Store:
    """The page's copy of the selection it was opened with (`<prefix>-query`)."""
    return dcc.Store(id=f"{prefix}-query", data=parse_query(query))


def register_writer(app: Any, prefix: str, controls: Mapping[str, tuple[str, str]]) -> None:
    """Write `{key: value of component id/prop}` over the page's opening selection (with no
    controls, the opening selection itself, so the nav links keep it)."""
    keys = list(controls)

    @app.callback(
        Output("selection", "data", allow_duplicate=True),
        [Input(cid, prop) for cid, prop in controls.values()],
        Input(f"{prefix}-query", "data"),
        prevent_initial_call="initial_duplicate",
    )
    def write_selection(*values: Any) -> dict[str, Any]:
        opening = values[-1]
        selection = dict(opening) if isinstance(opening, Mapping) else {}
        selection.update(zip(keys, values[:-1], strict=False))  # a forged body may be short
        return clean(selection)


def shell_components() -> list[Any]:
    """The stores the shell holds for every page."""
    return [dcc.Store(id="selection", data={})]


def register_url_sync(app: Any, nav_paths: Mapping[str, str]) -> None:
    """Clientside: selection -> address bar (replaceState) and every nav link's href."""
    ids = list(nav_paths)
    paths = json.dumps([nav_paths[i] for i in ids])
    app.clientside_callback(
        f"""
        function(selection) {{
            const params = new URLSearchParams();
            for (const [key, value] of Object.entries(selection || {{}})) {{
                if (value !== null && value !== undefined && value !== "") params.set(key, value);
            }}
            const qs = params.toString();
            const suffix = qs ? "?" + qs : "";
            const here = window.location.pathname + window.location.search;
            if (here !== window.location.pathname + suffix) {{
                window.history.replaceState(window.history.state, "", window.location.pathname + suffix);
            }}
            return {paths}.map(function(p) {{ return p + suffix; }});
        }}
        """,
        [Output(i, "href") for i in ids],
        Input("selection", "data"),
    )


__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_PROMPT",
    "KEYS",
    "clean",
    "model_and_prompt",
    "parse_query",
    "query_store",
    "register_url_sync",
    "register_writer",
    "shell_components",
]
