"""Entropy collapse (and the entropy bound under it) on the rotary families whose bridges fire
no `hook_rot_q`: GPT-NeoX (partial rotary), Phi-3 (fused QKV), GPT-J (interleaved pairs) and
Falcon (multi-query), plus Llama (rotated-q/k hooks) as the control.

Each family is a tiny random checkpoint with a large initialisation (sharp, far from uniform
patterns, so a wrong rotation or scale cannot hide under the bound's 1e-3 pattern check),
written with `save_pretrained` and loaded by folder. References, independent of the bridge and
of this project: transformers' eager attention (`output_attentions=True`), whose row entropies
must give the table's mean entropy per head, and which the rotated q.k logits
(`analysis.training_dynamics.rotated_qk`) must reproduce through a float64 softmax.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis import entropy_collapse
from analysis.training_dynamics.entropy_bound import logit_scale
from analysis.training_dynamics.rotated_qk import qk_hook_names, rotated_qk
from tests.integration.adapters.family_checkpoints import (
    build_model,
    eager_patterns,
    entropy,
    save_checkpoint,
)
from workbench import load_model

TEXTS = ["When Mary and John went to the store, John gave a drink to", "one two three one two"]
FAMILIES = ("gpt_neox", "phi3", "gptj", "falcon", "llama")


@pytest.fixture(scope="module")
def sharp(tmp_path_factory):
    """`sharp(family)` -> (folder, Model) of a checkpoint with initializer_range 0.2."""
    root, loaded = tmp_path_factory.mktemp("entropy_collapse_families"), {}

    def get(family: str):
        if family not in loaded:
            folder = save_checkpoint(build_model(family, initializer_range=0.2), root / family)
            loaded[family] = folder, load_model(str(folder))
        return loaded[family]

    return get


@pytest.mark.parametrize("family", FAMILIES)
def test_entropy_collapse_matches_eager_attention(sharp, family):
    folder, model = sharp(family)
    result = entropy_collapse(model, texts=TEXTS, history=False)
    table = result.table.sort_values(["layer", "head"])
    per_text = []  # [layer, head, query] eager row entropies per text
    for text in TEXTS:
        patterns = eager_patterns(folder, model.to_tokens(text).cpu())
        per_text.append(torch.stack([entropy(p) for p in patterns]).numpy())
    expected = np.concatenate(per_text, axis=-1).mean(-1)  # [layer, head]
    assert expected.std() > 0.05, "patterns too uniform to test anything"
    got = table.entropy.to_numpy().reshape(model.n_layers, model.n_heads)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert (table.spectral_norm > 0).all()
    assert (table.min_margin >= -1e-9).all(), "entropy below the sigma-Reparam bound"


@pytest.mark.parametrize("family", FAMILIES)
def test_rotated_qk_reproduces_eager_pattern(sharp, family):
    folder, model = sharp(family)
    tokens = model.to_tokens(TEXTS[0])  # [1, pos]
    names = list(
        dict.fromkeys(n for layer in range(model.n_layers) for n in qk_hook_names(model, layer))
    )
    _, cache = model.run_with_cache(tokens, names=names)
    patterns = eager_patterns(folder, tokens.cpu())
    n = tokens.shape[1]
    future = np.triu(np.ones((n, n), bool), 1)  # [query, key] masked keys
    for layer in range(model.n_layers):
        q, k = rotated_qk(model, cache, layer)  # [pos, head, d_head], [pos, kv, d_head]
        k = np.repeat(k, model.n_heads // k.shape[1], axis=1)  # [pos, head, d_head]
        logits = np.einsum("qhd,khd->hqk", q, k) * logit_scale(model, layer)
        logits = np.where(future, -np.inf, logits)  # [head, query, key]
        soft = np.exp(logits - logits.max(-1, keepdims=True))
        soft /= soft.sum(-1, keepdims=True)
        assert np.abs(soft - patterns[layer].numpy()).max() < 1e-5, (family, layer)
