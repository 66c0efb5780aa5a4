"""Small multiples: every head's attention pattern as a thumbnail, tiled in one heatmap.

`grid_layout(...)` fixes where each head sits (scope `layer`: one layer's heads, up to
`LAYER_COLS` per row; scope `all`: a layer x head grid of every head), `thumbnails(...)`
downsamples patterns by block max (each thumbnail cell is the MAX weight of a block x block
tile, block = ceil(tokens / side), so a sharp one-key head stays visible), and
`grid_figure(...)` draws them as ONE float32 heatmap (one NaN row/column between tiles, no
per-cell strings) with the selected head outlined. `head_at(layout, x, y)` maps a clicked cell
back to its head. The side of a thumbnail is chosen so that the whole grid holds at most
`CELL_BUDGET` cells (9 x 9 thumbnails at 144 heads, 32 x 32 for a layer of 12: under 200 KB
of JSON at 144 heads whatever the prompt length; base64 float32, whose '/' plotly's JSON writes
as 6 characters, so about 10 bytes per cell at worst), and never more than `MAX_SIDE` cells or
the prompt's tokens. No plotly template travels with the figure (`template="none"`).

Colour: weight on a fixed 0-1 scale (numbers are real attention weights; block max, not mean).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from analysis.statistics.attention_pattern import block_max, plain_style
from workbench.heads import Head

SCOPES = ("layer", "all")
LAYER_COLS = 6  # scope `layer`: at most this many thumbnails per row
MAX_SIDE = 32  # cells per thumbnail side, at most
CELL_BUDGET = 128 * 128  # cells in the whole tiled heatmap (gaps included), at most


@dataclass(frozen=True)
class GridLayout:
    """Where each head's thumbnail sits: tile (row, col) = divmod(index, cols); every tile is
    `tile_q x tile_k` cells followed by one gap cell; `block` tokens per cell side."""

    scope: str
    heads: tuple[Head, ...]
    rows: int
    cols: int
    tile_q: int
    tile_k: int
    block: int

    def origin(self, index: int) -> tuple[int, int]:
        """(x, y) of the tile's top-left cell in the tiled heatmap."""
        row, col = divmod(index, self.cols)
        return col * (self.tile_k + 1), row * (self.tile_q + 1)


def check_scope(scope: object) -> str:
    """The grid scope ("layer" or "all"), or ValueError naming a bad one."""
    if not isinstance(scope, str) or scope not in SCOPES:
        raise ValueError(f"grid scope: expected one of {', '.join(SCOPES)}, got {scope!r}")
    return scope


def thumbnail_side(n_tiles: int) -> int:
    """Cells per thumbnail side so `n_tiles` tiles (plus gaps) fit `CELL_BUDGET`."""
    return max(2, min(MAX_SIDE, math.isqrt(CELL_BUDGET // max(1, n_tiles)) - 1))


def grid_layout(
    n_layers: int, n_heads: int, scope: str, layer: int, n_q: int, n_k: int
) -> GridLayout:
    """The tiling of `scope` (`layer`: heads of `layer`; `all`: every head, a row per layer)."""
    scope = check_scope(scope)
    if scope == "layer":
        heads = tuple(Head(layer, h) for h in range(n_heads))
        cols = min(n_heads, LAYER_COLS)
    else:
        heads = tuple(Head(lay, h) for lay in range(n_layers) for h in range(n_heads))
        cols = n_heads
    rows = -(-len(heads) // cols)
    block = max(1, -(-max(n_q, n_k) // thumbnail_side(len(heads))))
    return GridLayout(scope, heads, rows, cols, -(-n_q // block), -(-n_k // block), block)


def thumbnails(patterns: np.ndarray, layout: GridLayout) -> np.ndarray:
    """Block max of each head's pattern: `patterns` [layer, head, query, key] ->
    [len(layout.heads), tile_q, tile_k] float32."""
    return np.stack(
        [
            block_max(np.asarray(patterns[h.layer, h.head], np.float32), layout.block)
            for h in layout.heads
        ]
    )  # [tile, tile_q, tile_k]


def tiled(thumbs: np.ndarray, layout: GridLayout) -> np.ndarray:
    """The thumbnails placed in one [rows * (tile_q + 1) - 1, cols * (tile_k + 1) - 1]
    float32 array, NaN between tiles and in empty tiles."""
    height = layout.rows * (layout.tile_q + 1) - 1
    width = layout.cols * (layout.tile_k + 1) - 1
    z = np.full((height, width), np.nan, dtype=np.float32)  # [grid_y, grid_x]
    for index, thumb in enumerate(thumbs):
        x, y = layout.origin(index)
        z[y : y + layout.tile_q, x : x + layout.tile_k] = thumb
    return z


def outline(layout: GridLayout, head: Head) -> dict | None:
    """The plotly rect shape around `head`'s tile (None when the grid lacks it)."""
    if head not in layout.heads:
        return None
    x, y = layout.origin(layout.heads.index(head))
    return {
        "type": "rect",
        "x0": x - 0.5,
        "x1": x + layout.tile_k - 0.5,
        "y0": y - 0.5,
        "y1": y + layout.tile_q - 0.5,
        "line": {"color": "crimson", "width": 3},
        "name": f"selected {head}",
    }


def head_at(layout: GridLayout, x: int, y: int) -> Head:
    """The head whose tile holds cell (x, y) (`ValueError` between tiles or outside)."""
    col, dx = divmod(x, layout.tile_k + 1)
    row, dy = divmod(y, layout.tile_q + 1)
    index = row * layout.cols + col
    if x < 0 or y < 0 or col >= layout.cols or dx == layout.tile_k or dy == layout.tile_q:
        raise ValueError(f"grid click: cell ({x}, {y}) is between thumbnails, not on a head")
    if index >= len(layout.heads):
        raise ValueError(f"grid click: cell ({x}, {y}) is outside the grid")
    return layout.heads[index]


def grid_figure(
    thumbs: np.ndarray, layout: GridLayout, *, selected: Head | None = None, title: str = ""
) -> go.Figure:
    """One heatmap of the tiled thumbnails; the selected head outlined in crimson."""
    centre_x = [layout.origin(c)[0] + (layout.tile_k - 1) / 2 for c in range(layout.cols)]
    centre_y = [
        layout.origin(r * layout.cols)[1] + (layout.tile_q - 1) / 2 for r in range(layout.rows)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=tiled(thumbs, layout),
            colorscale="Blues",
            zmin=0.0,
            zmax=1.0,
            colorbar={"title": {"text": "max weight<br>per block (0-1)"}, "thickness": 12},
            hoverinfo="none",  # the head is named on the axes / above its tile
        ),
        layout={"template": "none"},
    )
    style = plain_style()
    axis = {"showgrid": False, "zeroline": False, "ticks": ""}
    if layout.scope == "all":
        xaxis = {
            "title": {"text": "head"},
            "tickvals": centre_x,
            "ticktext": [f"H{h}" for h in range(layout.cols)],
        }
        yaxis = {
            "title": {"text": "layer"},
            "tickvals": centre_y,
            "ticktext": [f"L{h.layer}" for h in layout.heads[:: layout.cols]],
        }
    else:
        xaxis, yaxis = {"showticklabels": False}, {"showticklabels": False}
        for index, head in enumerate(layout.heads):
            x, y = layout.origin(index)
            fig.add_annotation(
                x=x + (layout.tile_k - 1) / 2,
                y=y - 0.5,
                text=str(head),
                showarrow=False,
                yanchor="bottom",
                font={"size": 11},
            )
    shape = outline(layout, selected) if selected is not None else None
    cell_px = max(4, min(12, 720 // max(1, layout.cols * (layout.tile_k + 1))))
    fig.update_layout(
        title={"text": title, "font": {"size": 13}},
        shapes=[shape] if shape else [],
        height=130 + layout.rows * (layout.tile_q + 1) * cell_px,
        margin={"t": 60, "l": 60, "r": 20, "b": 50},
        plot_bgcolor=style["plot_bgcolor"],
        paper_bgcolor=style["paper_bgcolor"],
        xaxis={**axis, **xaxis, "constrain": "domain"},
        yaxis={**axis, **yaxis, "autorange": "reversed", "scaleanchor": "x"},
        meta={"scope": layout.scope, "heads": [str(h) for h in layout.heads]},
    )
    return fig


__all__ = [
    "SCOPES",
    "GridLayout",
    "check_scope",
    "grid_figure",
    "grid_layout",
    "head_at",
    "outline",
    "thumbnail_side",
    "thumbnails",
    "tiled",
]
