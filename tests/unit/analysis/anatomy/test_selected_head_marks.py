"""The selected head is marked on the whole-model figures (issue 16 items 6 and 8): the
taxonomy heatmap outlines its column, the cluster map points at its own point, the layer x
head map outlines its cell; axes carry readable names and units at 144 heads (12 x 12)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.anatomy.taxonomy import BEHAVIOURS, HeadTaxonomy
from analysis.statistics.attention_stats import attention_stats


def taxonomy_of(n_layers: int, n_heads: int) -> HeadTaxonomy:
    rng = np.random.default_rng(0)
    layer, head = np.meshgrid(np.arange(n_layers), np.arange(n_heads), indexing="ij")
    frame = pd.DataFrame({"layer": layer.ravel(), "head": head.ravel()})
    for name in BEHAVIOURS:
        frame[name] = rng.random(len(frame))
    frame["label"] = "mixed"
    frame["cluster"] = np.arange(len(frame)) % 3
    frame["pc1"], frame["pc2"] = rng.normal(size=len(frame)), rng.normal(size=len(frame))
    return HeadTaxonomy("m", frame, 0.5, [0.4, 0.2])


def test_taxonomy_marks_the_selected_head_and_stays_readable_at_144_heads():
    taxonomy = taxonomy_of(12, 12)
    heat = taxonomy.plot("heatmap", selected=(3, 5))
    names = list(heat.data[0].x)
    (box,) = heat.layout.shapes
    assert names[int(box.x0 + 0.5)] == "L3H5" and box.x1 - box.x0 == 1
    assert len(heat.layout.xaxis.tickvals) <= 36  # labels never overprinted
    assert "head_name" not in str(heat.to_plotly_json())
    assert list(heat.data[0].y)[0] == "previous token"
    assert heat.data[0].colorbar.title.text == "score (0-1)"

    clusters = taxonomy.plot("clusters", selected=(3, 5))
    (note,) = clusters.layout.annotations
    row = taxonomy.scores.query("layer == 3 and head == 5").iloc[0]
    assert (note.x, note.y) == pytest.approx((row.pc1, row.pc2))
    assert note.text == "L3H5 (selected)"
    assert clusters.data[0].mode == "markers"  # 144 labels only in the hover
    assert "(40% of variance)" in clusters.layout.xaxis.title.text
    assert taxonomy.plot("heatmap").layout.shapes == ()


def test_layer_by_head_map_outlines_the_selected_cell_with_units(zoo_model):
    stats = attention_stats(zoo_model("tiny-ioi"), ["When Mary and John went to the store"])
    fig = stats.plot("heatmap", stat="entropy", selected=(1, 2))
    (box,) = fig.layout.shapes
    assert (box.x0, box.x1, box.y0, box.y1) == (1.5, 2.5, 0.5, 1.5)
    assert "(nats)" in fig.layout.title.text and "nats" in fig.data[0].colorbar.title.text
    assert fig.layout.xaxis.tickformat == "d" and fig.layout.xaxis.dtick == 1
    with pytest.raises(ValueError, match="head: 4 is out of range for tiny-ioi"):
        stats.plot("heatmap", selected=(0, 4))
