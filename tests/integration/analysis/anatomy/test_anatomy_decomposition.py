"""Sparse attention decomposition on the zoo: reconstruction of the model's own scores,
exact upstream bookkeeping, and the previous-token -> induction K-composition on tiny-induction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.anatomy.residual import attention_input, prompt_tokens
from analysis.anatomy.score_decomposition import (
    ScoreDecomposition,
    UpstreamContributions,
    decompose_score,
    firing_pairs,
    upstream_contributions,
)
from workbench.tasks.induction import random_repeated_tokens

PROMPTS = {
    "tiny-ioi": "When Mary and John went to the store, John gave a drink to",
    "tiny-induction": "def foo(x):\n    return x + 1\ndef foo(x):\n    return x",
    "minilm": "The cat sat on the mat because it was tired.",
}
RTOL = 1e-4


@pytest.mark.parametrize(
    "name", ["tiny-ioi", "tiny-induction", pytest.param("minilm", marks=pytest.mark.slow)]
)
def test_reconstruction_matches_model_scores(zoo_model, name):
    model = zoo_model(name)
    tokens = prompt_tokens(model, PROMPTS[name])
    n = tokens.shape[1]
    pairs = [(n - 1, 0), (n - 1, n - 2), (n // 2, 1), (n // 2, n // 2)]
    if not model.is_causal:
        pairs.append((1, n - 1))  # encoders attend forwards too
    worst = 0.0
    for layer in sorted({0, model.n_layers // 2, model.n_layers - 1}):
        for head in sorted({0, model.n_heads - 1}):
            for query, key in pairs:
                d = decompose_score(model, tokens, layer, head, query, key)
                assert d.terms.shape == (model.d_head,)
                scale = max(abs(d.model_score), 1e-3 * np.abs(d.terms).sum())
                worst = max(worst, abs(d.score - d.model_score) / scale)
    assert worst < RTOL, f"{name}: worst relative reconstruction error {worst:.2e}"


@pytest.mark.parametrize("name", ["tiny-ioi", "tiny-induction"])
def test_decoder_qk_equals_hook_attn_scores(zoo_model, name):
    model = zoo_model(name)
    tokens = prompt_tokens(model, PROMPTS[name])
    hook = "blocks.1.attn.hook_attn_scores"
    _, cache = model.run_with_cache(tokens, names=[hook])
    scaled = cache[hook][0].double().numpy() * np.sqrt(model.d_head)  # [head, query, key]
    ours = attention_input(model, tokens, 1).scores
    causal = np.tril(np.ones(ours.shape[1:], dtype=bool))
    np.testing.assert_allclose(ours[:, causal], scaled[:, causal], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_upstream_contributions_sum_to_selected_terms(zoo_model, name):
    model = zoo_model(name)
    tokens = prompt_tokens(model, PROMPTS[name])
    n = tokens.shape[1]
    d = decompose_score(model, tokens, model.n_layers - 1, 1, n - 1, 2, share=0.7)
    up = upstream_contributions(model, d)
    assert up.component_error < 1e-4  # components re-add to the hooked residual
    sums = up.to_frame().groupby("side").contribution.sum()
    for side in ("query", "key"):
        assert sums[side] == pytest.approx(up.selected_score, rel=1e-5, abs=1e-6)
    whole = upstream_contributions(model, d, components=list(range(model.d_head)))
    totals = whole.to_frame().groupby("side").contribution.sum()  # all components: every
    for total in totals:  # source together rebuilds the model's own score, on either side
        assert total == pytest.approx(d.model_score, rel=1e-4, abs=1e-5)
    with pytest.raises(ValueError, match="components"):
        upstream_contributions(model, d, components=[model.d_head])
    n_heads = model.n_heads * (model.n_layers - 1)
    heads = up.to_frame().query("kind == 'head'")
    assert len(heads) == 2 * n_heads
    reached = d.terms[d.selected].sum() / d.score
    assert reached >= 0.7 - 1e-9
    assert d.sparsity == len(d.selected) <= model.d_head


def test_induction_key_side_comes_from_previous_token_head(zoo_model):
    """On repeated random tokens the best induction head's firing pair is driven on the key
    side by the previous-token head of layer 0 (K-composition)."""
    model = zoo_model("tiny-induction")
    seq_len = 20
    clean, _ = random_repeated_tokens(model, n=1, seq_len=seq_len, seed=3)
    patterns = [f"blocks.{layer}.attn.hook_pattern" for layer in range(2)]
    _, cache = model.run_with_cache(clean, names=patterns)
    second = torch.arange(seq_len + 1, 2 * seq_len + 1)
    induction = cache[patterns[1]][0][:, second, second - seq_len + 1].mean(-1)  # [head]
    previous = cache[patterns[0]][0].diagonal(-1, dim1=1, dim2=2).mean(-1)  # [head]
    head = int(induction.argmax())
    query = seq_len + 10
    d = decompose_score(model, clean[0], 1, head, query, query - seq_len + 1)
    assert d.firing and d.relative_error < RTOL
    assert (query, query - seq_len + 1) in firing_pairs(model, clean[0], 1, head)
    top_key = upstream_contributions(model, d).top("key", 1).iloc[0]
    assert (top_key.source_layer, top_key.source_head) == (0, int(previous.argmax()))


def test_results_round_trip_and_plot(zoo_model):
    model = zoo_model("tiny-ioi")
    d = decompose_score(model, PROMPTS["tiny-ioi"], 1, 0, 5, 2, share=0.5)
    back = ScoreDecomposition.from_json(d.to_json())
    np.testing.assert_array_equal(back.terms, d.terms)
    assert back.selected == d.selected and back.share == 0.5
    assert d.to_frame().selected.sum() == d.sparsity
    assert len(d.plot().data[0].y) == model.d_head
    up = upstream_contributions(model, d)
    up_back = UpstreamContributions.from_json(up.to_json())
    assert up_back.to_frame().equals(up.to_frame())
    assert len(up.plot().data) == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layer": 2, "head": 0, "query": 3, "key": 1}, "layer: 2 is out of range"),
        ({"layer": 0, "head": 4, "query": 3, "key": 1}, "head: 4 is out of range"),
        ({"layer": 0, "head": 0, "query": 99, "key": 1}, "query: position 99"),
        ({"layer": 0, "head": 0, "query": 3, "key": -1}, "key: position -1"),
        ({"layer": 0, "head": 0, "query": 3, "key": 5}, "key: position 5 is after query 3"),
    ],
)
def test_bad_arguments_name_themselves(zoo_model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        decompose_score(zoo_model("tiny-ioi"), PROMPTS["tiny-ioi"], **kwargs)
