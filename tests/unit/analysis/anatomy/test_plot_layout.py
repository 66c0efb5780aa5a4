"""Plot helpers without models: greedy label placement and the HeadSVD readout table."""

from __future__ import annotations

import pandas as pd

from analysis.anatomy.head_svd import readout_table
from analysis.anatomy.label_placement import CANDIDATES, _box, _overlap, label_positions


def test_close_points_get_non_overlapping_labels():
    x, y = [0.0, 0.02, 1.0, 0.5], [0.0, 0.0, 1.0, 0.5]
    labels = ["L1H4 induction", "L1H0 induction", "L0H3 local", "L0H1 uniform"]
    where = label_positions(x, y, labels)
    assert len(where) == 4 and set(where) <= set(CANDIDATES)
    pixels = [(a * 780, b * 360) for a, b in zip(x, y, strict=True)]
    boxes = [
        _box(px, py, t, w, 6.5, 13.0) for (px, py), t, w in zip(pixels, labels, where, strict=True)
    ]
    assert not any(_overlap(boxes[i], boxes[j]) for i in range(4) for j in range(i + 1, 4))
    assert where[0] != where[1]  # the naive "top center" for both would overprint
    assert label_positions([], [], []) == []


def test_readout_table_groups_tokens_and_rounds_only_for_display():
    readouts = pd.DataFrame(
        {
            "matrix": "qk",
            "side": "query",
            "basis": "W_E",
            "component": 0,
            "sign": "+",
            "rank": [1, 0],
            "token": ["park", "farm"],
            "token_id": [3, 4],
            "value": [1.23456789, 2.3456789],
        }
    )
    table = readout_table(readouts)
    assert len(table) == 1
    assert table["tokens (value)"].item() == "farm (2.35), park (1.23)"
    assert readouts.value.tolist() == [1.23456789, 2.3456789]  # stored values untouched
