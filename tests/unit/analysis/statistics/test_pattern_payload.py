"""The pattern figure sends numbers, stays small at 1,000 tokens and keeps clicks exact;
the signed-offset histogram tells previous-token from next-token heads (synthetic patterns)."""

from __future__ import annotations

import numpy as np
import plotly.io as pio
import pytest

from analysis.statistics.attention_pattern import (
    FULL_LIMIT,
    WINDOW,
    block_max,
    pattern_figure,
    signed_offset_mass,
)


def random_pattern(n: int, seed: int = 0) -> np.ndarray:
    pattern = np.random.default_rng(seed).random((n, n), dtype=np.float32)  # [query, key]
    return pattern / pattern.sum(axis=1, keepdims=True)


def payload(fig) -> int:
    """Bytes of the figure as Dash sends it."""
    return len(pio.json.to_json_plotly(fig.to_plotly_json()))


@pytest.mark.parametrize("n", [300, 1000])
def test_long_prompts_send_an_overview_and_a_window_under_150_kb(n):
    pattern = random_pattern(n)
    tokens = [f"w{i}" for i in range(n)]
    fig = pattern_figure(pattern, tokens, title="t", query=n // 2)
    assert payload(fig) < 150_000
    overview, window = fig.data
    assert fig.layout.meta["view"] == "overview+window"
    assert fig.layout.meta["labels"][5] == "5:w5"
    assert "customdata" not in fig.to_plotly_json()["data"][0]
    # the window: the locked query +- WINDOW rows, every key, at full resolution
    rows = np.asarray(window.y)
    assert rows[0] == n // 2 - WINDOW and rows[-1] == n // 2 + WINDOW
    np.testing.assert_array_equal(np.asarray(window.z), pattern[rows[0] : rows[-1] + 1])
    # the overview: block max, cells at token positions (a click names a real token)
    block = int(np.ceil(n / 64))
    np.testing.assert_array_equal(np.asarray(overview.z), block_max(pattern, block))
    assert np.asarray(overview.x).max() < n and np.issubdtype(np.asarray(overview.x).dtype, int)
    assert f"each {block}×{block}-token block" in fig.layout.title.text


def test_short_prompts_are_drawn_whole_with_integer_axes():
    n = FULL_LIMIT
    pattern = random_pattern(n)
    fig = pattern_figure(pattern, [f"t{i}" for i in range(n)], query=3)
    (trace,) = fig.data
    np.testing.assert_array_equal(np.asarray(trace.z), pattern)
    np.testing.assert_array_equal(np.asarray(trace.x), np.arange(n))
    assert fig.layout.meta["view"] == "full"


def test_block_max_against_a_naive_loop():
    pattern = random_pattern(23, seed=3)
    expected = np.array(
        [[pattern[i : i + 5, j : j + 5].max() for j in range(0, 23, 5)] for i in range(0, 23, 5)]
    )
    np.testing.assert_array_equal(block_max(pattern, 5), expected)


def test_colour_scales():
    pattern = random_pattern(20) * 0.5
    head_max = pattern_figure(pattern, ["a"] * 20, scale="head max").data[0]
    assert head_max.zmax == pytest.approx(float(pattern.max()))
    log = pattern_figure(pattern, ["a"] * 20, scale="log").data[0]
    np.testing.assert_allclose(np.asarray(log.z), np.log10(np.maximum(pattern, 1e-4)), rtol=1e-6)
    assert (log.zmin, log.zmax) == (-4.0, 0.0)
    with pytest.raises(ValueError, match="scale: 'hot' is not one of 0-1, head max, log"):
        pattern_figure(pattern, ["a"] * 20, scale="hot")


@pytest.mark.parametrize(("shift", "label"), [(-1, "-1"), (1, "+1"), (-3, "-2-3"), (5, "+4-7")])
def test_signed_offsets_tell_previous_from_next_token_heads(shift, label):
    n = 12
    pattern = np.zeros((n, n))
    for q in range(n):  # attend to q + shift where it exists, else to itself
        pattern[q, q + shift if 0 <= q + shift < n else q] = 1.0
    labels, mass = signed_offset_mass(pattern)
    assert mass.sum() == pytest.approx(1.0)
    assert labels[int(np.argmax(mass))] == label
