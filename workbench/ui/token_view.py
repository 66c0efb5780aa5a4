"""Coloured-token text view of the selected head (CircuitsVis style), for the Attention page.

The prompt's tokens are drawn as text. Hovering a token colours every token by the selected
head's attention weight (background alpha = weight, 0-1, the numbers of the pattern heatmap):

- "query → keys": how much the hovered token's query attends to each key (its pattern row);
- "queries → key": how much each token's query attends to the hovered token (its column).

Clicking a token keeps it selected when the pointer leaves the text (click again to release);
the page's locked query token (`attention-token`) selects it too. Tokens of word-level
tokenizers (none holds whitespace) are drawn with a small gap between them. Every coloured token's
weight is in its `data-w` attribute and its tooltip.

Numbers go once per head: `send_rows` (server) puts the head's pattern rows, float32 little
endian in base64, with the token texts into `attention-tokens-data`; hovering then runs in the
browser (`PAINT_JS`, a clientside callback that builds the spans and installs the hover and
click handlers), with no server round trip. Prompts over `FULL_LIMIT` tokens send only the
rows of the pattern figure's full-resolution window (locked query +- `WINDOW`, the last token
when none is locked): a query outside it is not coloured and the readout says so.
A bad layer, head or token sends `{"error": ...}` (shown in the readout; the page's alert
names the problem). Ids are prefixed `attention-tokens-`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import dash_mantine_components as dmc
import numpy as np
from dash import Input, Output, State, ctx, dcc, html, no_update

from analysis.statistics.attention_pattern import FULL_LIMIT, window_rows
from workbench.heads import Head
from workbench.ui import input_checks as check

DIRECTIONS = {"keys": "hovered query → keys", "queries": "queries → hovered key"}
# the painter; colour rgb(33, 113, 181): plotly's "Blues" at its dark end, alpha = weight
PAINT_JS = r"""
function(data, direction, locked) {
    const box = document.getElementById("attention-tokens-text");
    const readout = document.getElementById("attention-tokens-readout");
    if (!box || !readout) { return window.dash_clientside.no_update; }
    const view = window.workbenchTokenView = window.workbenchTokenView || {};
    if (!data || !data.rows) {
        box.replaceChildren();
        view.data = null;
        readout.textContent = (data && data.error) || "";
        return "wb-tokens";
    }
    if (data !== view.data || box.childElementCount !== data.tokens.length) {
        const text = atob(data.rows);
        const bytes = new Uint8Array(text.length);
        for (let i = 0; i < text.length; i++) { bytes[i] = text.charCodeAt(i); }
        view.rows = new Float32Array(bytes.buffer);  // [count, n], row-major
        view.data = data;
        view.clicked = null;
        const spans = data.tokens.map(function(token, i) {
            const span = document.createElement("span");
            span.className = "wb-token";
            span.dataset.i = i;
            span.textContent = token ? token.replace(/\n/g, "↵\n") : "∅";
            span.style.cursor = "pointer";
            span.style.borderRadius = "3px";
            span.style.padding = "1px 0";
            span.style.marginRight = data.gap ? "0.3em" : "";
            return span;
        });
        box.replaceChildren(...spans);
    }
    view.direction = direction === "queries" ? "queries" : "keys";
    view.locked = Number.isInteger(locked) && locked >= 0 && locked < data.n ? locked : null;
    const visible = function(token) {  // analysis.statistics.attention_pattern.visible_token
        if (!token) { return "∅"; }
        return token.replace(/ /g, "·").replace(/\n/g, "↵").replace(/\t/g, "→")
            .replace(/\r/g, "␍");
    };
    const chosen = function() { return view.clicked !== null ? view.clicked : view.locked; };
    const paint = function(i) {
        const d = view.data, n = d.n, first = d.first, last = d.first + d.count - 1;
        const weights = new Array(n).fill(null);
        const label = function(j) { return j + ":" + visible(d.tokens[j]); };
        let line = "hover or click a token";
        if (i !== null && i !== undefined) {
            if (view.direction === "keys") {
                if (i >= first && i <= last) {
                    for (let k = 0; k < n; k++) { weights[k] = view.rows[(i - first) * n + k]; }
                    line = "query " + label(i) + " → keys (" + d.head + ")";
                } else {
                    line = "query " + label(i) + " is outside the window (queries " + first +
                        "-" + last + "): lock it on the pattern to move the window";
                }
            } else {
                for (let q = first; q <= last; q++) { weights[q] = view.rows[(q - first) * n + i]; }
                line = "queries → key " + label(i) + " (" + d.head + ")" +
                    (d.count < n ? ", queries " + first + "-" + last + " only" : "");
            }
        }
        readout.textContent = line;
        Array.from(box.children).forEach(function(span, j) {
            const w = weights[j];
            span.style.outline = j === i ? "2px solid crimson" : "";
            if (w === null) {
                span.style.backgroundColor = "";
                span.style.color = "";
                delete span.dataset.w;
                span.title = label(j);
            } else {
                const alpha = Math.min(1, Math.max(0, w));
                span.style.backgroundColor = "rgba(33, 113, 181, " + alpha.toFixed(4) + ")";
                span.style.color = alpha > 0.6 ? "white" : "";
                span.dataset.w = w.toPrecision(7);
                span.title = label(j) + "  weight " + w.toFixed(3);
            }
        });
    };
    const target = function(event) {
        const span = event.target.closest ? event.target.closest(".wb-token") : null;
        return span && box.contains(span) ? Number(span.dataset.i) : null;
    };
    box.onmouseover = function(event) { const i = target(event); if (i !== null) { paint(i); } };
    box.onmouseleave = function() { paint(chosen()); };
    box.onclick = function(event) {
        const i = target(event);
        if (i === null) { return; }
        view.clicked = view.clicked === i ? null : i;
        paint(chosen() === null ? i : chosen());
    };
    paint(chosen());
    return "wb-tokens wb-tokens-" + data.head;
}
"""


def section() -> Any:
    """The direction toggle, the readout line, the token text and the rows' store."""
    toggle = dmc.SegmentedControl(
        id="attention-tokens-direction",
        data=[{"value": v, "label": label} for v, label in DIRECTIONS.items()],
        value="keys",
        size="xs",
    )
    text = html.Div(
        id="attention-tokens-text",
        className="wb-tokens",
        # long prompts scroll inside the card
        style={
            "whiteSpace": "pre-wrap",
            "lineHeight": "1.9",
            "fontSize": "15px",
            "maxHeight": "420px",
            "overflowY": "auto",
        },
    )
    return dmc.Card(
        [
            dmc.Group([dmc.Text("Tokens", fw=600, size="sm"), toggle], gap="md"),
            html.Div(
                id="attention-tokens-readout",
                style={"fontFamily": "monospace", "fontSize": "13px", "minHeight": "20px"},
            ),
            text,
            dcc.Store(id="attention-tokens-data"),
        ],
        withBorder=True,
        padding="sm",
        mt="sm",
    )


def window(n: int, query: int | None) -> tuple[int, int]:
    """Rows sent for an `n`-token prompt: all of them up to `FULL_LIMIT` tokens, else the
    pattern figure's window (`query`, or the last token, +- `WINDOW`): `(first, stop)`."""
    return (0, n) if n <= FULL_LIMIT else window_rows(n, query)


def payload(data: dict[str, Any], layer: int, head: int, query: int | None) -> dict[str, Any]:
    """What the browser gets for one head: rows `[first:stop]` of its `[query, key]` pattern
    (float32, base64) and the token texts (one list: the browser draws them, a newline also
    marked `↵`, and builds the `index:token` labels with `visible_token`'s convention)."""
    tokens = list(data["tokens"])
    n = len(tokens)
    first, stop = window(n, query)
    rows = np.ascontiguousarray(data["patterns"][layer, head, first:stop], dtype="<f4")
    # rows: [stop - first, key]
    return {
        "model": data["model"].name,
        "head": str(Head(layer, head)),
        "n": n,
        "first": first,
        "count": stop - first,
        "tokens": tokens,
        "rows": base64.b64encode(rows.tobytes()).decode("ascii"),
        # word-level tokenizers (no token holds whitespace): a gap between tokens
        "gap": not any(t != t.strip() or " " in t for t in tokens),
    }


def decode_rows(sent: dict[str, Any]) -> np.ndarray:
    """The rows of a `payload` back as a `[count, n]` float32 array (tests, tools)."""
    flat = np.frombuffer(base64.b64decode(sent["rows"]), dtype="<f4")
    return flat.reshape(sent["count"], sent["n"])


def register_callbacks(app: Any, checked: Callable[[Any, Any, Any], dict[str, Any]]) -> None:
    """`send_rows` (server, per selected head) and the clientside painter. `checked` is the
    page's `(session, query, block) -> analysis` (statistics, patterns, tokens, model)."""

    @app.callback(
        Output("attention-tokens-data", "data"),
        Input("attention-layer", "value"),
        Input("attention-head", "value"),
        Input("attention-token", "value"),
        State("attention-block-size", "value"),
        State("attention-query", "data"),
        State("session-id", "data"),
    )
    def send_rows(layer, head, token, block, query, session) -> Any:
        try:
            data = checked(session, query, block)
            n = len(data["tokens"])
            if ctx.triggered_id == "attention-token" and n <= FULL_LIMIT:
                return no_update  # every row was sent already: the painter moves the lock
            layer, head = data["model"].check_head(
                check.whole(layer, "layer"), check.whole(head, "head")
            )
            token = check.optional_whole(token, "query token", n)
            return payload(data, layer, head, token)
        except Exception as err:  # noqa: BLE001 - shown in the readout (and the page's alert)
            return {"error": f"no token view: {str(err)[:300]}"}

    app.clientside_callback(
        PAINT_JS,
        Output("attention-tokens-text", "className"),
        Input("attention-tokens-data", "data"),
        Input("attention-tokens-direction", "value"),
        Input("attention-token", "value"),
    )


__all__ = ["DIRECTIONS", "decode_rows", "payload", "register_callbacks", "section", "window"]
