"""`CorpusStats.plot` on a synthetic result: the heatmap of any stored aggregate (mean or a
quantile) and the distance histogram of one head hold exactly the stored numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from analysis.statistics.corpus_stats import STATISTICS, CorpusStats


@pytest.fixture
def result() -> CorpusStats:
    rng = np.random.default_rng(0)
    layer, head = np.meshgrid(np.arange(2), np.arange(3), indexing="ij")  # each [layer, head]
    table = {"layer": layer.ravel(), "head": head.ravel(), "n_queries": 10, "n_documents": 2}
    for stat in STATISTICS:
        for aggregate in ("mean", "q5", "q95"):
            table[f"{stat}_{aggregate}"] = rng.random(6)
    hist = torch.tensor(rng.random((2, 3, 4)))  # [layer, head, bucket]
    return CorpusStats(pd.DataFrame(table), hist)


def test_heatmap_shows_the_chosen_aggregate(result):
    assert result.aggregates() == ["mean", "q5", "q95"]
    for aggregate in result.aggregates():
        fig = result.plot("sink", aggregate=aggregate)
        expected = result.per_head[f"sink_{aggregate}"].to_numpy().reshape(2, 3)
        np.testing.assert_array_equal(fig.data[0].z, expected)
        assert fig.layout.title.text == f"{aggregate} sink per head over ? documents"


def test_distance_histogram_of_one_head(result):
    fig = result.plot("distance", layer=1, head=2)
    assert [trace.name for trace in fig.data] == ["L1H2"]
    np.testing.assert_array_equal(fig.data[0].y, result.distance_hist[1, 2].numpy())
    assert list(fig.data[0].x) == ["[0,1)", "[1,2)", "[2,4)", "[4,8)"]
    assert len(result.plot("distance").data) == 6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "entropy", "aggregate": "q50"}, "aggregate: 'q50' is not one of mean, q5, q95"),
        ({"kind": "distance", "layer": 2, "head": 0}, "layer: 2 is out of range.*(2 layers: 0-1)"),
        ({"kind": "distance", "layer": 0}, "layer/head: give both"),
    ],
)
def test_bad_arguments_name_themselves(result, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        result.plot(**kwargs)
