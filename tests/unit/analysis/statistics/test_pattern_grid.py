"""The small-multiples grid: thumbnails are the block max of the real patterns (recomputed
here with plain loops), the selected head is outlined at its own tile, clicks map back to the
head drawn there, and the response stays small at 144 heads x 1,000 tokens."""

from __future__ import annotations

import math

import numpy as np
import plotly.io as pio
import pytest
import torch

from analysis.statistics.pattern_grid import (
    MAX_SIDE,
    grid_figure,
    grid_layout,
    head_at,
    thumbnails,
)
from workbench.heads import Head

PROMPT = "When Mary and John went to the store, John gave a drink to Mary. " * 6


@pytest.fixture(scope="module")
def patterns(zoo_model):
    model = zoo_model("tiny-ioi")
    with torch.no_grad():
        _, cache = model.run_with_cache(PROMPT, names=lambda n: n.endswith("hook_pattern"))
    layers = [cache[f"blocks.{i}.attn.hook_pattern"][0] for i in range(model.n_layers)]
    return torch.stack(layers).float().numpy()  # [layer, head, query, key]


def naive_block_max(pattern: np.ndarray, block: int) -> np.ndarray:
    n_q, n_k = pattern.shape
    out = np.zeros((math.ceil(n_q / block), math.ceil(n_k / block)))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = pattern[i * block : (i + 1) * block, j * block : (j + 1) * block].max()
    return out


def tile_of(fig, layout, head: Head) -> np.ndarray:
    """The cells of the drawn heatmap inside `head`'s outline rect (read from the figure)."""
    z = np.asarray(fig.data[0].z, dtype=float)  # [grid_y, grid_x]
    (rect,) = fig.layout.shapes
    y0, y1 = int(rect.y0 + 0.5), int(rect.y1 + 0.5)
    x0, x1 = int(rect.x0 + 0.5), int(rect.x1 + 0.5)
    assert np.isnan(z[y0:y1, x1]).all() if x1 < z.shape[1] else True  # a gap after the tile
    return z[y0:y1, x0:x1]


@pytest.mark.parametrize(("scope", "selected"), [("all", Head(1, 2)), ("layer", Head(0, 3))])
def test_thumbnails_are_the_block_max_of_the_real_patterns(patterns, scope, selected):
    n_layers, n_heads, n_q, n_k = patterns.shape
    assert n_q > MAX_SIDE  # so thumbnails really are downsampled
    layout = grid_layout(n_layers, n_heads, scope, selected.layer, n_q, n_k)
    assert layout.block > 1 and max(layout.tile_q, layout.tile_k) <= MAX_SIDE
    fig = grid_figure(thumbnails(patterns, layout), layout, selected=selected)
    assert np.asarray(fig.data[0].z).dtype == np.float32
    drawn = tile_of(fig, layout, selected)
    expected = naive_block_max(patterns[selected.layer, selected.head], layout.block)
    np.testing.assert_allclose(drawn, expected, atol=1e-7)
    assert fig.layout.shapes[0].name == f"selected {selected}"
    # every other head: its tile (from the layout's origin) holds its own block max
    z = np.asarray(fig.data[0].z, dtype=float)
    for index, head in enumerate(layout.heads):
        x, y = layout.origin(index)
        tile = z[y : y + layout.tile_q, x : x + layout.tile_k]
        np.testing.assert_allclose(
            tile, naive_block_max(patterns[head.layer, head.head], layout.block), atol=1e-7
        )
    expected_heads = n_layers * n_heads if scope == "all" else n_heads
    assert len(layout.heads) == expected_heads


def test_a_click_names_the_head_drawn_there(patterns):
    n_layers, n_heads, n_q, n_k = patterns.shape
    layout = grid_layout(n_layers, n_heads, "all", 0, n_q, n_k)
    for index, head in enumerate(layout.heads):
        x, y = layout.origin(index)
        assert head_at(layout, x + layout.tile_k - 1, y + layout.tile_q - 1) == head
        assert head_at(layout, x, y) == head
    with pytest.raises(ValueError, match="between thumbnails"):
        head_at(layout, layout.tile_k, 0)  # the gap column after the first tile
    with pytest.raises(ValueError, match="outside the grid"):
        head_at(layout, 0, n_layers * (layout.tile_q + 1))
    with pytest.raises(ValueError, match="grid scope: expected one of layer, all, got 'heads'"):
        grid_layout(n_layers, n_heads, "heads", 0, n_q, n_k)


def test_144_heads_at_1000_tokens_send_under_200_kb():
    rng = np.random.default_rng(0)
    one = rng.random((1000, 1000), dtype=np.float32)  # [query, key]
    patterns = np.broadcast_to(one, (12, 12, 1000, 1000))  # [layer, head, query, key], no copy
    layout = grid_layout(12, 12, "all", 0, 1000, 1000)
    fig = grid_figure(thumbnails(patterns, layout), layout, selected=Head(11, 11), title="t")
    size = len(pio.json.to_json_plotly(fig.to_plotly_json()))
    assert size < 200_000, size
    z = np.asarray(fig.data[0].z)
    assert z.dtype == np.float32 and z.size * 4 < 70_000  # float32 numbers, no per-cell strings
    assert "text" not in fig.to_plotly_json()["data"][0]
    # the outline sits on the last tile (bottom right)
    (rect,) = fig.layout.shapes
    assert rect.x1 == z.shape[1] - 0.5 and rect.y1 == z.shape[0] - 0.5
    assert fig.layout.yaxis.ticktext[-1] == "L11" and fig.layout.xaxis.ticktext[-1] == "H11"
