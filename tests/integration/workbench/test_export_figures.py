"""Figure export through the long-lived kaleido server, and `workbench figure`.

Checks the bytes, not just that a file appeared: PNG magic and size, SVG that parses as XML
and holds the heatmap, a PDF header, and a pattern figure whose numbers equal the model's own
`hook_pattern` cache.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import pytest

from analysis.statistics.attention_pattern import attention_pattern, pattern_figure
from workbench.cli import main
from workbench.export import export, figure_bytes
from workbench.results import Result
from workbench.store import RunStore

PROMPT = "When Mary and John went to the store, John gave a drink to"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@dataclass(frozen=True)
class ExportedBars(Result):
    """A minimal stored result for `workbench figure run` (module level: decodable)."""

    values: list[float]

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame({"value": self.values})

    def plot(self, kind=None, **kwargs):
        return go.Figure(go.Bar(y=self.values, name=kind or "bars"))


def test_static_formats_are_valid_and_sized():
    fig = go.Figure(go.Heatmap(z=[[0.1, 0.9], [0.5, 0.5]]))
    assert png_size(figure_bytes(fig, "png", width=320, height=240)) == (320, 240)
    svg = figure_bytes(fig, "svg", width=320, height=240)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and root.get("width") == "320"
    assert figure_bytes(fig, "pdf")[:5] == b"%PDF-"


def test_pattern_figure_holds_the_models_own_pattern(zoo_model, tmp_path):
    model = zoo_model("tiny-ioi")
    head = attention_pattern(model, PROMPT, 1, 2)
    _, cache = model.run_with_cache(PROMPT, names=["blocks.1.attn.hook_pattern"])
    expected = cache["blocks.1.attn.hook_pattern"][0, 2].double().numpy()  # [query, key]
    np.testing.assert_allclose(head.pattern, expected, atol=1e-6)
    np.testing.assert_allclose(head.pattern.sum(-1), 1.0, atol=1e-5)
    fig = pattern_figure(head.pattern, head.tokens, title="L1H2")
    np.testing.assert_allclose(np.asarray(fig.data[0].z), expected, atol=1e-6)
    labels = fig.layout.xaxis.ticktext
    assert labels[0] == "0:" + head.tokens[0]
    assert png_size(export(fig, tmp_path / "p.png", width=500, height=500).read_bytes())[0] == 500


def test_out_of_range_head_names_the_argument(zoo_model):
    with pytest.raises(ValueError, match=r"head: 4 is out of range for tiny-ioi \(4 heads"):
        attention_pattern(zoo_model("tiny-ioi"), PROMPT, 0, 4)


def test_cli_exports_a_stored_run(tmp_path, capsys):
    store = RunStore(tmp_path / "store")
    run_id = store.save(ExportedBars([1.0, 3.0, 2.0]), kind="bars", model="none", config={})
    out = tmp_path / "bars.svg"
    argv = ["figure", "run", run_id, "--store", str(store.root), "-o", str(out), "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "svg"
    assert ET.parse(out).getroot().tag.endswith("svg")


@pytest.mark.slow
def test_cli_pattern_and_bad_input(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

    def cli(*args):
        cmd = [sys.executable, "-m", "workbench.cli", "figure", *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)

    out = tmp_path / "pattern.html"
    ok = cli("pattern", "tiny-ioi", PROMPT, "--layer", "0", "--head", "1", "-o", str(out))
    assert ok.returncode == 0, ok.stderr
    assert "Plotly.newPlot" in out.read_text()
    bad = cli("pattern", "tiny-ioi", PROMPT, "--layer", "0", "--head", "1", "-o", "x.jpg")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "-o" in bad.stderr
    empty = cli("pattern", "tiny-ioi", "  ", "--layer", "0", "--head", "1", "-o", str(out))
    assert empty.returncode == 2 and "prompt" in empty.stderr


def test_cli_stats_figures_match_the_library(zoo_model, tmp_path, capsys):
    from analysis.statistics.attention_stats import attention_stats
    from kernels import DEFAULT_STATS

    out = tmp_path / "mass.html"
    argv = [
        "figure",
        "stats",
        "tiny-ioi",
        PROMPT,
        "--kind",
        "block_mass",
        "--layer",
        "0",
        "--head",
        "1",
        "--mass-block",
        "4",
        "-o",
        str(out),
    ]
    assert main(argv) == 0
    expected = attention_stats(
        zoo_model("tiny-ioi"), [PROMPT], stats=[*DEFAULT_STATS, "block_mass"], mass_block=4
    ).plot("block_mass", layer=0, head=1)
    assert expected.layout.title.text in out.read_text()
    assert main(["figure", "stats", "tiny-ioi", PROMPT, "--kind", "distance", "-o", str(out)]) == 2
    assert "--layer and --head" in capsys.readouterr().err


def test_static_export_leaves_out_the_hover_labels_but_not_the_figure(monkeypatch):
    import kaleido

    pattern = np.random.default_rng(0).random((300, 300), dtype=np.float32)  # [query, key]
    fig = pattern_figure(pattern / pattern.sum(1, keepdims=True), [f"t{i}" for i in range(300)])
    sent = []
    real = kaleido.calc_fig_sync
    monkeypatch.setattr(kaleido, "calc_fig_sync", lambda f, **kw: sent.append(f) or real(f, **kw))
    png = figure_bytes(fig, "png")
    assert png.startswith(b"\x89PNG")
    [spec] = sent
    assert "labels" not in spec["layout"]["meta"] and spec["layout"]["meta"]["view"]
    assert len(fig.layout.meta["labels"]) == 300  # the caller's figure is untouched
    assert spec["layout"]["xaxis"]["ticktext"] == list(fig.layout.xaxis.ticktext)
