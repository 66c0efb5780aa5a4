"""Edge interventions against independent references: the model's own clean and corrupted
runs, single-edge path patching, TransformerLens' attribution patching and activation
patching."""

from __future__ import annotations

import pytest
import torch

from circuits import (
    activation_patching,
    eap,
    eap_ig,
    exhaustive_patching,
    path_patching,
)
from circuits.edge_patching import EdgePatcher

CASES = ["ioi", "induction", "random_gqa"]


@pytest.mark.parametrize("case", CASES)
def test_patching_no_edge_is_clean_and_every_edge_is_corrupted(case, request):
    model, task = request.getfixturevalue(case)
    patcher = EdgePatcher(model)
    source = patcher.writer_outputs(task.corrupted_tokens)
    with torch.no_grad():
        clean = task.metric(model(task.clean_tokens))
        corrupted = task.metric(model(task.corrupted_tokens))
        none = task.metric(
            patcher.forward(task.clean_tokens, torch.zeros(patcher.graph.n_edges), source)
        )
        every = task.metric(
            patcher.forward(task.clean_tokens, torch.ones(patcher.graph.n_edges), source)
        )
    assert torch.equal(none, clean)  # untouched ports: bit-identical
    torch.testing.assert_close(every, corrupted, atol=2e-4, rtol=1e-5)


def test_writer_outputs_sum_to_the_final_residual(ioi):
    model, task = ioi
    patcher = EdgePatcher(model)
    outs = patcher.writer_outputs(task.clean_tokens)  # [writer, batch, pos, d_model]
    _, cache = model.run_with_cache(task.clean_tokens, names=["ln_final.hook_in"])
    biases = sum(
        model.bridge.blocks[layer].attn.b_O for layer in range(model.n_layers)
    )  # [d_model]
    torch.testing.assert_close(outs.sum(0) + biases, cache["ln_final.hook_in"], atol=1e-4, rtol=0)


def test_path_patching_subset_equals_exhaustive_entries(ioi):
    model, task = ioi
    full = exhaustive_patching(model, task)
    chosen = [full.edges[i] for i in (0, 17, 60, 109)]
    part = path_patching(model, task, edges=chosen)
    assert part.n_edges == 4
    idx = [full.edges.index(e) for e in chosen]
    torch.testing.assert_close(part.scores[idx], full.scores[idx], atol=1e-9, rtol=0)


def test_eap_matches_transformer_lens_attribution_patch(ioi):
    from transformer_lens.tools.analysis.attribution_patching import (
        EdgeAttributionConfig,
        attribution_patch,
    )

    from circuits.task_batches import task_slice

    model, task = ioi
    for i in range(2):
        sub = task_slice(task, i, i + 1)
        ours = eap(model, sub, direction="denoising")
        tl = attribution_patch(
            model.bridge,
            sub.clean_tokens,
            sub.corrupted_tokens,
            lambda logits, sub=sub: sub.metric(logits).sum(),
            EdgeAttributionConfig(granularity="edge"),
        )
        totals: dict[str, float] = {}
        for (src, dst), score in tl.edge_scores.items():
            label = f"{_tl_writer(src)}->{_tl_reader(dst)}"
            totals[label] = totals.get(label, 0.0) + score
        shared = [e for e in ours.edges if e in totals]
        assert len(shared) >= 100  # TL has no edges from the position embedding
        theirs = torch.tensor([totals[e] for e in shared], dtype=torch.float64)
        mine = ours.scores[[ours.edges.index(e) for e in shared]]
        torch.testing.assert_close(mine, theirs, atol=2e-4, rtol=1e-3)


def _tl_writer(node) -> str:
    if node.kind == "embed":
        return "input"
    if node.kind == "attn_head_out":
        return f"L{node.layer}H{node.head}"
    return f"MLP{node.layer}"


def _tl_reader(node) -> str:
    kind = node.kind
    if kind in ("q_input", "k_input", "v_input"):
        return f"L{node.layer}H{node.head}<{kind[0]}>"
    if kind == "mlp_in":
        return f"MLP{node.layer}"
    return "output"


@pytest.mark.slow
def test_eap_ig_with_one_step_is_eap_and_more_steps_track_exhaustive(induction):
    model, task = induction
    one = eap_ig(model, task, ig_steps=1)
    plain = eap(model, task)
    torch.testing.assert_close(one.scores, plain.scores, atol=0, rtol=0)
    truth = exhaustive_patching(model, task)
    ig = eap_ig(model, task, ig_steps=8)
    corr_ig = torch.corrcoef(torch.stack([ig.scores, truth.scores]))[0, 1]
    corr_eap = torch.corrcoef(torch.stack([plain.scores, truth.scores]))[0, 1]
    assert corr_ig > 0.85 and corr_ig > corr_eap


def test_eap_on_gqa_scores_every_edge(random_gqa):
    model, task = random_gqa
    circuit = eap(model, task)
    # 8 attention ports per layer (4 q + 2 k + 2 v): 8*1 + 5 (m0) + 8*6 + 10 (m1) + 11 (output)
    assert len(circuit.edges) == 82
    assert circuit.scores.isfinite().all() and (circuit.scores != 0).any()
    assert "L1H1<k>" in {e.split("->")[1] for e in circuit.edges}
    assert "L1H2<k>" not in {e.split("->")[1] for e in circuit.edges}


def test_activation_patching_matches_transformer_lens_patching(ioi):
    from transformer_lens import patching

    model, task = ioi
    ours = activation_patching(model, task, ablation="resample")
    _, corrupted_cache = model.bridge.run_with_cache(task.corrupted_tokens)
    clean_mean = task.metric(model(task.clean_tokens)).mean()
    tl = patching.get_act_patch_attn_head_out_all_pos(
        model.bridge,
        task.clean_tokens,
        corrupted_cache,
        lambda logits: task.metric(logits).mean() - clean_mean,
    )  # [layer, head]
    heads = [ours.nodes.index(f"L{layer}H{h}") for layer in range(2) for h in range(4)]
    torch.testing.assert_close(
        ours.node_scores[heads].float(), tl.reshape(-1).float(), atol=1e-4, rtol=1e-4
    )


@pytest.mark.slow
def test_activation_patching_per_position_and_ablations(ioi):
    model, task = ioi
    per_pos = activation_patching(model, task, ablation="zero", per_position=True)
    assert per_pos.position_scores.shape == (11, task.clean_tokens.shape[1])
    mean = activation_patching(model, task, ablation="mean")
    assert not torch.equal(mean.node_scores, per_pos.node_scores)
    with pytest.raises(ValueError, match="ablation"):
        activation_patching(model, task, ablation="gaussian")


def test_eap_ig_along_edges_is_complete(ioi):
    model, task = ioi
    circuit = eap_ig(model, task, ig_steps=16, ig_path="edges")
    summary = task.summary(model)
    total = circuit.scores.sum().item()  # integral of dM/dalpha: M(corrupted) - M(clean)
    assert total == pytest.approx(summary["corrupted"] - summary["clean"], rel=0.02)
    with pytest.raises(ValueError, match="ig_path"):
        eap_ig(model, task, ig_path="logits")
