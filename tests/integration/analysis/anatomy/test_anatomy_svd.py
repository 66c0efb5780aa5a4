"""Head SVD on the zoo: spectra against numpy on the explicitly formed matrices, the folded
weights against the model's own q/k/v, readouts and round trips."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.anatomy.head_svd import HeadSVD, qk_ov_svd
from analysis.anatomy.residual import prompt_tokens
from workbench.adapters import weights


@pytest.mark.parametrize("name", ["tiny-ioi", "tiny-induction", "minilm"])
def test_spectra_match_numpy_on_formed_matrices(zoo_model, name):
    model = zoo_model(name)
    layer, head = model.n_layers - 1, model.n_heads - 1
    result = qk_ov_svd(model, layer, head, n_components=1, top_tokens=3)
    w = weights.head_weights(model, layer, head)
    omega = w.W_Q @ w.W_K.T  # [d_model + 1, d_model + 1]
    ov = w.W_V[:-1] @ w.W_O  # [d_model, d_model]
    d = model.d_head
    np.testing.assert_allclose(
        result.qk_singular_values, np.linalg.svd(omega, compute_uv=False)[:d], rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(
        result.ov_singular_values, np.linalg.svd(ov, compute_uv=False)[:d], rtol=1e-9, atol=1e-9
    )
    rebuilt = result.qk_left @ np.diag(result.qk_singular_values) @ result.qk_right.T
    np.testing.assert_allclose(rebuilt, omega, atol=1e-9 * np.abs(omega).max())
    spectral = np.linalg.norm(w.W_Q[:-1] @ w.W_K[:-1].T, 2) / np.sqrt(d)
    assert result.spectral_norm == pytest.approx(spectral, rel=1e-9)
    assert 1 <= result.qk_effective_rank["energy_rank"] <= d
    assert 1.0 <= result.qk_effective_rank["entropy_rank"] <= d
    assert result.kv_head == weights.kv_head_of(model, head)


@pytest.mark.parametrize("name", ["tiny-ioi", "minilm"])
def test_folded_weights_reproduce_hooked_q_k_v(zoo_model, name):
    """x~ @ W_Q~ equals the model's hook_q (the norm gain/bias folding is right)."""
    model = zoo_model(name)
    tokens = prompt_tokens(model, "The cat sat on the mat.")
    layer = 1
    names = [f"blocks.{layer}.hook_resid_pre"] + [f"blocks.{layer}.attn.hook_{x}" for x in "qkv"]
    _, cache = model.run_with_cache(tokens, names=names)
    norm, eps = weights.input_norm(model, layer)
    x = cache[names[0]][0].double().numpy()  # [pos, d_model]
    x_aug = np.hstack([weights.normalise(x, norm, eps)[0], np.ones((len(x), 1))])
    for head in (0, model.n_heads - 1):
        w = weights.head_weights(model, layer, head)
        for letter, mat in zip("qkv", (w.W_Q, w.W_K, w.W_V), strict=True):
            hooked = cache[f"blocks.{layer}.attn.hook_{letter}"][0, :, head].double().numpy()
            np.testing.assert_allclose(x_aug @ mat, hooked, rtol=1e-4, atol=2e-5)


def test_readouts_and_round_trip(zoo_model):
    model = zoo_model("tiny-ioi")
    result = qk_ov_svd(model, 0, 1, n_components=2, top_tokens=4)
    readouts = result.readouts
    assert set(readouts.matrix) == {"qk", "ov"}
    assert set(readouts.basis[readouts.side == "write"]) == {"W_U"}  # decoder: unembedding
    assert len(readouts) == 4 * 2 * 2 * 4  # sides x components x signs x tokens
    assert result.weights_note.startswith("raw HuggingFace weights")
    back = HeadSVD.from_json(result.to_json())
    np.testing.assert_array_equal(back.qk_left, result.qk_left)
    assert back.readouts.equals(readouts)
    frame = result.to_frame()
    assert frame.groupby("matrix").cumulative_energy.max().round(9).eq(1.0).all()
    assert len(result.plot().data) == 2 and result.plot("readouts").data
    with pytest.raises(ValueError, match="kind"):
        result.plot("nope")


def test_encoder_readouts_avoid_the_untrained_mlm_head(zoo_model):
    result = qk_ov_svd(zoo_model("minilm"), 0, 0, n_components=1, top_tokens=2)
    assert set(result.readouts.basis) == {"W_E"}


def test_out_of_range_layer_and_head(zoo_model):
    model = zoo_model("tiny-induction")
    with pytest.raises(ValueError, match="layer: 5 is out of range for tiny-induction"):
        qk_ov_svd(model, 5, 0)
    with pytest.raises(ValueError, match="head: 8 is out of range"):
        qk_ov_svd(model, 0, 8)


@pytest.mark.parametrize("name", ["tiny-ioi", "tiny-induction"])
def test_folding_matches_transformer_lens_compatibility_mode(name):
    """Independent reference: TL's own layer-norm folding on a private copy of the model.

    TL also centres reading weights (inputs are centred by LayerNorm) and writing weights, so
    ours are compared after the same projection; RMSNorm (Llama) is folded without centring.
    """
    from workbench import load_model

    model, reference = load_model(name), load_model(name)  # never the shared session model
    reference.bridge.enable_compatibility_mode()
    attn = reference.bridge.blocks[1].attn
    d = model.d_model
    layernorm = weights.input_norm(model, 1)[0] == "layernorm"
    centre = np.eye(d) - 1.0 / d if layernorm else np.eye(d)  # [d_model, d_model]
    for head in range(model.n_heads):
        w = weights.head_weights(model, 1, head)
        tl = {
            "Q": attn.W_Q[head],
            "K": attn.W_K[w.kv_head],
            "V": attn.W_V[w.kv_head],
        }
        for letter, ours in (("Q", w.W_Q), ("K", w.W_K), ("V", w.W_V)):
            np.testing.assert_allclose(
                centre @ ours[:-1], tl[letter].detach().double().numpy(), atol=1e-6
            )
        np.testing.assert_allclose(
            w.W_O @ centre, attn.W_O[head].detach().double().numpy(), atol=1e-6
        )
        if layernorm:
            np.testing.assert_allclose(
                w.W_Q[-1], attn.b_Q[head].detach().double().numpy(), atol=1e-6
            )
