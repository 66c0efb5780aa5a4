"""The planted-circuit zoo models: their listed true edges really are the circuit.

For each `planted-*` model (weights set by construction, `workbench.zoo.planted`) and the task
its card names: the task is solved; with every edge *outside* the card's `true_edges` patched
to the corrupted run the metric is intact (faithfulness within 1e-3 of 1); with the true edges
patched it is gone; edges touching the distractors change nothing; every true edge matters on
its own except the redundant pair of `planted-redundant`, which matters only jointly. The
committed checkpoints equal a fresh build, and the CLI shows the card's true edges.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

import circuits
from tests.cli_helpers import run_cli
from workbench import ZOO, make_task
from workbench.zoo.planted import PLANTED, SPECS

N_PROMPTS = 16


def _mask(graph, labels) -> torch.Tensor:
    mask = torch.zeros(graph.n_edges, dtype=torch.bool)  # [edge]
    mask[[graph.edge_index[label] for label in labels]] = True
    return mask


@pytest.fixture(scope="module")
def planted(zoo_model):
    """name -> (model, task, graph, summary) with the task the card names."""
    cache = {}

    def get(name):
        if name not in cache:
            model = zoo_model(name)
            task = make_task(model.card["task"], model, n=N_PROMPTS, seed=7)
            graph = circuits.build_graph(model)
            cache[name] = (model, task, graph, task.summary(model))
        return cache[name]

    return get


def _share_lost(model, task, graph, summary, labels) -> float:
    """Share of the clean->corrupted gap lost when `labels` are patched to corrupted."""
    value = circuits.patched_metric(model, task, _mask(graph, labels))
    return (summary["clean"] - value) / summary["gap"]


def test_the_zoo_lists_every_planted_model_with_its_card():
    for name in PLANTED:
        card = ZOO[name].card()
        assert ZOO[name].is_available() and card["planted"] is True
        assert card["task"] == SPECS[name].task
        assert card["true_edges"] == list(SPECS[name].true_edges)


@pytest.mark.parametrize("name", PLANTED)
def test_the_planted_model_solves_its_task(name, planted):
    model, task, graph, summary = planted(name)
    assert set(model.card["true_edges"]) <= set(graph.edge_labels)
    assert summary["gap"] > 10.0  # nats of log-probability
    threshold = {"lookup": -0.01, "induction": -1.5}[task.name]
    assert summary["clean"] > threshold


@pytest.mark.parametrize("name", PLANTED)
def test_the_true_edges_alone_are_faithful(name, planted):
    model, task, graph, _ = planted(name)
    circuit = circuits.Circuit.from_scores(
        graph, task=task.name, method="planted", scores=torch.zeros(graph.n_edges)
    )
    kept = _mask(graph, model.card["true_edges"])
    circuit = dataclasses.replace(circuit, included=kept)
    result = circuits.faithfulness(model, task, circuit)
    assert result["n_edges"] == len(model.card["true_edges"])
    assert result["faithfulness"] == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("name", PLANTED)
def test_ablating_the_true_edges_removes_the_task(name, planted):
    model, task, graph, summary = planted(name)
    lost = _share_lost(model, task, graph, summary, model.card["true_edges"])
    assert lost == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("name", PLANTED)
def test_distractor_edges_are_off_circuit(name, planted):
    model, task, graph, summary = planted(name)
    distractors = set(model.card["distractors"])
    touching = [
        label
        for label in graph.edge_labels
        if label.split("->")[0] in distractors
        or graph.port_node(label.split("->")[1]) in distractors
    ]
    assert len(touching) > 20
    assert not set(touching) & set(model.card["true_edges"])
    assert abs(_share_lost(model, task, graph, summary, touching)) < 1e-3


@pytest.mark.parametrize("name", ["planted-induction", "planted-lookup", "planted-induction-llama"])
def test_every_true_edge_matters_on_its_own(name, planted):
    model, task, graph, summary = planted(name)
    for label in model.card["true_edges"]:
        assert _share_lost(model, task, graph, summary, [label]) > 0.2, label


def test_the_redundant_path_matters_only_jointly(planted):
    model, task, graph, summary = planted("planted-redundant")
    pair = model.card["notes"]["redundant_edges"]
    singles = [_share_lost(model, task, graph, summary, [label]) for label in pair]
    assert all(0 <= s < 0.3 for s in singles), singles
    assert _share_lost(model, task, graph, summary, pair) > 0.95
    assert sum(singles) < 0.6  # far below the joint effect: single-edge scores understate it


def test_the_lookup_circuit_uses_q_k_and_v_composition():
    composition = ZOO["planted-lookup"].card()["notes"]["composition"]
    true_edges = set(ZOO["planted-lookup"].card()["true_edges"])
    for kind, port in (("Q", "<q>"), ("K", "<k>"), ("V", "<v>")):
        assert composition[kind], kind
        for label in composition[kind]:
            upstream, target = label.split("->")
            assert label in true_edges and upstream.startswith("L") and target.endswith(port)


def test_committed_checkpoints_equal_a_fresh_build():
    from workbench.zoo.planted.build import compile_model

    for name in PLANTED:
        committed = load_file(str(ZOO[name].path() / "model.safetensors"))
        fresh = compile_model(SPECS[name]).state_dict()
        assert set(committed) <= set(fresh), name
        for key, tensor in committed.items():
            assert torch.equal(tensor, fresh[key]), f"{name} {key}"


def test_the_llama_variant_has_a_rotary_previous_token_head(planted):
    from workbench.zoo.planted.compile_llama import rope_margin

    model, task, _, _ = planted("planted-induction-llama")
    assert type(model.bridge.original_model).__name__ == "LlamaForCausalLM"
    assert rope_margin(SPECS["planted-induction-llama"]) > 0.3
    _, cache = model.run_with_cache(task.clean_tokens, names=["blocks.0.attn.hook_pattern"])
    pattern = cache["blocks.0.attn.hook_pattern"][:, 0]  # [batch, query, key]
    query = torch.arange(1, pattern.shape[1])
    assert pattern[:, query, query - 1].min() > 0.999


def test_cli_models_name_json_shows_the_true_edges():
    proc = run_cli("models", "planted-induction", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["task"] == "induction"
    assert info["true_edges"] == list(SPECS["planted-induction"].true_edges)
    assert "L0H0->L1H0<k>" in info["true_edges"]
