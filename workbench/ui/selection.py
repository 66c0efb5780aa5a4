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

Page settings: each page also keeps its own controls in the URL (`PAGE_KEYS`: per page, each
key with its type and allowed values or range; `parse_page` reads them, dropping unknown keys
and bad or forged values silently, like `parse_query`). A page's `register_writer` names its
page keys next to the shared ones; the address bar then carries both, while the navigation
links carry only the shared selection (one page's settings mean nothing on another). A `run`
page key (Circuits, Guidance, Attacks) names the run the page shows: `page_url` builds the
Runs page's "reopen" links from a run's stored config.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dash import Input, Output, dcc

KEYS = ("model", "prompt", "task", "layer", "head", "token", "scale")
INT_KEYS = frozenset({"layer", "head", "token"})
MAX_PROMPT_CHARS = 20_000
DEFAULT_MODEL = "tiny-ioi"
DEFAULT_PROMPT = "When Mary and John went to the store, John gave a drink to"
MAX_SETTING_CHARS = 2_000  # a page setting's text in the URL (a heads list is the longest)
MAX_HEADS = 64
RUN_ID_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")  # the run store's id rule
_HEAD_RE = re.compile(r"L(\d{1,4})H(\d{1,4})")
_TRUE, _FALSE = ("1", "true", "on", "yes"), ("0", "false", "off", "no")


def _objectives() -> list[str]:
    from analysis.steering.objectives import OBJECTIVES

    return sorted(OBJECTIVES)


def _as_float(text: str) -> float:
    """`text` as a float; NaN when it is not a number or absurdly long."""
    try:
        return float(text) if len(text) < 40 else math.nan
    except ValueError:
        return math.nan


@dataclass(frozen=True)
class Setting:
    """One page key: `kind` is choice, int, float, bool, heads (`L1H2` list) or run (a run
    id); `choices` (a tuple, or a function giving them) for a choice, `low`/`high` (inclusive)
    for a number."""

    kind: str
    choices: Sequence[str] | Callable[[], Sequence[str]] = ()
    low: float | None = None
    high: float | None = None

    def parse(self, value: Any) -> Any:
        """The checked value, or None when it is missing, malformed or out of range."""
        if self.kind == "run" and isinstance(value, Mapping):
            value = value.get("run_id")  # a job store's answer `{"run_id": ...}`
        if self.kind == "heads" and isinstance(value, list | tuple):
            value = ",".join(v for v in value if isinstance(v, str))
        if isinstance(value, bool):
            if self.kind != "bool":
                return None
            value = "1" if value else "0"
        if not isinstance(value, str | int | float) or value == "":
            return None
        text = str(value).strip()
        if len(text) > MAX_SETTING_CHARS:
            return None
        return getattr(self, f"_{self.kind}")(text)

    def _choice(self, text: str) -> str | None:
        choices = self.choices() if callable(self.choices) else self.choices
        return text if text in choices else None

    def _number(self, number: float) -> float | None:
        if not math.isfinite(number):
            return None
        if (self.low is not None and number < self.low) or (
            self.high is not None and number > self.high
        ):
            return None
        return number

    def _int(self, text: str) -> int | None:
        number = _as_float(text)
        if not math.isfinite(number) or not number.is_integer():
            return None
        return None if self._number(number) is None else int(number)

    def _float(self, text: str) -> float | None:
        checked = self._number(_as_float(text))
        return None if checked is None else round(checked, 6)

    def _bool(self, text: str) -> bool | None:
        lowered = text.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else None

    def _heads(self, text: str) -> list[str] | None:
        heads: list[str] = []
        for part in text.split(","):
            match = _HEAD_RE.fullmatch(part.strip())
            name = match and f"L{int(match.group(1))}H{int(match.group(2))}"
            if name and name not in heads and len(heads) < MAX_HEADS:
                heads.append(name)
        return heads or None

    def _run(self, text: str) -> str | None:
        return text if RUN_ID_RE.fullmatch(text) else None


_STATISTICS = ("entropy", "sink", "max_prob", "mean_distance", "effective_keys", "lse")
_GUIDANCE_METHODS = ("identity", "uniform", "mean_query", "temperature", "zero", "mean")
PAGE_KEYS: dict[str, dict[str, Setting]] = {
    "attention": {
        "stat": Setting("choice", _STATISTICS),
        "block": Setting("choice", ("4", "8", "16", "32", "64")),
        "grid": Setting("choice", ("layer", "all")),
    },
    "circuits": {
        "method": Setting(
            "choice", ("eap", "eap-ig", "atp*", "activation", "path", "exhaustive", "acdc")
        ),
        "corruption": Setting("choice", ("s2", "s1s2", "abc")),
        "n": Setting("int", low=1, high=256),
        "reference": Setting("bool"),
        "threshold": Setting("float", low=0, high=1),
        "run": Setting("run"),
    },
    "guidance": {
        "heads": Setting("heads"),
        "method": Setting("choice", _GUIDANCE_METHODS),
        "tokens": Setting("int", low=1, high=64),
        "u": Setting("float", low=0, high=1),
        "w": Setting("float", low=0, high=5),
        "objective": Setting("choice", _objectives),
        "n": Setting("int", low=4, high=64),
        "rounds": Setting("int", low=1, high=4),
        "run": Setting("run"),
    },
    "attacks": {
        "objective": Setting("choice", ("flip", "raise_loss", "dissipation", "embedding")),
        "heads": Setting("heads"),
        "weight": Setting("float", low=0, high=100),
        "steps": Setting("int", low=1, high=1000),
        "n_adv": Setting("int", low=1, high=32),
        "n_prompts": Setting("int", low=1, high=64),
        "seed": Setting("int", low=0, high=2**31),
        "run": Setting("run"),
    },
    "heads": {"key": Setting("int", low=0)},
}


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


def parse_page(page: str, query: Mapping[str, Any]) -> dict[str, Any]:
    """`page`'s own settings in its query arguments (`PAGE_KEYS[page]`; unknown keys and bad
    values dropped; a page with no settings gives {})."""
    if not isinstance(query, Mapping):
        return {}
    settings: dict[str, Any] = {}
    for key, setting in PAGE_KEYS.get(page, {}).items():
        value = setting.parse(query.get(key))
        if value is not None:
            settings[key] = value
    return settings


def _url_value(value: Any) -> Any:
    """A checked value as the address bar writes it (a heads list comma-joined, a flag 1/0)."""
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return value


def page_url(page: str, values: Mapping[str, Any]) -> str:
    """`/<page>?...`: the shared selection and `page`'s settings in `values` (checked; the
    rest dropped)."""
    query = urllib.parse.urlencode(clean(values, page=page))
    return f"/{page}" + (f"?{query}" if query else "")


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


def clean(selection: Mapping[str, Any], page: str | None = None) -> dict[str, Any]:
    """Only the known keys with a value (what goes into the URL): the shared selection, then
    `page`'s settings (as the address bar writes them)."""
    present = {k: v for k, v in selection.items() if v is not None}
    shared = parse_query(present)
    settings = parse_page(page, present) if page else {}
    return {**shared, **{k: _url_value(v) for k, v in settings.items() if k not in shared}}


def query_store(prefix: str, query: Mapping[str, Any]) -> dcc.Store:
    """The page's copy of the selection it was opened with (`<prefix>-query`)."""
    return dcc.Store(id=f"{prefix}-query", data=parse_query(query))


def register_writer(app: Any, prefix: str, controls: Mapping[str, tuple[str, str]]) -> None:
    """Write `{key: value of component id/prop}` over the page's opening selection (with no
    controls, the opening selection itself, so the nav links keep it). Keys are shared ones
    (`KEYS`) or the page's own (`PAGE_KEYS[prefix]`); a value that does not check is left out."""
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
        return clean(selection, page=prefix)


def shell_components() -> list[Any]:
    """The stores the shell holds for every page."""
    return [dcc.Store(id="selection", data={})]


def register_url_sync(app: Any, nav_paths: Mapping[str, str]) -> None:
    """Clientside: selection -> address bar (replaceState; shared selection and the page's
    settings) and every nav link's href (the shared selection only)."""
    ids = list(nav_paths)
    paths = json.dumps([nav_paths[i] for i in ids])
    shared = json.dumps(list(KEYS))
    app.clientside_callback(
        f"""
        function(selection) {{
            const params = new URLSearchParams();
            const nav = new URLSearchParams();
            for (const [key, value] of Object.entries(selection || {{}})) {{
                if (value === null || value === undefined || value === "") continue;
                params.set(key, value);
                if ({shared}.includes(key)) nav.set(key, value);
            }}
            const qs = params.toString();
            const suffix = qs ? "?" + qs : "";
            const here = window.location.pathname + window.location.search;
            if (here !== window.location.pathname + suffix) {{
                window.history.replaceState(window.history.state, "", window.location.pathname + suffix);
            }}
            const navQs = nav.toString();
            return {paths}.map(function(p) {{ return p + (navQs ? "?" + navQs : ""); }});
        }}
        """,
        [Output(i, "href") for i in ids],
        Input("selection", "data"),
    )


__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_PROMPT",
    "KEYS",
    "PAGE_KEYS",
    "Setting",
    "clean",
    "model_and_prompt",
    "page_url",
    "parse_page",
    "parse_query",
    "query_store",
    "register_url_sync",
    "register_writer",
    "shell_components",
]
