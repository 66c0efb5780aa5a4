"""`Model` on real zoo models: tokenisation errors, filtered caches, interventions."""

from __future__ import annotations

import pytest
import torch

PROMPT = "When Mary and John went to the store, John gave a drink to"


@pytest.fixture(params=["tiny-ioi", "tiny-induction", "minilm"])
def model(request, zoo_model):
    return zoo_model(request.param)


def test_dimensions_match_the_bridge_config(model):
    cfg = model.bridge.cfg
    assert (model.n_layers, model.n_heads, model.d_model) == (
        cfg.n_layers,
        cfg.n_heads,
        cfg.d_model,
    )
    assert model.d_head * model.n_heads == model.d_model
    assert model.is_causal == (model.name != "minilm")


def test_to_tokens_and_str_tokens_agree(model):
    tokens = model.to_tokens(PROMPT)
    strs = model.to_str_tokens(PROMPT)
    assert tokens.shape == (1, len(strs))
    assert strs[0] in ("<bos>", "[CLS]")
    assert model.to_str_tokens(tokens) == strs


@pytest.mark.parametrize("bad", ["", "   ", []])
def test_empty_prompt_is_rejected(model, bad):
    with pytest.raises(ValueError, match="prompt"):
        model.to_tokens(bad)


def test_prompt_longer_than_context_is_rejected(model):
    with pytest.raises(ValueError, match=r"longer than .*context of \d+ tokens"):
        model.to_tokens(" ".join(["Mary"] * (model.n_ctx + 5)))


def test_filtered_cache_holds_only_the_requested_hooks_and_matches_full_cache(model):
    names = ["blocks.0.attn.hook_pattern", f"blocks.{model.n_layers - 1}.hook_out"]
    logits, cache = model.run_with_cache(PROMPT, names=names)
    assert sorted(cache) == sorted(names)
    full_logits, full_cache = model.bridge.run_with_cache(model.to_tokens(PROMPT))
    for name in names:
        torch.testing.assert_close(cache[name], full_cache[name], rtol=0, atol=0)
    torch.testing.assert_close(logits, full_logits, rtol=0, atol=0)


def test_unknown_hook_name_is_a_value_error(model):
    with pytest.raises(ValueError, match="unknown hook name"):
        model.run_with_cache(PROMPT, names=["blocks.99.attn.hook_pattern"])
    with (
        pytest.raises(ValueError, match="unknown hook name"),
        model.intervene({"nope": lambda x, hook: x}),
    ):
        pass


def zero_head_zero(z, *, hook):
    z[:, :, 0] = 0.0  # [batch, pos, head, d_head]
    return z


def test_intervention_changes_the_output_and_leaves_no_trace(model):
    tokens = model.to_tokens(PROMPT)
    hooks_before = model.active_hook_count()
    with torch.no_grad():
        before = model(tokens)
        with model.intervene({"blocks.0.attn.hook_z": zero_head_zero}):
            assert model.active_hook_count() == hooks_before + 1
            during = model(tokens)
        after = model(tokens)
    assert not torch.equal(before, during)
    assert torch.equal(before, after)  # bit-identical
    assert model.active_hook_count() == hooks_before


def test_hooks_are_removed_when_the_body_raises(model):
    tokens = model.to_tokens(PROMPT)
    hooks_before = model.active_hook_count()
    with torch.no_grad():
        before = model(tokens)
        with (
            pytest.raises(RuntimeError, match="boom"),
            model.intervene([("blocks.0.attn.hook_z", zero_head_zero)]),
        ):
            raise RuntimeError("boom")
        after = model(tokens)
    assert model.active_hook_count() == hooks_before
    assert torch.equal(before, after)


def test_hooks_are_removed_when_a_hook_raises(model):
    def broken(z, *, hook):
        raise RuntimeError("hook failed")

    tokens = model.to_tokens(PROMPT)
    hooks_before = model.active_hook_count()
    with torch.no_grad():
        before = model(tokens)
        with (
            pytest.raises(RuntimeError, match="hook failed"),
            model.intervene({"blocks.0.attn.hook_z": broken}),
        ):
            model(tokens)
        assert torch.equal(before, model(tokens))
    assert model.active_hook_count() == hooks_before


def test_minilm_hidden_state_matches_huggingface_bert(zoo_model):
    from transformers import BertModel

    model = zoo_model("minilm")
    texts = ["a short one", "a somewhat longer sentence about dogs and cats in a garden"]
    tokens = model.to_tokens(texts)
    mask = model.attention_mask(tokens)
    ours = model.hidden_states(tokens)  # [batch, pos, d_model]
    bert = BertModel.from_pretrained(model.path).eval()
    with torch.no_grad():
        ref = bert(input_ids=tokens, attention_mask=mask).last_hidden_state
    real = mask.bool()
    torch.testing.assert_close(ours[real], ref[real], rtol=0, atol=2e-5)


def test_tuples_and_generators_of_prompts_tokenise_like_lists(model):
    prompts = [PROMPT, "a shorter prompt"]
    expected = model.to_tokens(prompts)
    assert torch.equal(model.to_tokens(tuple(prompts)), expected)
    assert torch.equal(model.to_tokens(p for p in prompts), expected)


def test_the_character_cap_is_generous_relative_to_the_context(model):
    from workbench.model import CHARS_PER_TOKEN_BOUND, MAX_PROMPT_CHARS

    assert model.prompt_char_limit == max(MAX_PROMPT_CHARS, CHARS_PER_TOKEN_BOUND * model.n_ctx)
    with pytest.raises(ValueError, match=r"is more than the [\d,]+-character limit"):
        model.to_tokens("x" * (model.prompt_char_limit + 1))
