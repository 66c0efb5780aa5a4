"""Unit tests for the circuit graph and faithfulness figures the Circuits page draws: legend
entries for sign and width, distinct q/k/v port anchors, node names for click-through, and the
current cut marked on the faithfulness curve (toy graph, no model)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from circuits.circuit import Circuit
from circuits.circuit_plot import SIGN_NAMES, port_anchor
from circuits.graph import Graph
from workbench.ui.circuit_runs import curve_figure, cut_text


def toy_circuit(scores: torch.Tensor | None = None) -> Circuit:
    graph = Graph("toy", 2, 4, 4, True, True, None)
    if scores is None:  # alternating signs, distinct magnitudes
        n = graph.n_edges
        scores = (
            torch.arange(1, n + 1, dtype=torch.float64)
            * torch.tensor([1.0, -1.0]).repeat((n + 1) // 2)[:n]
        )
    return Circuit.from_scores(graph, task="ioi", method="test", scores=scores)


def edge_traces(fig):
    return [t for t in fig.data if t.meta == "edge"]


def test_legend_names_both_signs_and_explains_width_and_ports():
    fig = toy_circuit().plot()
    entries = {t.name for t in edge_traces(fig) if t.showlegend}
    assert entries == set(SIGN_NAMES.values())
    colours = {t.name: t.line.color for t in edge_traces(fig)}
    assert colours[SIGN_NAMES[True]] != colours[SIGN_NAMES[False]]
    title = fig.layout.legend.title.text
    assert "|score|" in title and "q solid" in title and "k dashed" in title
    widths = [t.line.width for t in edge_traces(fig)]
    assert max(widths) == pytest.approx(5.5) and min(widths) < 1.0  # width follows |score|


def test_one_sign_only_still_gets_its_legend_entry():
    fig = toy_circuit(-torch.ones(Graph("toy", 2, 4, 4, True, True, None).n_edges)).plot()
    assert [t.name for t in edge_traces(fig) if t.showlegend] == [SIGN_NAMES[True]]


def test_qkv_edges_land_on_three_distinct_anchors_with_distinct_dashes():
    circuit = toy_circuit()
    fig = circuit.plot()
    ends: dict[str, set] = {"q": set(), "k": set(), "v": set()}
    dashes: dict[str, set] = {"q": set(), "k": set(), "v": set()}
    for edge, trace in zip(circuit.kept_edges, edge_traces(fig), strict=True):
        if edge.endswith("L1H2<q>") or edge.endswith("L1H2<k>") or edge.endswith("L1H2<v>"):
            port = edge[-2]
            ends[port].add((round(trace.x[-1], 6), round(trace.y[-1], 6)))
            dashes[port].add(trace.line.dash)
    assert all(len(points) == 1 for points in ends.values())  # one anchor per port
    assert len(set().union(*ends.values())) == 3  # three different anchors
    assert [dashes[p] for p in "qkv"] == [{"solid"}, {"dash"}, {"dot"}]
    q, k, v = (next(iter(ends[p])) for p in "qkv")
    assert q[1] > k[1] > v[1]  # q upper, k middle, v lower
    assert port_anchor((1.0, 0.0), "") == (1.0, 0.0)  # MLP / output edges end on the node


def test_node_trace_carries_node_names_for_click_through():
    circuit = toy_circuit()
    nodes = circuit.plot().data[-1]
    assert nodes.meta == "nodes"
    assert set(circuit.kept_nodes) <= set(nodes.customdata)
    assert set(nodes.customdata) <= set(circuit.kept_nodes)  # port anchors name their head
    assert "triangle-right" in nodes.marker.symbol


CURVE = pd.DataFrame(
    {
        "n_edges": [0, 5, 10, 20, 40],
        "faithfulness": [0.0, 0.4, 0.7, 0.9, 1.0],
        "faithfulness_low": [0.0, 0.3, 0.6, 0.8, 0.95],
        "faithfulness_high": [0.0, 0.5, 0.8, 0.97, 1.0],
    }
)


def test_curve_marks_the_current_cut_and_draws_the_band():
    fig = curve_figure(CURVE, 12, {"ci_level": 0.95, "n_boot": 200})
    assert list(fig.data[0].y) == list(CURVE["faithfulness"])  # the line stays first
    assert [t.fill for t in fig.data].count("tonexty") == 1
    assert "95% bootstrap, B=200" in fig.layout.title.text
    marker = [t for t in fig.data if t.meta == "cut"]
    assert len(marker) == 1 and list(marker[0].x) == [10] and list(marker[0].y) == [0.7]
    assert [s.x0 for s in fig.layout.shapes] == [12]
    assert curve_figure(CURVE).layout.shapes == ()  # no cut, no marker


def test_cut_text_gives_the_interval_at_the_cut():
    text = cut_text(CURVE, 25, {"ci_level": 0.9, "n_boot": 50})
    assert "top 20 edges: 0.900 [0.800, 0.970] (90% bootstrap, B=50)" in text
    assert "no faithfulness curve" in cut_text(None, 3, {})
