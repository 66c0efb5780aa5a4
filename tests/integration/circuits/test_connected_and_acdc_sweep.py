"""Connected pruning, the smallest faithful circuit and the ACDC tau sweep on real models
(tiny-ioi and the planted-induction zoo model, whose true edges are known by construction)."""

from __future__ import annotations

import math

import pytest
import torch

from circuits import (
    acdc,
    acdc_sweep_roc,
    acdc_tau_sweep,
    build_graph,
    exhaustive_patching,
    faithfulness,
    reference_circuit,
    roc,
    smallest_faithful_circuit,
    trace,
)
from tests.unit.circuits.test_connected_pruning import paths_ok


@pytest.fixture(scope="module")
def planted(zoo_model):
    from workbench.tasks import make_task
    from workbench.zoo import ZOO

    model = zoo_model("planted-induction")
    card = ZOO["planted-induction"].card()
    graph = build_graph(model)
    truth = torch.zeros(graph.n_edges, dtype=torch.bool)
    truth[[graph.edge_index[e] for e in card["true_edges"]]] = True
    return model, make_task(card["task"], model, n=8, seed=0), truth


@pytest.fixture(scope="module")
def ioi_eap(ioi):
    model, task = ioi
    return trace(model, task, method="eap")


def test_eap_top_22_is_disconnected_but_the_connected_prune_is_faithful(ioi, ioi_eap):
    model, task = ioi
    plain = ioi_eap.prune(top_n=22, connected=False)
    assert not any(e.startswith("input->") for e in plain.kept_edges)
    assert abs(faithfulness(model, task, plain).faithfulness) < 1e-3  # nothing reaches input
    joined = ioi_eap.prune(top_n=22)
    assert 0 < joined.n_edges <= 22 and paths_ok(joined)
    assert faithfulness(model, task, joined).faithfulness > 0.02  # measured 0.12
    by_trace = trace(model, task, method="eap", top_n=22)
    assert by_trace.kept_edges == joined.kept_edges
    for fraction in (0.05, 0.2, 0.5):  # the dashboard slider's pruning
        assert paths_ok(ioi_eap.prune(threshold=fraction * float(ioi_eap.scores.abs().max())))


def test_planted_connected_prune_finds_the_true_edges(planted):
    model, task, truth = planted
    circuit = trace(model, task, method="eap").prune(top_n=int(truth.sum()))
    assert torch.equal(circuit.included, truth) and paths_ok(circuit)
    assert faithfulness(model, task, circuit).faithfulness == pytest.approx(1.0, abs=1e-3)


def test_smallest_faithful_circuit_is_a_bisection_boundary(ioi, ioi_eap):
    model, task = ioi
    found = smallest_faithful_circuit(model, task, ioi_eap, target=0.8)
    assert found["reached"] and found["faithfulness"] >= 0.8
    best = ioi_eap.prune(top_n=found["top_n"])
    assert found["edges"] == best.kept_edges and found["n_edges"] == best.n_edges
    below = [r for r in found["evaluations"] if r["top_n"] == found["top_n"] - 1]
    assert below and below[0]["faithfulness"] < 0.8  # one edge fewer misses the target
    assert faithfulness(model, task, best).faithfulness == pytest.approx(found["faithfulness"])
    assert found["n_forward"] == 2 + 2 * found["n_evaluations"]  # 8 prompts: one batch
    assert found["n_evaluations"] <= 2 * math.ceil(math.log2(110)) + 1


@pytest.mark.parametrize("target", [0, -0.5, 1.5, float("nan"), True, "0.8"])
def test_smallest_faithful_circuit_rejects_bad_targets(ioi, ioi_eap, target):
    model, task = ioi
    with pytest.raises(ValueError, match="target"):
        smallest_faithful_circuit(model, task, ioi_eap, target=target)


def _kept_rank_first(circuit) -> None:
    kept, removed = circuit.scores[circuit.included].abs(), circuit.scores[~circuit.included].abs()
    assert kept.min() > removed.max()
    assert removed.max() < circuit.config["threshold"] <= kept.min()
    top = set(circuit.ranking()[: circuit.n_edges].tolist())
    assert top == set(circuit.included.nonzero().flatten().tolist())


def test_acdc_kept_edges_rank_above_removed_ones_on_tiny_ioi(ioi):
    model, task = ioi
    _kept_rank_first(acdc(model, task, threshold=0.05, distance="metric"))


def test_acdc_kept_edges_rank_above_removed_ones_on_planted(planted):
    model, task, truth = planted
    circuit = acdc(model, task, threshold=0.01)
    _kept_rank_first(circuit)
    assert torch.equal(circuit.included, truth)


def test_acdc_tau_sweep_roc_is_monotone_in_tau(ioi):
    model, task = ioi
    truth = exhaustive_patching(model, task)
    reference = reference_circuit(truth, gap=task.summary(model)["gap"], share=0.01)
    taus = [0.5, 0.02, 0.1]
    sweep = acdc_tau_sweep(model, task, taus, distance="metric", reference=reference)
    assert sweep.config["taus"] == sorted(taus)
    assert sweep.config["n_forward"] == 3 * (2 + len(sweep.edges))
    for run in sweep.config["runs"]:  # every run's circuit is inside the sweep's at its tau
        assert all(sweep.scores[sweep.edges.index(e)] >= run["tau"] for e in run["kept_edges"])
        assert 0 <= run["fpr"] <= 1 and 0 <= run["tpr"] <= 1
    curve = acdc_sweep_roc(sweep, reference)
    assert list(curve.tau) == sorted(taus)
    for column in ("n_edges", "fpr", "tpr"):
        assert curve[column].is_monotonic_decreasing, column
    assert curve.n_edges.iloc[0] == sweep.n_edges > curve.n_edges.iloc[-1]
    assert roc(sweep, reference).auc > 0.8  # measured 0.93


def test_acdc_tau_sweep_on_planted_recovers_the_true_edges(planted):
    model, task, truth = planted
    sweep = acdc_tau_sweep(model, task, [0.01, 1.0], reference=truth)
    curve = acdc_sweep_roc(sweep, truth)
    assert (curve.tpr == 1.0).all() and (curve.fpr == 0.0).all()
    assert roc(sweep, truth).auc == 1.0


@pytest.mark.parametrize(
    ("taus", "match"), [([], "taus"), ([0.0, 0.1], "taus"), ([-1], "taus"), (["x"], "taus")]
)
def test_acdc_tau_sweep_rejects_bad_taus(ioi, taus, match):
    model, task = ioi
    with pytest.raises(ValueError, match=match):
        acdc_tau_sweep(model, task, taus, distance="metric")


def test_acdc_sweep_roc_needs_a_sweep(ioi_eap):
    with pytest.raises(ValueError, match="acdc_tau_sweep"):
        acdc_sweep_roc(ioi_eap, ioi_eap.prune(top_n=10))


@pytest.mark.slow
def test_cli_reports_the_smallest_faithful_circuit():
    import json

    from tests.cli_helpers import run_cli

    argv = ["circuit", "tiny-ioi", "ioi", "--method", "eap-ig", "--n", "8", "--seed", "3"]
    done = run_cli(*argv, "--target-faithfulness", "0.8", "--json")
    assert done.returncode == 0, done.stderr
    best = json.loads(done.stdout)["smallest_faithful"]
    assert best["reached"] and best["faithfulness"] >= 0.8 and best["target"] == 0.8
    assert best["n_edges"] == len(best["edges"]) < 110
