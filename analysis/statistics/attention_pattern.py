"""One head's attention pattern and its figure, for the dashboard and `workbench figure`.

- `attention_pattern(model, prompt, layer, head)`: one head's `[query, key]` pattern from a
  single forward pass that caches only that layer's `hook_pattern`;
- `pattern_figure(...)`: the pattern as a heatmap with tokens on both axes, whitespace made
  visible and the token index in every label;
- `visible_token(text)`: the label convention (space `·`, newline `↵`, tab `→`).

Caveat: axis labels are `"index:token"` strings on an integer axis, because plotly merges
repeated category labels (two `the` tokens would otherwise share one row).
"""

from __future__ import annotations

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


def pattern_figure(
    pattern: np.ndarray,
    tokens: list[str],
    *,
    title: str = "",
    query: int | None = None,
) -> go.Figure:
    """Heatmap of a `[query, key]` pattern: keys across, queries down, `index:token` labels.

    `query` draws a box around that query's row (the locked token).
    """
    import plotly.graph_objects as go

    labels = token_labels(tokens)
    n = len(tokens)
    hover = np.array([[f"{labels[q]} → {labels[k]}" for k in range(n)] for q in range(n)])
    fig = go.Figure(
        go.Heatmap(
            z=pattern,
            x=list(range(n)),
            y=list(range(n)),
            customdata=hover,
            colorscale="Blues",
            zmin=0.0,
            zmax=1.0,
            colorbar={"title": {"text": "weight"}},
            hovertemplate="query→key %{customdata}<br>weight %{z:.3f}<extra></extra>",
        )
    )
    tick = {"tickmode": "array", "tickvals": list(range(n)), "ticktext": labels}
    size = max(420, min(900, 28 * n + 160))
    fig.update_layout(
        title={"text": title},
        xaxis={**tick, "title": {"text": "key"}, "tickangle": -60, "side": "top"},
        yaxis={**tick, "title": {"text": "query"}, "autorange": "reversed"},
        height=size,
        margin={"l": 110, "r": 20, "t": 120, "b": 20},
        template="plotly_white",
    )
    if n > 48:  # too many labels to read: keep every k-th
        step = int(np.ceil(n / 48))
        thin = {"tickvals": list(range(0, n, step)), "ticktext": labels[::step]}
        fig.update_xaxes(**thin)
        fig.update_yaxes(**thin)
    if query is not None and 0 <= query < n:
        fig.add_shape(
            type="rect",
            x0=-0.5,
            x1=n - 0.5,
            y0=query - 0.5,
            y1=query + 0.5,
            line={"color": "crimson", "width": 2},
        )
    return fig


__all__ = [
    "HeadPattern",
    "attention_pattern",
    "pattern_figure",
    "token_labels",
    "visible_token",
]
