"""The planted-truth benchmark (benchmarks/circuits_planted.py) at its smallest configuration:
EAP-IG on planted-induction, 8 prompts, 2 bootstrap resamples; scores against the card's true
edges, and tiny-induction's induction circuit from head scores."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "circuits_planted_bench", ROOT / "benchmarks" / "circuits_planted.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_eap_ig_recovers_planted_induction(bench):
    case = bench.bench_model("planted-induction", n=8, boot=2, boot_slow=2, methods=("eap-ig",))
    assert case["n_true_edges"] == 4
    assert case["truth_faithfulness"] == pytest.approx(1.0, abs=1e-3)
    row = case["methods"]["eap-ig"]
    assert row["auc"] == pytest.approx(1.0)
    assert row["precision_at_truth"] == row["recall_at_truth"] == 1.0
    assert row["n_bootstrap"] == 2
    lo, hi = row["intervals_95"]["auc"]
    assert lo <= hi <= 1.0
    small = row["smallest_connected_at_0.8"]
    assert small["reached"] and small["faithfulness"] >= 0.8
    assert small["precision"] >= 0.9 and small["n_edges"] == 4
    assert (row["n_forward"], row["n_backward"]) == (7, 5)  # 5 IG steps, one batch
    assert 0.3 < case["methods"]["random"]["auc"] < 0.7
    assert set(case["methods"]) == {"eap-ig", "random"}


def test_task_take_resamples_prompts(bench, zoo_model):
    from workbench.tasks import make_task

    model = zoo_model("tiny-ioi")
    task = make_task("ioi", model, n=4, seed=0)
    index = torch.tensor([2, 2, 0])
    sub = bench.task_take(task, index)
    assert sub.n_prompts == 3
    assert torch.equal(sub.clean_tokens, task.clean_tokens[index])
    assert torch.equal(sub.corrupted_tokens, task.corrupted_tokens[index])
    assert sub.clean_text == (task.clean_text[2], task.clean_text[2], task.clean_text[0])
    # the per-prompt metric follows its prompts (answer tokens and positions resampled too)
    assert torch.allclose(sub.evaluate(model), task.evaluate(model)[index], atol=1e-5)


def test_known_induction_circuit_from_head_scores(bench, zoo_model):
    import circuits

    model = zoo_model("tiny-induction")
    known = bench.known_induction_circuit(model)
    assert known["previous_token_heads"] == ["L0H3"]  # score 0.96; every other head < 0.11
    assert len(known["induction_heads"]) >= 1
    labels = set(circuits.build_graph(model).edge_labels)
    assert set(known["true_edges"]) <= labels
    assert "input->L0H1<v>" in known["true_edges"]  # head 3 reads kv head 3 // 2 = 1


def test_unknown_method_is_rejected(bench):
    with pytest.raises(ValueError, match="methods: unknown"):
        bench.bench_model("planted-induction", n=4, boot=0, boot_slow=0, methods=("bogus",))


@pytest.mark.slow  # exhaustive patching of planted-lookup's 264 edges (the diagnosis needs it)
def test_atp_star_row_and_truth_diagnosis_on_planted_lookup(bench):
    """AtP*'s edge variant is benchmarked like the others, and the diagnosis proves the lookup
    truth is complete (no edge outside it moves the metric) and every true edge is needed."""
    case = bench.bench_model("planted-lookup", n=4, boot=0, boot_slow=0, methods=("atp*",))
    row = case["methods"]["atp*"]
    assert row["n_bootstrap"] == 0 and row["intervals_95"] == {}
    assert 0.5 < row["auc"] <= 1.0
    assert set(row["true_edge_ranks"]) == set(case["true_edges"])
    assert row["true_edge_ranks"]["L2H0->output"] < 6  # the readout edge ranks high
    diagnosis = case["diagnosis"]
    assert diagnosis["max_single_edge_share_outside_truth"] < 1e-3
    assert max(diagnosis["faithfulness_without_edge"].values()) < 0.95  # each edge is needed
    assert case["config"] == {"n_prompts": 4, "boot": 0, "boot_slow": 0, "seed": 0}
