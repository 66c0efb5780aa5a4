"""`HeadStats`: the long table, per-head aggregates, plots from stored numbers, JSON round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from analysis import HeadStats, attention_stats
from analysis.statistics.head_stats_plots import bucket_labels
from workbench.results import Result

PROMPTS = [
    "When Mary and John went to the store, John gave a drink to",
    "Mary and John",
]
STATISTIC_COLUMNS = ["entropy", "sink", "max_prob", "mean_distance", "sum_sq", "lse"]


@pytest.fixture(scope="module")
def result(zoo_model) -> HeadStats:
    stats = ("lse", "entropy", "max_prob", "sink", "mean_distance", "sum_sq")
    return attention_stats(
        zoo_model("tiny-ioi"), PROMPTS, stats=(*stats, "distance_hist", "block_mass"), mass_block=4
    )


def test_long_table_has_one_row_per_real_query(zoo_model, result):
    frame = result.to_frame()
    assert list(frame.columns) == ["prompt", "layer", "head", "query", "token", *STATISTIC_COLUMNS]
    lengths = [zoo_model("tiny-ioi").to_tokens(p).shape[1] for p in PROMPTS]
    assert len(frame) == sum(lengths) * 2 * 4  # 2 layers x 4 heads
    assert not frame[STATISTIC_COLUMNS].isna().any().any()
    first = frame[(frame["prompt"] == 0) & (frame["layer"] == 1) & (frame["head"] == 2)]
    assert list(first["token"]) == zoo_model("tiny-ioi").to_str_tokens(PROMPTS[0])
    assert list(first["query"]) == list(range(lengths[0]))
    np.testing.assert_array_equal(first["entropy"], result.entropy[0, 1, 2, : lengths[0]].numpy())
    assert (frame["sink"] <= 1 + 1e-6).all() and (frame["max_prob"] >= frame["sum_sq"] - 1e-6).all()


def test_per_head_means_match_the_long_table(result):
    frame = result.to_frame()
    per_head = result.per_head()
    assert list(per_head.columns) == [
        "layer",
        "head",
        *STATISTIC_COLUMNS,
        "effective_keys",
        "n_queries",
    ]
    frame["effective_keys"] = 1.0 / frame["sum_sq"]
    expected = frame.groupby(["layer", "head"])[[*STATISTIC_COLUMNS, "effective_keys"]].mean()
    got = per_head.set_index(["layer", "head"])[expected.columns]
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, atol=1e-6, rtol=1e-6)
    assert (per_head["effective_keys"] >= 1 - 1e-6).all()


def test_plots_draw_the_stored_numbers(result):
    heatmap = result.plot("heatmap", stat="effective_keys")
    per_head = result.per_head().pivot(index="layer", columns="head", values="effective_keys")
    np.testing.assert_allclose(np.asarray(heatmap.data[0].z), per_head.to_numpy(), rtol=1e-6)

    query = result.plot("query", layer=1, head=3, stat="sink", prompt=1)
    n = len(result.tokens[1])
    np.testing.assert_array_equal(np.asarray(query.data[0].y), result.sink[1, 1, 3, :n].numpy())
    assert list(query.layout.xaxis.ticktext) == result.tokens[1]

    distance = result.plot("distance", layer=0, head=1)
    assert list(distance.data[0].x) == bucket_labels(result.distance_hist.shape[-1])
    assert sum(distance.data[0].y) == pytest.approx(1.0, abs=1e-5)

    block_mass = result.plot("block_mass", layer=1, head=0, prompt=0)
    z = np.asarray(block_mass.data[0].z)  # [query, key_block]
    assert z.shape == (len(result.tokens[0]), -(-len(result.tokens[0]) // 4))
    np.testing.assert_allclose(z.sum(axis=1), 1.0, atol=1e-5)


def test_bucket_labels_name_the_distance_ranges():
    assert bucket_labels(5) == ["0", "1", "2-3", "4-7", "8-15"]


@pytest.mark.parametrize(
    ("kind", "kwargs", "argument"),
    [
        ("violin", {}, "kind"),
        ("heatmap", {"stat": "perplexity"}, "stat"),
        ("query", {"layer": 2, "head": 0}, "layer: 2 is out of range"),
        ("query", {"layer": 0, "head": 0, "prompt": 5}, "prompt"),
        ("distance", {"layer": 0, "head": 4}, "head"),
    ],
)
def test_bad_plot_arguments_raise_value_error_naming_them(result, kind, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        result.plot(kind, **kwargs)


def test_block_mass_plot_needs_block_mass_computed(zoo_model):
    result = attention_stats(zoo_model("tiny-ioi"), PROMPTS[:1], stats=["entropy"])
    with pytest.raises(ValueError, match="block_mass"):
        result.plot("block_mass", layer=0, head=0)


def test_json_round_trip_restores_every_field(result):
    restored = Result.from_json(result.to_json())
    assert isinstance(restored, HeadStats)
    assert restored.tokens == result.tokens and restored.prompts == result.prompts
    assert restored.config == result.config and restored.model_name == result.model_name
    for name in [*STATISTIC_COLUMNS, "distance_hist", "block_mass"]:
        assert torch.equal(getattr(restored, name).isnan(), getattr(result, name).isnan())
        torch.testing.assert_close(getattr(restored, name), getattr(result, name), equal_nan=True)
    pd.testing.assert_frame_equal(restored.to_frame(), result.to_frame())
    assert restored.plot("heatmap").to_dict() == result.plot("heatmap").to_dict()
