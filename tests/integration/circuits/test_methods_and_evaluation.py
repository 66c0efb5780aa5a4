"""ACDC, faithfulness/completeness, the `trace` entry point, encoders, and the CLI."""

from __future__ import annotations

import pytest
import torch

from circuits import (
    Circuit,
    acdc,
    activation_patching,
    build_graph,
    completeness,
    exhaustive_patching,
    faithfulness,
    faithfulness_curve,
    reference_circuit,
    roc,
    trace,
)
from circuits.evaluation_results import (
    CompletenessResult,
    FaithfulnessCurve,
    FaithfulnessResult,
)
from tests.cli_helpers import run_cli
from workbench.results import Result


def test_faithfulness_of_full_and_empty_circuits(ioi):
    model, task = ioi
    full = trace(model, task, method="eap")
    found = faithfulness(model, task, full)
    assert isinstance(found, FaithfulnessResult) and found.model_name == model.name
    assert found.faithfulness == pytest.approx(1.0, abs=1e-6) and found.n_edges == 110
    empty = full.prune(top_n=0)
    assert faithfulness(model, task, empty).faithfulness == pytest.approx(0.0, abs=1e-4)
    kept = completeness(model, task, full)
    assert isinstance(kept, CompletenessResult) and kept.task == task.name
    assert kept.completeness == pytest.approx(1.0, abs=1e-4)
    curve = faithfulness_curve(model, task, full, sizes=[0, 55, 110])
    assert isinstance(curve, FaithfulnessCurve)
    assert curve.to_frame().faithfulness.iloc[-1] == pytest.approx(1.0, abs=1e-6)
    assert list(curve.to_frame().n_edges) == [0, 55, 110]
    for result in (found, kept, curve):
        same = Result.from_json(result.to_json())
        assert type(same) is type(result) and same.to_frame().equals(result.to_frame())


def test_faithfulness_result_keeps_the_old_dict_keys_for_one_release(ioi):
    model, task = ioi
    found = faithfulness(
        model, task, trace(model, task, method="eap").prune(top_n=20, connected=False)
    )
    with pytest.warns(DeprecationWarning, match=r"\.faithfulness"):
        assert found["faithfulness"] == found.faithfulness
    with pytest.warns(DeprecationWarning):
        assert found["edge_share"] == pytest.approx(20 / 110)
    with pytest.raises(KeyError):
        found["no_such_key"]


def test_acdc_thresholds_bracket_the_graph(ioi):
    model, task = ioi
    keep_all = acdc(model, task, threshold=0.0, distance="metric")
    assert keep_all.n_edges > 0
    drop_all = acdc(model, task, threshold=1e9)
    assert drop_all.n_edges == 0
    assert keep_all.config["n_forward"] == 2 + len(keep_all.edges)


@pytest.mark.slow
def test_eap_ig_ranks_exhaustive_reference_well(ioi):
    model, task = ioi
    truth = exhaustive_patching(model, task)
    reference = reference_circuit(truth, gap=task.summary(model)["gap"], share=0.01)
    assert roc(truth, reference).auc == 1.0  # the reference is a threshold on these scores
    assert roc(trace(model, task, method="eap-ig", ig_steps=5), reference).auc > 0.85


def test_trace_rejects_unknown_method_and_options(ioi):
    model, task = ioi
    with pytest.raises(ValueError, match="method"):
        trace(model, task, method="magic")
    with pytest.raises(ValueError, match="options"):
        trace(model, task, method="eap", ig_steps=3)
    pruned = trace(model, task, method="eap", top_n=5)
    assert isinstance(pruned, Circuit) and pruned.n_edges == 5


@pytest.mark.slow
def test_minilm_node_and_frozen_ln_edge_patching(zoo_model):
    from circuits.edge_patching import EdgePatcher
    from workbench.tasks import make_task

    model = zoo_model("minilm")
    task = make_task("similarity", model, n=3)
    circuit = activation_patching(model, task, ablation="resample")
    assert circuit.node_scores.shape == (1 + 6 * 13 + 1,)
    assert circuit.node_scores.isfinite().all() and circuit.node_scores[-1] < 0
    patcher = EdgePatcher(model, build_graph(model, readout=task.readout))
    source = patcher.writer_outputs(task.corrupted_tokens)
    n = patcher.graph.n_edges
    with torch.no_grad():
        none = task.metric(patcher.forward(task.clean_tokens, torch.zeros(n), source))
        every = task.metric(patcher.forward(task.clean_tokens, torch.ones(n), source))
    assert torch.equal(none, task.evaluate(model))  # exact: nothing patched
    # frozen-LN linearisation: close to, not equal to, the corrupted run (measured 4e-3)
    torch.testing.assert_close(every, task.evaluate(model, corrupted=True), atol=2e-2, rtol=0)
    scores = trace(model, task, method="eap").scores
    assert scores.isfinite().all() and (scores != 0).any()
    with pytest.raises(ValueError, match="kl"):
        acdc(model, task, distance="kl")


@pytest.mark.slow
def test_cli_circuit_then_faithfulness(tmp_path):
    import json

    out = tmp_path / "c.json"
    done = run_cli(
        "circuit",
        "tiny-ioi",
        "ioi",
        "--method",
        "eap",
        "--top-n",
        "20",
        "--n",
        "4",
        "--json",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["n_edges"] == 20 and len(payload["top_edges"]) == 10
    assert Circuit.from_json(out.read_text()).n_edges == 20
    done = run_cli("faithfulness", "tiny-ioi", "ioi", "--circuit", str(out), "--n", "4", "--json")
    assert done.returncode == 0, done.stderr
    assert 0.0 <= json.loads(done.stdout)["edge_share"] <= 0.2


@pytest.mark.parametrize(
    "args, needle",
    [
        (["circuit", "tiny-ioi", "nosuchtask"], "task"),
        (["circuit", "tiny-ioi", "ioi", "--method", "nope"], "--method"),
        (["circuit", "no-such-model", "ioi"], "model"),
        (["faithfulness", "tiny-ioi", "ioi", "--circuit", "/nonexistent.json"], "--circuit"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(args, needle):
    done = run_cli(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]


def test_scores_are_float64_on_cpu(induction):
    model, task = induction
    circuit = trace(model, task, method="eap")
    assert circuit.scores.dtype == torch.float64 and circuit.scores.device.type == "cpu"


@pytest.mark.slow
def test_svd_tracing_finds_k_composition_from_the_previous_token_head(induction):
    from circuits.svd_tracing import svd_tracing

    model, task = induction  # L0H3 is tiny-induction's previous-token head (score 0.95)
    circuit = svd_tracing(model, task, n_prompts=2)
    assert circuit.method == "svd" and "L1H0" in circuit.config["traced_heads"]
    frame = circuit.to_frame()
    for kv in range(4):
        into = frame[frame.port == f"L1H{kv}<k>"]
        top = into.loc[into.abs_score.idxmax()]
        assert top.upstream == "L0H3", (kv, top.edge)
    assert (frame[frame.port.str.endswith("<v>")].score != 0).any()  # value paths are traced
