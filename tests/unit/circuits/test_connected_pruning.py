"""Unit tests for connected pruning (`circuits.connected`, `Circuit.prune(connected=...)`) on
hand-made scores over the toy graph (2 layers, 4 heads, MLPs; no models)."""

from __future__ import annotations

import pytest
import torch

from circuits.circuit import Circuit
from circuits.connected import greedy_from_output, on_paths, port_readers
from circuits.graph import Graph

GRAPH = Graph("toy", 2, 4, 4, True, True, None)
PICKED = {  # a chain output <- a1.0 <- a0.0 <- input, a dead end, a short cut from input
    "L1H0->output": 5.0,
    "L0H0->MLP1": -4.0,  # m1 never reaches the output: a dead end
    "L0H0->L1H0<q>": 3.0,
    "input->L0H0<v>": 2.0,
    "input->L1H0<k>": -1.0,
}


def toy_circuit(scores: dict[str, float] = PICKED) -> Circuit:
    values = torch.zeros(GRAPH.n_edges, dtype=torch.float64)
    for label, score in scores.items():
        values[GRAPH.edge_index[label]] = score
    return Circuit.from_scores(GRAPH, task="toy", method="hand", scores=values)


def paths_ok(circuit: Circuit) -> bool:
    """Independent check: every kept edge u->port lies on an input -> output path."""
    kept = [label.split("->") for label in circuit.kept_edges]
    node = {port: port.split("<")[0] for _, port in kept}  # MHA: a port's node is its head

    def reaches(start: str, target: str, forward: bool) -> bool:
        frontier, seen = [start], {start}
        while frontier:
            here = frontier.pop()
            if here == target:
                return True
            for up, port in kept:
                a, b = (up, node[port]) if forward else (node[port], up)
                if a == here and b not in seen:
                    seen.add(b)
                    frontier.append(b)
        return False

    return all(
        reaches("input", up, True) and reaches(node[port], "output", True) for up, port in kept
    )


def test_top_n_without_connectivity_is_disconnected_and_connected_is_not():
    circuit = toy_circuit()
    plain = circuit.prune(top_n=3, connected=False)
    assert set(plain.kept_edges) == {"L1H0->output", "L0H0->MLP1", "L0H0->L1H0<q>"}
    assert not paths_ok(plain)  # no edge from input at all
    joined = circuit.prune(top_n=3)
    assert set(joined.kept_edges) == {"L1H0->output", "L0H0->L1H0<q>", "input->L0H0<v>"}
    assert paths_ok(joined)
    assert joined.config["pruned"] == {"top_n": 3, "threshold": None, "connected": True}


def test_top_n_skips_an_edge_that_would_overshoot():
    # top 2: input->a0.0<v> would complete a 3-edge path, so the short cut is taken instead
    pruned = toy_circuit().prune(top_n=2)
    assert set(pruned.kept_edges) == {"L1H0->output", "input->L1H0<k>"}
    assert paths_ok(pruned)


def test_threshold_is_greedy_from_the_output_then_cut_to_paths():
    circuit = toy_circuit()
    assert circuit.prune(threshold=2.5).n_edges == 0  # the chain never reaches input
    assert set(circuit.prune(threshold=1.5).kept_edges) == {
        "L1H0->output",
        "L0H0->L1H0<q>",
        "input->L0H0<v>",
    }
    assert circuit.prune(threshold=1.5, connected=False).n_edges == 4  # with the dead end


@pytest.mark.parametrize("seed", range(5))
def test_random_scores_give_connected_circuits_of_at_most_n_edges(seed):
    gen = torch.Generator().manual_seed(seed)
    circuit = Circuit.from_scores(
        GRAPH, task="toy", method="random", scores=torch.randn(GRAPH.n_edges, generator=gen)
    )
    for n in (0, 1, 5, 20, 60, GRAPH.n_edges):
        pruned = circuit.prune(top_n=n)
        assert pruned.n_edges <= n and paths_ok(pruned)
    assert circuit.prune(top_n=GRAPH.n_edges).n_edges == GRAPH.n_edges  # every edge is on a path


def test_on_paths_drops_dead_ends_on_both_sides():
    labels = GRAPH.edge_labels
    keep = torch.zeros(GRAPH.n_edges, dtype=torch.bool)
    keep[[GRAPH.edge_index[e] for e in ("input->L0H0<v>", "L0H0->MLP1", "L1H2->output")]] = True
    assert not on_paths(labels, keep).any()  # m1 reaches no output; a1.2 no input
    keep[GRAPH.edge_index["MLP1->output"]] = True
    kept = {labels[i] for i in on_paths(labels, keep).nonzero().flatten().tolist()}
    assert kept == {"input->L0H0<v>", "L0H0->MLP1", "MLP1->output"}


def test_kv_ports_belong_to_every_head_of_their_group():
    gqa = Graph("gqa", 2, 8, 4, True, True, None)
    readers = port_readers(gqa.edge_labels)
    assert readers["L1H1<k>"] == ("L1H2", "L1H3") and readers["L1H5<q>"] == ("L1H5",)
    assert readers["MLP0"] == ("MLP0",) and readers["output"] == ("output",)
    scores = torch.zeros(gqa.n_edges)
    scores[gqa.edge_index["L1H3->output"]] = 3.0  # a1.3 reads kv head 1
    scores[gqa.edge_index["input->L1H1<v>"]] = 2.0
    scores[gqa.edge_index["input->L1H3<v>"]] = 1.0  # kv head 3: read by a1.6, a1.7 only
    kept = greedy_from_output(gqa.edge_labels, scores, top_n=2)
    assert {gqa.edge_labels[i] for i in kept.nonzero().flatten().tolist()} == {
        "L1H3->output",
        "input->L1H1<v>",
    }
