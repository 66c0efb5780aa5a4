"""The zoo training code runs end to end, writes a complete checkpoint, and is reproducible."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from workbench import load_model
from workbench.zoo.train import main, train


@pytest.fixture
def one_thread():
    """Bit-exact reproducibility holds for a fixed thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_short_ioi_training_is_seeded_and_reproducible(tmp_path, one_thread):
    first = train("tiny-ioi", out_dir=tmp_path / "a", steps=15)
    second = train("tiny-ioi", out_dir=tmp_path / "b", steps=15)
    weights_a = load_file(str(tmp_path / "a" / "model.safetensors"))
    weights_b = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        assert torch.equal(weights_a[key], weights_b[key]), key
    assert first["metrics"] == second["metrics"]
    card = json.loads((tmp_path / "a" / "card.json").read_text())
    assert card["training"]["steps"] == 15 and card["recipe"]["steps"] == 15
    assert card["history"] == ["step-000015.safetensors"]
    snapshot = load_file(str(tmp_path / "a" / "history" / "step-000015.safetensors"))
    for key in weights_a:  # every trained weight, QKV biases included, in float16
        assert torch.equal(snapshot[key], weights_a[key].half()), key
    assert load_model(tmp_path / "a").n_layers == 2


@pytest.mark.slow
def test_llama_recipe_override_builds_a_grouped_query_model(tmp_path):
    card = train(
        "tiny-induction", out_dir=tmp_path, steps=3, overrides={"vocab_size": 512, "n_kv_head": 2}
    )
    model = load_model(tmp_path)
    assert card["architecture"] == "LlamaForCausalLM"
    assert (model.n_heads, model.n_key_value_heads, model.d_vocab) == (8, 2, 512)
    assert "induction_score_best" in card["metrics"]


def test_unknown_recipe_field_and_name_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match=r"--set: unknown recipe field\(s\) \['depth'\]"):
        train("tiny-ioi", out_dir=tmp_path, steps=1, overrides={"depth": 3})
    with pytest.raises(ValueError, match="no training recipe for 'minilm'"):
        train("minilm", out_dir=tmp_path)
    with pytest.raises(SystemExit):
        main(["not-a-model"])
