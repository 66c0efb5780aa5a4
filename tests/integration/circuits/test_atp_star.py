"""AtP* (circuits.atp_star) against independent recomputations on the zoo models.

The QK fix is checked against the model's own forward pass: the pattern the model computes
with a node's (or an edge's) keys/queries patched, times the gradient of the metric with
respect to the pattern read off the model's own autograd, must equal AtP*'s estimate. Plain
AtP at edge level must equal EAP; GradDrop on last-layer nodes must reduce to the mean of
per-prompt |AtP|; on tiny-ioi (logit-difference metric, nearly linear after the pattern) the
QK fix must bring the layer-1 key nodes closer to exact patching than plain AtP.
"""

from __future__ import annotations

import pytest
import torch

import circuits
from circuits.atp_star import atp_star, atp_star_nodes, node_patching_reference
from circuits.edge_patching import EdgePatcher
from circuits.task_batches import task_slice


def _pattern_grad(model, task, layer: int) -> torch.Tensor:
    """d (summed metric) / d pattern `[batch, head, query, key]` from the model's autograd."""
    store = {}

    def hook(pattern, *, hook):
        store["probe"] = torch.zeros_like(pattern, requires_grad=True)
        return pattern + store["probe"]

    with torch.enable_grad(), model.intervene({f"blocks.{layer}.attn.hook_pattern": hook}):
        value = task.metric(model(task.clean_tokens)).sum()
        (grad,) = torch.autograd.grad(value, store["probe"])
    return grad


def _patched_pattern(model, tokens, layer: int, hooks: dict) -> torch.Tensor:
    captured = {}

    def capture(pattern, *, hook):
        captured["p"] = pattern.detach().clone()

    with model.intervene({**hooks, f"blocks.{layer}.attn.hook_pattern": capture}):
        model(tokens)
    return captured["p"]


@pytest.fixture(scope="module")
def induction_nodes(induction):
    model, task = induction
    return atp_star_nodes(model, task, qk_fix=True, grad_drop=False).set_index("node").score


@pytest.mark.parametrize(
    ("node", "kind", "index", "heads"), [("L1H2<k>", "k", 2, [4, 5]), ("L1H5<q>", "q", 5, [5])]
)
def test_qk_fix_node_is_the_exact_pattern_change_times_the_pattern_gradient(
    induction, induction_nodes, node, kind, index, heads
):
    model, task = induction  # Llama: RoPE, 8 query heads on 4 kv heads
    name = f"blocks.1.attn.hook_{kind}"
    _, cache = model.run_with_cache(task.corrupted_tokens, names=[name])

    def patch(act, *, hook):
        act = act.clone()
        act[:, :, index] = cache[name][:, :, index]
        return act

    clean = _patched_pattern(model, task.clean_tokens, 1, {})
    patched = _patched_pattern(model, task.clean_tokens, 1, {name: patch})
    assert (patched - clean).abs().max() > 0.5  # the patch moves a saturated pattern
    grad = _pattern_grad(model, task, 1)
    expected = ((patched - clean) * grad)[:, heads].sum().item() / task.n_prompts
    assert induction_nodes[node] == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_qk_fix_edge_is_the_exact_pattern_change_times_the_pattern_gradient(induction):
    model, task = induction
    circuit = atp_star(model, task, qk_fix=True, grad_drop=False)
    edge = "L0H3->L1H1<k>"  # the previous-token head into kv head 1 (query heads 2, 3)
    graph = circuits.build_graph(model)
    patcher = EdgePatcher(model, graph)
    weights = torch.zeros(graph.n_edges)
    weights[graph.edge_index[edge]] = 1.0
    source = patcher.writer_outputs(task.corrupted_tokens)
    captured = {}

    def capture(pattern, *, hook):
        captured["p"] = pattern.detach().clone()

    with model.intervene({"blocks.1.attn.hook_pattern": capture}):
        patcher.forward(task.clean_tokens, weights, source)
    clean = _patched_pattern(model, task.clean_tokens, 1, {})
    grad = _pattern_grad(model, task, 1)
    expected = ((captured["p"] - clean) * grad)[:, 2:4].sum().item() / task.n_prompts
    got = circuit.scores[graph.edge_index[edge]].item()
    assert abs(expected) > 1e-3
    assert got == pytest.approx(expected, rel=1e-4)


def test_plain_atp_edges_are_eap(induction):
    model, task = induction
    plain = atp_star(model, task, qk_fix=False, grad_drop=False)
    eap = circuits.eap(model, task)
    assert plain.method == "atp"
    assert torch.allclose(plain.scores, eap.scores, atol=1e-5 * eap.scores.abs().max().item())


def test_grad_drop_on_last_layer_nodes_is_mean_absolute_atp(induction):
    model, task = induction
    star = atp_star_nodes(model, task).set_index("node").score
    per_prompt = [
        atp_star_nodes(model, task_slice(task, i, i + 1), grad_drop=False).set_index("node").score
        for i in range(task.n_prompts)
    ]
    mean_abs = sum(s.abs() for s in per_prompt) / task.n_prompts
    last = [n for n in star.index if n.startswith("L1H") or n == "MLP1"]
    assert torch.allclose(
        torch.tensor(star[last].to_numpy()), torch.tensor(mean_abs[last].to_numpy()), atol=1e-5
    )
    # a layer-0 node is scored only through what survives dropping layer 1: the direct path
    assert star["L0H3<q>"] == 0.0  # its query rows read unchanged tokens; no direct effect


def test_qk_fix_brings_key_nodes_closer_to_exact_patching(ioi):
    model, task = ioi  # logit difference: linear in the logits
    exact = node_patching_reference(model, task).set_index("node").score
    plain = atp_star_nodes(model, task, qk_fix=False, grad_drop=False).set_index("node").score
    fixed = atp_star_nodes(model, task, qk_fix=True, grad_drop=False).set_index("node").score
    keys = [n for n in exact.index if n.startswith("L1") and n.endswith("<k>")]
    err_plain = (exact[keys] - plain[keys]).abs().sum()
    err_fixed = (exact[keys] - fixed[keys]).abs().sum()
    assert err_fixed < 0.75 * err_plain
    values = [n for n in exact.index if n.endswith("<v>")]  # value nodes: plain AtP either way
    assert (plain[values] == fixed[values]).all()


def test_trace_registers_atp_star(ioi):
    model, task = ioi
    circuit = circuits.trace(model, task, method="atp*", top_n=10)
    assert circuit.method == "atp*"
    assert (circuit.scores >= 0).all()  # GradDrop sums magnitudes
    assert circuit.n_edges <= 10
    nodes = circuit.config["node_scores"]
    assert set(nodes) == {p.name for p in circuits.build_graph(model).ports if p.kind != "output"}
    assert (circuit.config["n_forward"], circuit.config["n_backward"]) == (6 + 2, 2)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"qk_fix": "yes"}, "qk_fix, grad_drop: need True or False"),
        ({"grad_drop": 1}, "qk_fix, grad_drop: need True or False"),
        ({"batch_size": 0}, "batch_size: need at least 1"),
        ({"ig_steps": 3}, "not accepted by method 'atp\\*'"),
    ],
)
def test_bad_options_are_refused(ioi, options, message):
    model, task = ioi
    with pytest.raises(ValueError, match=message):
        circuits.trace(model, task, method="atp*", **options)


def test_encoder_is_refused(zoo_model):
    from workbench.tasks import make_task

    model = zoo_model("minilm")
    task = make_task("similarity", model, n=2)
    with pytest.raises(ValueError, match="atp\\* reads the logits|needs a pre-LN decoder"):
        atp_star(model, task)
