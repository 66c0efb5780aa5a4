"""Export without a browser: safe names, table formats, HTML, argument checks."""

from __future__ import annotations

import io
import re

import pandas as pd
import plotly.graph_objects as go
import pytest

from workbench.export import (
    export,
    figure_bytes,
    safe_export_path,
    safe_filename,
    table_bytes,
)


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("pattern L0H1", "png", "pattern_L0H1.png"),
        ("../../etc/passwd", "svg", "passwd.svg"),
        ("..\\..\\windows\\win.ini", None, "win.ini"),
        ("/abs/path/fig.png", "pdf", "fig.pdf"),
        (".hidden", "csv", "hidden.csv"),
        ("", "png", "export.png"),
        ("..", "html", "export.html"),
        ("Ünïcödé naïve", "csv", "Unicode_naive.csv"),
        ("a\x00b", "png", "a_b.png"),
    ],
)
def test_safe_filename_keeps_names_inside_the_folder(name, fmt, expected):
    assert safe_filename(name, fmt) == expected


def test_safe_filename_is_bounded():
    assert len(safe_filename("x" * 1000, "parquet")) <= 120
    assert safe_filename("x" * 1000, "parquet").endswith(".parquet")


def test_safe_export_path_stays_inside(tmp_path):
    for hostile in ("../escape", "/etc/passwd", "a/../../b", "~/.ssh/id_rsa", "sub/../.."):
        path = safe_export_path(tmp_path, hostile, "png")
        assert path.parent == tmp_path.resolve()
        assert path.name.endswith(".png")


def test_tables_round_trip_through_csv_and_parquet(tmp_path):
    df = pd.DataFrame({"layer": [0, 1], "head": [3, 2], "entropy": [0.25, 1.5], "tok": ["·a", "b"]})
    assert pd.read_csv(io.BytesIO(table_bytes(df, "csv"))).equals(df)
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(table_bytes(df, "parquet"))), df)
    written = export(df, tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(written), df)


def test_html_is_self_contained():
    fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 2]))
    html = figure_bytes(fig, "html", width=300, height=200).decode()
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert '<script src="http' not in html and "Plotly.newPlot" in html
    assert '"width":300' in html.replace(" ", "")


@pytest.mark.parametrize(
    ("obj", "name", "message"),
    [
        (go.Figure(), "x.jpg", "path: format 'jpg'"),
        (go.Figure(), "x", "path: format '(none)'"),
        (pd.DataFrame({"a": [1]}), "x.png", "path: format 'png'"),
        ("not a figure", "x.svg", "fig: expected a plotly Figure"),
    ],
)
def test_bad_formats_and_objects_name_the_argument(tmp_path, obj, name, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        export(obj, tmp_path / name)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="width"):
        figure_bytes(go.Figure(), "html", width=-5)


def test_token_labels_show_whitespace_and_index():
    from analysis.statistics.attention_pattern import token_labels, visible_token

    assert visible_token(" the") == "·the" and visible_token("\n\t") == "↵→"
    assert visible_token("") == "∅"
    assert token_labels(["<s>", " a", " a"]) == ["0:<s>", "1:·a", "2:·a"]


def test_external_references_are_found_everywhere_plotly_fetches():
    from workbench.export import external_references

    fig = go.Figure(go.Image(source="data:image/png;base64,AAAA"))
    fig.add_layout_image(source="https://example.org/a.png")
    fig.update_layout(
        font={"style": "italic"},
        map={"style": "https://tiles.example/style.json", "layers": [{"source": ["http://t/{z}"]}]},
    )
    assert sorted(external_references(fig.to_plotly_json())) == [
        "layout.images[0].source",
        "layout.map.layers[0].source",
        "layout.map.style",
    ]


def test_sizes_up_to_the_cap_are_accepted():
    fig = go.Figure(layout={"width": 4000, "height": 10})
    assert b"Plotly.newPlot" in figure_bytes(fig, "html")
    with pytest.raises(ValueError, match=r"layout\.width: 4001"):
        figure_bytes(go.Figure(layout={"width": 4001}), "html")
