"""Every zoo model loads offline and meets the metrics its card records, re-measured here."""

from __future__ import annotations

import pytest
from safetensors.torch import load_file

from workbench import ZOO
from workbench.zoo.evaluate import evaluate_zoo_model

# Task thresholds from the foundation issue, and how closely a re-measurement must match the
# card (evaluation is deterministic; the slack covers BLAS differences between machines).
THRESHOLDS = {
    "tiny-ioi": {"ioi_accuracy": 0.98, "ioi_logit_diff": 3.0},
    "tiny-induction": {"induction_score_best": 0.5},
    "minilm": {"similarity_accuracy": 0.95},
    "planted-induction": {"top1_accuracy": 0.7},
    "planted-redundant": {"top1_accuracy": 0.7},
    "planted-lookup": {"top1_accuracy": 0.99},
    "planted-induction-llama": {"top1_accuracy": 0.7},
}
CARD_TOLERANCE = 2e-3


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_model_loads_with_expected_shape(name, zoo_model):
    model = zoo_model(name)
    assert model.source == "zoo" and model.name == name
    assert model.is_causal == (ZOO[name].kind == "decoder")
    assert model.n_layers >= 2 and model.n_heads >= 4
    assert model.card and model.card["metrics"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_model_meets_its_card_metrics(name):
    card = ZOO[name].card()
    measured = evaluate_zoo_model(name)
    for metric, threshold in THRESHOLDS[name].items():
        assert measured[metric] >= threshold, f"{name} {metric}={measured[metric]} < {threshold}"
    for metric, value in card["metrics"].items():
        if isinstance(value, float):
            assert measured[metric] == pytest.approx(value, abs=CARD_TOLERANCE), metric
        else:
            assert measured[metric] == value, metric


def test_induction_model_learns_the_repeated_half():
    metrics = ZOO["tiny-induction"].card()["metrics"]
    assert metrics["loss_second_half"] < 0.5 * metrics["loss_first_half"]


@pytest.mark.parametrize("name", ["tiny-ioi", "tiny-induction"])
def test_trained_checkpoint_is_complete_small_and_documented(name):
    folder = ZOO[name].path()
    for file in ("config.json", "model.safetensors", "tokenizer.json", "card.json", "README.md"):
        assert (folder / file).exists(), file
    assert (folder / "model.safetensors").stat().st_size < 10 * 2**20
    card = ZOO[name].card()
    assert card["training"]["steps"] > 0 and card["training"]["wall_seconds"] > 0
    assert card["recipe"]["seed"] == 0


@pytest.mark.parametrize("name", ["tiny-ioi", "tiny-induction"])
def test_history_snapshots_match_the_final_weights_layout(name):
    folder = ZOO[name].path()
    final = load_file(str(folder / "model.safetensors"))
    snapshots = sorted((folder / "history").glob("step-*.safetensors"))
    assert len(snapshots) >= 3
    for path in snapshots:
        weights = load_file(str(path))
        for key, tensor in weights.items():
            # the unembedding is tied to the embedding, so the final file stores it once
            final_key = key
            if key == "lm_head.weight" and key not in final:
                final_key = next(
                    k for k in final if k.endswith(("wte.weight", "embed_tokens.weight"))
                )
            assert final_key in final and tensor.shape == final[final_key].shape, key
