"""The LayerNorm-centred convention of head SVD, against TransformerLens' `FactoredMatrix`.

Reference: a private copy of the model (never the shared session model) switched into
TransformerLens' compatibility mode (fold_ln + centre reading and writing weights), whose
`bridge.QK[layer, head]` / `bridge.OV[layer, head]` are `FactoredMatrix` objects. Our spectra
(probed float64 weights, norm folded, the all-ones direction projected out on LayerNorm
models) must equal theirs; on tiny-ioi the uncentred spectra do not (the test can fail).
RMSNorm (planted-induction-llama) is folded without centring.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.anatomy.head_svd import qk_ov_svd
from workbench import load_model
from workbench.adapters import weights


def _tl_spectra(reference, layer: int, head: int) -> tuple[np.ndarray, np.ndarray]:
    qk = reference.bridge.QK[layer, head].S.detach().double().numpy()  # [d_head]
    ov = reference.bridge.OV[layer, head].S.detach().double().numpy()  # [d_head]
    return qk, ov


@pytest.mark.parametrize("name", ["tiny-ioi", "planted-induction-llama"])
def test_spectra_equal_transformer_lens_compatibility_mode(zoo_model, name):
    model, reference = zoo_model(name), load_model(name)
    reference.bridge.enable_compatibility_mode()
    checked = 0
    for layer in range(model.n_layers):
        for head in range(model.n_heads):
            tl_qk, tl_ov = _tl_spectra(reference, layer, head)
            if tl_ov.max() == 0:
                continue  # planted models leave some heads empty
            result = qk_ov_svd(model, layer, head, n_components=0)
            w = weights.head_weights(model, layer, head)
            ours_qk = np.linalg.svd(w.W_Q[:-1] @ w.W_K[:-1].T, compute_uv=False)[: w.d_head]
            np.testing.assert_allclose(ours_qk, tl_qk, rtol=1e-6, atol=1e-6 * tl_qk.max())
            np.testing.assert_allclose(
                result.ov_singular_values, tl_ov, rtol=1e-6, atol=1e-6 * tl_ov.max()
            )
            assert result.spectral_norm == pytest.approx(tl_qk[0] / np.sqrt(w.d_head), rel=1e-6)
            checked += 1
    assert checked >= 4


def test_uncentred_spectra_differ_on_layernorm(zoo_model):
    """Keeping the all-ones direction (the old convention) moves tiny-ioi L1H3's spectra."""
    model = zoo_model("tiny-ioi")
    raw = weights._layer(model, 1)
    w = weights.head_weights(model, 1, 3)
    cols = slice(3 * w.d_head, 4 * w.d_head)
    gain = raw["gain"][:, None]
    uncentred = {
        "qk": np.vstack([gain * raw["Q"][:, cols], w.W_Q[-1:]])
        @ np.vstack([gain * raw["K"][:, cols], w.W_K[-1:]]).T,
        "ov": (gain * raw["V"][:, cols]) @ raw["O"][cols],
    }
    result = qk_ov_svd(model, 1, 3, n_components=0)
    for kind, centred in (("qk", result.qk_singular_values), ("ov", result.ov_singular_values)):
        old = np.linalg.svd(uncentred[kind], compute_uv=False)[: w.d_head]
        assert np.abs(old - centred).max() > 1e-4 * centred.max(), kind
