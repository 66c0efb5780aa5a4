"""sigma-Reparam's bound on every zoo model and every training snapshot it ships: measured
entropy (float64, from TransformerLens' hook_pattern) never falls below the bound in any of its
three sigma forms; the paper form is recomputed independently from the layer's input and the
raw weights (and those reproduce the model's own attention scores); the forms are ordered as
the algebra says; the result plots and round-trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from analysis.training_dynamics import bound_math as bm
from analysis.training_dynamics.entropy_bound import EntropyBound, entropy_bound, logit_scale
from workbench.adapters import weights

MODELS = [
    "tiny-ioi",
    "tiny-induction",
    "minilm",
    "planted-induction",
    "planted-induction-llama",
    "planted-lookup",
    "planted-redundant",
]
TOLERANCE = 1e-6  # float32 patterns: entropy of a one-hot row is ~1e-7, not exactly 0


@pytest.fixture(scope="module")
def results(zoo_model):
    return {}


def _result(results, zoo_model, name) -> EntropyBound:
    if name not in results:
        results[name] = entropy_bound(zoo_model(name))
    return results[name]


@pytest.mark.parametrize("name", MODELS)
def test_entropy_is_never_below_the_bound(results, zoo_model, name):
    model = zoo_model(name)
    result = _result(results, zoo_model, name)
    table = result.to_frame()
    history = sorted(Path(model.path).glob("history/step-*.safetensors")) if model.path else []
    expected = [f"step {int(p.stem.split('-')[1])}" for p in history] + ["final"]
    assert list(dict.fromkeys(table.checkpoint)) == expected  # every snapshot file is checked
    assert len(table) == len(expected) * len(result.texts) * model.n_layers * model.n_heads
    assert (table.n_queries > 0).all() and table.pattern_error.max() < 1e-4
    margins = result.min_margins()
    assert min(margins.values()) >= -TOLERANCE, margins
    # ordering: sigma_row <= sigma_logits <= sigma_paper, so bound_row >= logits >= paper
    assert (table.bound_row >= table.bound_logits - 1e-9).all()
    assert (table.bound_logits >= table.bound_paper - 1e-9).all()
    assert result.summary()["holds"]


def test_paper_sigma_recomputed_from_input_and_weights(results, zoo_model):
    """tiny-ioi: x~ W x~^T reproduces hook_attn_scores, and ||W|| ||x~ x~^T|| = sigma_paper."""
    model = zoo_model("tiny-ioi")
    result = _result(results, zoo_model, "tiny-ioi")
    final = result.to_frame().query("checkpoint == 'final' and prompt == 0")
    tokens = model.to_tokens(result.texts[0])
    for layer in range(model.n_layers):
        names = [f"blocks.{layer}.hook_resid_pre", f"blocks.{layer}.attn.hook_attn_scores"]
        _, cache = model.run_with_cache(tokens, names=names)
        resid = cache[names[0]][0].double().numpy()  # [pos, d_model]
        centred = resid - resid.mean(-1, keepdims=True)
        x = centred / np.sqrt((centred**2).mean(-1, keepdims=True) + 1e-5)
        x = np.concatenate([x, np.ones((len(x), 1))], axis=1)  # [pos, d_model + 1]
        scores = cache[names[1]][0].double().numpy()  # [head, query, key]
        causal = np.tril(np.ones(scores.shape[1:], bool))
        for head in range(model.n_heads):
            w = weights.head_weights(model, layer, head)
            matrix = w.W_Q @ w.W_K.T * logit_scale(model, layer)  # [d_model+1, d_model+1]
            logits = x @ matrix @ x.T  # [query, key]
            np.testing.assert_allclose(logits[causal], scores[head][causal], atol=2e-4)
            sigma = np.linalg.norm(matrix, 2) * np.linalg.norm(x @ x.T, 2)
            row = final[(final.layer == layer) & (final["head"] == head)].iloc[0]
            assert row.sigma_paper == pytest.approx(sigma, rel=1e-8)


def test_entropy_matches_float64_softmax_of_hooked_scores(results, zoo_model):
    model = zoo_model("tiny-induction")
    result = _result(results, zoo_model, "tiny-induction")
    final = result.to_frame().query("checkpoint == 'final'")
    for i, text in enumerate(result.texts):
        names = [f"blocks.{layer}.attn.hook_attn_scores" for layer in range(model.n_layers)]
        _, cache = model.run_with_cache(text, names=names)
        for layer, name in enumerate(names):
            scores = cache[name][0].double()  # [head, query, key], masked with -inf/min
            mask = torch.tril(torch.ones(scores.shape[1:], dtype=torch.bool))
            p = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1).numpy()
            reference = bm.row_entropy(p).mean(-1)  # [head]
            got = final[(final.prompt == i) & (final.layer == layer)].entropy.to_numpy()
            np.testing.assert_allclose(got, reference, atol=1e-5)


def test_plots_round_trip_and_entropy_collapse_columns(results, zoo_model):
    result = _result(results, zoo_model, "tiny-ioi")
    back = EntropyBound.from_json(result.to_json())
    assert back.to_frame().equals(result.to_frame())
    scatter = result.plot(bound="paper")
    assert len(scatter.data) == 5 + 1  # one trace per checkpoint and the diagonal
    assert len(result.plot("training").data) == 2 * 8  # entropy and bound per head
    from analysis.anatomy.entropy_collapse import entropy_collapse

    table = entropy_collapse(zoo_model("tiny-ioi"), history=False).to_frame()
    assert {"bound_paper", "bound_logits", "bound_row", "min_margin"} <= set(table)
    assert (table.min_margin >= -TOLERANCE).all() and (table.entropy >= table.bound_logits).all()
