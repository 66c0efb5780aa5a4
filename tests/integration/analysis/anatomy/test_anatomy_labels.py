"""Readable figure labels (issue 16, item 3): the score decomposition's axis uses σ and
sub/superscripts instead of pseudo-LaTeX, and the token readout table shows every cell whole
(short columns wide enough for their header, the figure as tall as its wrapped rows)."""

from __future__ import annotations

from analysis import decompose_score, qk_ov_svd
from analysis.anatomy.head_svd import READOUT_HEADERS, readout_table

PROMPT = "When Mary and John went to the store, John gave a drink to"


def test_score_decomposition_axis_is_readable(zoo_model):
    fig = decompose_score(zoo_model("tiny-ioi"), PROMPT, 1, 0, 14, 13).plot()
    label = fig.layout.yaxis.title.text
    assert label.startswith("term σ<sub>k</sub>") and "·" in label
    assert "sigma" not in label and "_" not in label.replace("<sub>", "")
    assert "→" in fig.layout.title.text and "->" not in fig.layout.title.text


def test_readout_table_cells_are_whole(zoo_model):
    svd = qk_ov_svd(zoo_model("tiny-ioi"), 1, 0, n_components=3, top_tokens=5)
    fig = svd.plot("readouts")
    table = readout_table(svd.readouts)
    (trace,) = fig.data
    assert tuple(trace.header.values) == READOUT_HEADERS
    for values, column in zip(trace.cells.values, table.columns, strict=True):
        assert list(values) == table[column].tolist()  # full text, nothing cut
    widths = trace.columnwidth
    for width, header in zip(widths[:-1], READOUT_HEADERS[:-1], strict=True):
        assert width >= len(header)  # short columns fit their header
    longest = max(map(len, table["tokens (value)"]))
    lines = -(-longest // 36)  # ~36 characters a line in a half-width card
    assert fig.layout.height >= 80 + 30 + len(table) * (10 + 19) + 19 * (lines - 1)
