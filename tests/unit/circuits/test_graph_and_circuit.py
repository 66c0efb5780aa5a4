"""Unit tests for the graph, `Circuit` (prune, frame, JSON, plot) and ROC/AUC (no models)."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score

from circuits.circuit import Circuit
from circuits.evaluation import roc, roc_auc, roc_curve
from circuits.evaluation_results import RocResult
from circuits.graph import Graph
from workbench.results import Result


def make_graph(n_layers=2, n_heads=4, n_kv=4, mlp=True) -> Graph:
    return Graph("toy", n_layers, n_heads, n_kv, mlp, True, None)


def edge_count(n_layers, n_heads, n_kv, mlp=True):
    """Closed-form edge count of the ACDC graph (independent of `Graph`)."""
    total = 0
    for layer in range(n_layers):
        upstream_attn = 1 + layer * (n_heads + mlp)
        total += (n_heads + 2 * n_kv) * upstream_attn
        if mlp:
            total += upstream_attn + n_heads
    return total + 1 + n_layers * (n_heads + mlp)


@pytest.mark.parametrize(
    "shape", [(2, 4, 4, True), (2, 8, 4, True), (3, 6, 2, False), (1, 1, 1, True)]
)
def test_edge_count_matches_closed_form(shape):
    graph = make_graph(*shape)
    assert graph.n_edges == edge_count(*shape)
    assert len(set(graph.edge_labels)) == graph.n_edges


def test_tiny_ioi_graph_has_110_edges_and_kv_ports_per_kv_head():
    assert make_graph().n_edges == 110
    gqa = make_graph(2, 8, 4)
    ports = [p.name for p in gqa.ports if p.layer == 1]
    assert "L1H7<q>" in ports and "L1H3<k>" in ports and "L1H4<k>" not in ports
    assert gqa.n_edges == 222


def test_upstream_respects_layer_order():
    graph = make_graph()
    port = next(p for p in graph.ports if p.name == "MLP0")
    assert graph.upstream_of(port) == ["input", "L0H0", "L0H1", "L0H2", "L0H3"]
    port = next(p for p in graph.ports if p.name == "L1H2<v>")
    assert "MLP0" in graph.upstream_of(port) and "L1H0" not in graph.upstream_of(port)


def make_circuit(scores) -> Circuit:
    graph = make_graph()
    return Circuit.from_scores(graph, task="ioi", method="test", scores=torch.as_tensor(scores))


def test_prune_top_n_and_threshold():
    scores = torch.linspace(-1, 1, 110, dtype=torch.float64)
    circuit = make_circuit(scores)
    top = circuit.prune(top_n=3, connected=False)
    assert top.n_edges == 3
    assert set(top.kept_edges) == {circuit.edges[i] for i in (0, 109, 1)}
    kept = circuit.prune(threshold=0.9, connected=False)
    assert kept.n_edges == int((scores.abs() >= 0.9).sum())
    with pytest.raises(ValueError, match="top_n"):
        circuit.prune(top_n=111)
    with pytest.raises(ValueError, match="exactly one"):
        circuit.prune()


def test_json_round_trip_is_exact_including_labels():
    gen = torch.Generator().manual_seed(0)
    circuit = make_circuit(torch.randn(110, generator=gen, dtype=torch.float64)).prune(top_n=7)
    back = Circuit.from_json(circuit.to_json())
    assert back.edges == circuit.edges and back.nodes == circuit.nodes
    assert torch.equal(back.scores, circuit.scores)
    assert torch.equal(back.included, circuit.included)
    assert back.config == circuit.config and back.method == "test"
    assert back.to_frame().equals(circuit.to_frame())


def test_frame_and_plot():
    circuit = make_circuit(torch.arange(110, dtype=torch.float64)).prune(top_n=5, connected=False)
    frame = circuit.to_frame()
    assert frame.in_circuit.sum() == 5
    assert frame.loc[frame["rank"] == 0, "edge"].item() == circuit.edges[109]
    fig = circuit.plot()
    assert len(fig.data) == 5 + 1  # one line per kept edge, one node trace
    hovers = [trace.hovertext for trace in fig.data[:-1]]
    assert all(len(trace.x) >= 3 for trace in fig.data[:-1])  # hoverable mid-line
    assert any(circuit.edges[109] in text for text in hovers)
    assert fig.layout.height >= 380


def test_plot_places_every_node_label_apart_with_heads_in_order():
    circuit = make_circuit(torch.arange(110, dtype=torch.float64))  # every edge kept
    fig = circuit.plot()
    labels = {a.text: (a.x, a.y) for a in fig.layout.annotations}
    assert set(labels) == set(circuit.kept_nodes) and len(labels) == 4 + 1 + 4 + 1 + 2
    assert len(set(labels.values())) == len(labels)  # no two labels at the same spot
    column = sorted((y, name) for name, (x, y) in labels.items() if name.startswith("L1H"))
    assert [name for _, name in column] == ["L1H3", "L1H2", "L1H1", "L1H0"]  # head 0 on top
    assert labels["input"][0] < labels["L0H0"][0] < labels["MLP0"][0] < labels["output"][0]
    taller = Circuit.from_scores(
        make_graph(2, 12, 12),
        task="ioi",
        method="test",
        scores=torch.ones(make_graph(2, 12, 12).n_edges),
    ).plot()
    assert taller.layout.height > fig.layout.height  # height grows with the tallest column
    assert set(circuit.kept_nodes) <= set(circuit.nodes) | {"L1H0", "L1H1", "L1H2", "L1H3"}


def test_roc_auc_matches_sklearn():
    gen = torch.Generator().manual_seed(1)
    scores = torch.randn(110, generator=gen, dtype=torch.float64)
    scores[::7] = scores[3]  # ties
    reference = torch.rand(110, generator=gen) > 0.6
    expected = roc_auc_score(reference.numpy(), scores.abs().numpy())
    found = roc(scores, reference)
    assert isinstance(found, RocResult) and found.kind == "roc"
    assert found.auc == pytest.approx(expected, abs=1e-12)
    curve = found.to_frame()
    assert list(curve.columns) == ["n_edges", "fpr", "tpr"] and len(curve) == 111
    assert curve.tpr.iloc[-1] == 1.0 and curve.fpr.iloc[-1] == 1.0
    same = Result.from_json(found.to_json())
    assert same.auc == found.auc and same.to_frame().equals(curve)
    assert found.plot().data[0].x.tolist() == curve.fpr.tolist()


def test_roc_auc_and_roc_curve_are_deprecated_aliases():
    scores = torch.arange(10, dtype=torch.float64)
    reference = scores > 6
    with pytest.warns(DeprecationWarning, match="roc"):
        assert roc_auc(scores, reference) == roc(scores, reference).auc == 1.0
    with pytest.warns(DeprecationWarning, match="roc"):
        assert roc_curve(scores, reference).equals(roc(scores, reference).to_frame())


def test_roc_rejects_one_class_reference():
    with pytest.raises(ValueError, match="reference"):
        roc(torch.ones(110), torch.ones(110, dtype=torch.bool))


@pytest.mark.parametrize(
    ("name", "kind", "layer", "head"),
    [
        ("input", "input", -1, -1),
        ("output", "output", -1, -1),
        ("L1H2", "head", 1, 2),
        ("L1H2<k>", "head", 1, 2),
        ("MLP0", "mlp", 0, -1),
        ("a1.2", "head", 1, 2),  # the names written before L1H2
        ("m3", "mlp", 3, -1),
    ],
)
def test_node_names_read_back(name, kind, layer, head):
    from circuits.graph import NodeName, parse_node

    assert parse_node(name) == NodeName(kind, layer, head)


@pytest.mark.parametrize("name", ["", "L1", "mlp", "x0", "L1H2H3"])
def test_unknown_node_names_are_refused(name):
    from circuits.graph import parse_node

    with pytest.raises(ValueError, match="is not a node of the circuit graph"):
        parse_node(name)


def test_circuits_saved_with_the_older_node_names_load_with_todays():
    from circuits.graph import modern_label

    circuit = make_circuit(torch.arange(110, dtype=torch.float64))
    old = circuit.to_json().replace("L0H", "a0.").replace("L1H", "a1.").replace("MLP", "m")
    assert "a0.1" in old and "L0H1" not in old
    back = Circuit.from_json(old)
    assert back.edges == circuit.edges and back.nodes == circuit.nodes
    assert modern_label("a0.1->a1.3<k>") == "L0H1->L1H3<k>"
    assert modern_label("m0->output") == "MLP0->output"
