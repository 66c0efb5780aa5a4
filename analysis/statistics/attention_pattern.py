"""One head's attention pattern and its figure, for the dashboard and `workbench figure`.

- `attention_pattern(model, prompt, layer, head)`: one head's `[query, key]` pattern from a
  single forward pass that caches only that layer's `hook_pattern`;
- `pattern_figure(...)`: the pattern as a heatmap with tokens on both axes, whitespace made
  visible and the token index in every label;
- `visible_token(text)`: the label convention (space `·`, newline `↵`, tab `→`).

- `offset_figure` / `signed_offset_mass`: attention mass by SIGNED key - query offset, so
  previous-token and next-token heads differ on bidirectional models.

Caveat: axes are integer token positions with `"index:token"` tick labels (plotly merges
repeated category labels, and numbers keep clicks exact). Long prompts (> `FULL_LIMIT`
tokens) are drawn as a block-max overview plus a full-resolution window (see `pattern_figure`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.model import Model

_VISIBLE = str.maketrans({" ": "·", "\n": "↵", "\t": "→", "\r": "␍"})


def visible_token(text: str) -> str:
    """The token with whitespace drawn: `' the'` -> `'·the'`, `'\\n'` -> `'↵'`."""
    return text.translate(_VISIBLE) if text else "∅"


def token_labels(tokens: list[str]) -> list[str]:
    """`"index:token"` labels with whitespace made visible."""
    return [f"{i}:{visible_token(t)}" for i, t in enumerate(tokens)]


@dataclass(frozen=True)
class HeadPattern:
    """One head's attention pattern on one prompt (numpy, picklable, JSON-friendly)."""

    model: str
    layer: int
    head: int
    tokens: list[str]
    pattern: np.ndarray  # [query, key], rows sum to 1

    def to_dict(self) -> dict:
        """The pattern as plain JSON-ready data (lists instead of arrays)."""
        return {
            "model": self.model,
            "layer": self.layer,
            "head": self.head,
            "tokens": self.tokens,
            "pattern": self.pattern.round(6).tolist(),
        }


def attention_pattern(model: Model, prompt: str, layer: int, head: int) -> HeadPattern:
    """One head's pattern on one prompt (raises `ValueError` for bad prompt/layer/head)."""
    import torch

    layer, head = model.check_head(layer, head)
    tokens = model.to_tokens(prompt)  # [1, pos]
    name = f"blocks.{layer}.attn.hook_pattern"
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names=[name])
    pattern = cache[name][0, head].float().cpu().numpy()  # [query, key]
    return HeadPattern(model.name, layer, head, model.to_str_tokens(tokens), pattern)


FULL_LIMIT = 128  # prompts up to this many tokens are drawn whole, at full resolution
OVERVIEW_CELLS = 64  # longer prompts: an overview of at most this many blocks per axis
WINDOW = 6  # ...plus the locked query +- this many rows at full resolution
SCALES = ("0-1", "head max", "log")
LOG_FLOOR = -4.0  # the log scale's lowest colour (weights below 1e-4 share it)


def plain_style() -> dict:
    """White background and light grid, set directly: no template travels with the figure
    (plotly_white adds ~7 KB to every response and ~20 ms to every build)."""
    grid = {"gridcolor": "#e9ecef", "zerolinecolor": "#dee2e6"}
    return {"plot_bgcolor": "white", "paper_bgcolor": "white", "xaxis": grid, "yaxis": grid}


def block_max(pattern: np.ndarray, block: int) -> np.ndarray:
    """Max of every `block x block` tile of a `[query, key]` pattern (last tiles may be
    partial): `[ceil(query / block), ceil(key / block)]`."""
    n_q, n_k = pattern.shape
    rows, cols = -(-n_q // block), -(-n_k // block)
    padded = np.full((rows * block, cols * block), -np.inf, dtype=np.float32)
    padded[:n_q, :n_k] = pattern
    return padded.reshape(rows, block, cols, block).max(axis=(1, 3))  # [q_block, k_block]


def _colour(pattern: np.ndarray, scale: str) -> tuple[np.ndarray, dict, str]:
    """The values drawn, the heatmap's colour settings and the hover line for `scale`."""
    if scale == "log":
        z = np.log10(np.maximum(pattern, 10.0**LOG_FLOOR)).astype(np.float32)
        ticks = list(range(int(LOG_FLOOR), 1))
        bar = {
            "title": {"text": "weight (log)"},
            "tickvals": ticks,
            "ticktext": [f"1e{t}" if t else "1" for t in ticks],
        }
        colour = {"zmin": LOG_FLOOR, "zmax": 0.0, "colorbar": bar}
        return z, colour, "log10 weight %{z:.2f}"
    top = float(pattern.max()) if scale == "head max" and pattern.size else 1.0
    bar = {"title": {"text": "weight" if scale == "0-1" else "weight (head max)"}}
    colour = {"zmin": 0.0, "zmax": max(top, 1e-6), "colorbar": bar}
    return pattern.astype(np.float32), colour, "weight %{z:.3f}"


def _ticks(labels: list[str], n: int) -> dict:
    step = max(1, int(np.ceil(n / 48)))  # at most ~48 readable labels per axis
    return {"tickmode": "array", "tickvals": list(range(0, n, step)), "ticktext": labels[::step]}


def pattern_figure(
    pattern: np.ndarray,
    tokens: list[str],
    *,
    title: str = "",
    query: int | None = None,
    scale: str = "0-1",
    full_limit: int = FULL_LIMIT,
) -> go.Figure:
    """Heatmap of a `[query, key]` pattern: keys across, queries down, in token positions.

    Numbers only: `z` goes as a float32 array and both axes as integer token positions, so a
    click names a (query, key) pair exactly; the `index:token` labels travel once, as tick
    labels and in `layout.meta["labels"]` (the page's hover readout reads them there).

    Prompts longer than `full_limit` tokens are drawn as two panels sharing the key axis:
    an *overview* where each cell is the MAX weight of a block x block tile (block chosen so
    at most `OVERVIEW_CELLS` cells per axis; cells sit at their block's middle token, so a
    click there names that token), and a *window*: the query `query` (or, unlocked, the last
    token) +- `WINDOW` rows at full resolution over every key (zoom in to read single keys).
    This keeps the figure near 120 KB at 1,000 tokens instead of megabytes.

    `scale`: `"0-1"` (fixed), `"head max"` (0 to this head's largest weight, for diffuse
    heads) or `"log"` (log10 of the weight, floored at 1e-4). `query` boxes that query's row.
    """
    import plotly.graph_objects as go

    if scale not in SCALES:
        raise ValueError(f"scale: {scale!r} is not one of {', '.join(SCALES)}")
    labels = token_labels(tokens)
    n = len(tokens)
    z, colour, weight = _colour(pattern, scale)  # z: [query, key]
    hover = "query %{y} → key %{x}<br>" + weight + "<extra></extra>"
    common = {"colorscale": "Blues", "hovertemplate": hover, **colour}
    if n <= full_limit:
        fig = go.Figure(go.Heatmap(z=z, x=np.arange(n), y=np.arange(n), **common))
        fig.update_layout(
            xaxis={**_ticks(labels, n), "title": {"text": "key"}, "tickangle": -60, "side": "top"},
            yaxis={**_ticks(labels, n), "title": {"text": "query"}, "autorange": "reversed"},
            height=max(420, min(900, 28 * n + 160)),
            margin={"l": 110, "r": 20, "t": 140, "b": 20},
        )
        view = "full"
        if query is not None and 0 <= query < n:
            box = {"x0": -0.5, "x1": n - 0.5, "y0": query - 0.5, "y1": query + 0.5}
            fig.add_shape(type="rect", line={"color": "crimson", "width": 2}, **box)
    else:
        fig, view = _long_figure(z, labels, query, common), "overview+window"
        block = fig.layout.meta["block"]
        title = (
            f"{title}<br><sub>overview: max weight of each {block}×{block}-token block "
            "(click a cell: move the window there)</sub>"
        )
    fig.update_layout(
        title={"text": title, "y": 0.99, "yanchor": "top"},
        meta={"labels": labels, "view": view, "scale": scale},
    )
    fig.update_layout(plot_bgcolor="white", paper_bgcolor="white")
    return fig


def window_rows(n: int, query: int | None) -> tuple[int, int]:
    """`(first, stop)`: the query rows a long prompt's figure draws at full resolution, `query`
    (or, unlocked or out of range, the last token) +- `WINDOW`, clipped to the `n` tokens."""
    centre = query if query is not None and 0 <= query < n else n - 1
    return max(0, centre - WINDOW), min(n, centre + WINDOW + 1)


def _long_figure(z: np.ndarray, labels: list[str], query: int | None, common: dict) -> go.Figure:
    """Overview (block max) above a full-resolution window of rows around `query`: one
    figure, two y axes sharing the key axis (built in one go: `make_subplots` and repeated
    `update_*` calls cost ~0.1 s of plotly validation per call at this size)."""
    import plotly.graph_objects as go

    n = len(labels)
    block = int(np.ceil(n / OVERVIEW_CELLS))
    low, high = window_rows(n, query)
    middles = np.array([(s + min(s + block, n) - 1) // 2 for s in range(0, n, block)])
    overview = go.Heatmap(z=block_max(z, block), x=middles, y=middles, **common)
    window = go.Heatmap(
        z=z[low:high], x=np.arange(n), y=np.arange(low, high), yaxis="y2", showscale=False, **common
    )
    ticks = _ticks(labels, n)
    rows = {"tickmode": "array", "tickvals": list(range(low, high)), "ticktext": labels[low:high]}
    line = {"color": "crimson", "width": 2}
    band = {"type": "rect", "x0": -0.5, "x1": n - 0.5, "line": line, "xref": "x"}
    shapes = [{**band, "y0": low - 0.5, "y1": high - 0.5, "yref": "y"}]
    if query is not None and 0 <= query < n:
        shapes.append({**band, "y0": query - 0.5, "y1": query + 0.5, "yref": "y2"})
    title = {"xref": "paper", "yref": "paper", "x": 0, "showarrow": False, "xanchor": "left"}
    layout = {
        "xaxis": {**ticks, "tickangle": -60, "side": "top", "title": {"text": "key"}},
        "yaxis": {
            **ticks,
            "domain": [0.36, 1.0],
            "title": {"text": "query"},
            "autorange": "reversed",
        },
        "yaxis2": {**rows, "domain": [0.0, 0.26], "autorange": "reversed"},
        "shapes": shapes,
        "annotations": [
            {
                **title,
                "y": 0.30,
                "yanchor": "bottom",
                "text": f"window: queries {low}-{high - 1} at full resolution (zoom to read keys)",
            }
        ],
        "height": 900,
        "margin": {"l": 110, "r": 20, "t": 170, "b": 20},
    }
    fig = go.Figure(data=[overview, window], layout=layout)
    fig.layout.meta = {"block": block}
    return fig


@functools.lru_cache(maxsize=4)
def _offset_buckets(n_q: int, n_k: int) -> tuple[np.ndarray, int]:
    """Bar index of every (query, key) cell for `signed_offset_mass`, and the bucket count."""
    offset = np.arange(n_k)[None, :] - np.arange(n_q)[:, None]  # [query, key]
    magnitude = np.abs(offset)
    bucket = np.where(magnitude == 0, 0, np.floor(np.log2(np.maximum(magnitude, 1))) + 1)
    n_buckets = int(bucket.max()) + 1 if bucket.size else 1
    index = np.sign(offset) * bucket.astype(np.int64) + (n_buckets - 1)  # [query, key]
    index.setflags(write=False)
    return index, n_buckets


def signed_offset_mass(pattern: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Mean attention mass per signed query-key offset `key - query`, in log2 buckets.

    Buckets: `-(2^b)..-(2^(b-1))` for keys BEFORE the query (previous-token heads put their
    mass at -1), `0`, and `+1`, `+2-3`, ... for keys AFTER it (only bidirectional models).
    Returns (labels, mass) with mass averaged over queries; rows sum to 1 so mass does too.
    """
    n_q, n_k = pattern.shape
    index, n_buckets = _offset_buckets(n_q, n_k)  # [query, key]
    mass = np.bincount(
        index.ravel(), weights=pattern.astype(np.float64).ravel(), minlength=2 * n_buckets - 1
    ) / max(n_q, 1)
    spans = ["0"] + [
        str(2 ** (b - 1)) if b == 1 else f"{2 ** (b - 1)}-{2**b - 1}" for b in range(1, n_buckets)
    ]
    labels = [f"-{s}" for s in reversed(spans[1:])] + ["0"] + [f"+{s}" for s in spans[1:]]
    return labels, mass


def offset_figure(pattern: np.ndarray, *, title: str = "", causal: bool = True) -> go.Figure:
    """Bar chart of `signed_offset_mass`: keys before the query left, after it right."""
    import plotly.graph_objects as go

    labels, mass = signed_offset_mass(pattern)
    centre = len(labels) // 2
    colours = ["#1c7ed6"] * centre + ["#868e96"] + ["#e8590c"] * centre
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=mass,
            marker={"color": colours},
            hovertemplate="offset %{x} tokens<br>mean mass %{y:.4f}<extra></extra>",
        )
    )
    note = "" if not causal else " (causal: no later keys)"
    fig.update_layout(
        title={"text": title},
        xaxis={
            "title": {"text": f"key − query, tokens (− earlier, + later){note}"},
            "type": "category",
        },
        margin={"t": 60},
    )
    fig.update_layout(**plain_style())
    fig.update_yaxes(title={"text": "mean attention mass (fraction)"})
    return fig


__all__ = [
    "HeadPattern",
    "attention_pattern",
    "block_max",
    "plain_style",
    "offset_figure",
    "pattern_figure",
    "signed_offset_mass",
    "token_labels",
    "visible_token",
    "window_rows",
]
