"""Head perturbations on zoo models, guided decoding and the HeadHunter search.

References are independent: the head output `hook_z` of a head forced to attend to itself must
equal its own value vector `hook_v`; w=0 guidance must reproduce HuggingFace's own greedy
`generate`; guided logits must equal the formula applied to separate clean/perturbed runs.
"""

from __future__ import annotations

import pytest
import torch

from analysis.steering.guidance import GuidanceResult, guide, guided_logits
from analysis.steering.head_hunter import HeadHunter, HeadSearchResult, ioi_objective, split_rows
from analysis.steering.head_perturbation import (
    METHODS,
    HeadPerturbation,
    pattern_edits_take_effect,
    perturbed,
)
from workbench.results import Result
from workbench.tasks import make_task

PROMPT = "When Mary and John went to the store , John gave a drink to"
DECODERS = ["tiny-ioi", "tiny-induction"]


def prompt_for(model):
    return PROMPT if model.name == "tiny-ioi" else "the cat sat on the mat . the cat sat on"


@pytest.mark.parametrize("name", DECODERS)
@pytest.mark.parametrize("method", METHODS)
def test_u_zero_leaves_logits_exactly_unchanged(zoo_model, name, method):
    model = zoo_model(name)
    tokens = model.to_tokens(prompt_for(model))
    with torch.no_grad():
        clean = model(tokens)
        with perturbed(model, HeadPerturbation(heads=((0, 1), (1, 0)), method=method, u=0.0)):
            same = model(tokens)
        with perturbed(model, HeadPerturbation(heads=((0, 1), (1, 0)), method=method, u=1.0)):
            moved = model(tokens)
    assert torch.equal(clean, same)
    assert (clean - moved).abs().max() > 1e-3  # and u=1 does change the model


@pytest.mark.parametrize("name", DECODERS)
def test_identity_u1_makes_heads_attend_to_themselves_downstream(zoo_model, name):
    model = zoo_model(name)
    tokens = model.to_tokens(prompt_for(model))
    heads = ((0, 1), (1, 3))
    names = [
        f"blocks.{lay}.attn.{h}" for lay in (0, 1) for h in ("hook_pattern", "hook_z", "hook_v")
    ]
    hooks_before = model.active_hook_count()
    with torch.no_grad():
        _, clean = model.run_with_cache(tokens, names=names)
        with perturbed(model, HeadPerturbation(heads=heads, method="identity", u=1.0)):
            _, cache = model.run_with_cache(tokens, names=names)
    assert model.active_hook_count() == hooks_before
    group = model.n_heads // model.n_key_value_heads  # query heads per key/value head (GQA)
    for layer, head in heads:
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0, head]  # [query, key]
        assert torch.equal(pattern, torch.eye(pattern.shape[0]))
        z = cache[f"blocks.{layer}.attn.hook_z"][0, :, head]  # [pos, d_head]
        v = cache[f"blocks.{layer}.attn.hook_v"][0, :, head // group]  # [pos, d_head]
        torch.testing.assert_close(z, v, rtol=1e-5, atol=1e-5)
    untouched = cache["blocks.0.attn.hook_pattern"][0, 0]
    torch.testing.assert_close(untouched, clean["blocks.0.attn.hook_pattern"][0, 0], rtol=0, atol=0)


def test_zero_ablation_zeroes_head_outputs_and_works_on_encoders(zoo_model):
    for name in ("tiny-ioi", "minilm"):
        model = zoo_model(name)
        tokens = model.to_tokens("the cat sat on the mat")
        with torch.no_grad(), perturbed(model, HeadPerturbation(heads=((0, 2),), method="zero")):
            _, cache = model.run_with_cache(tokens, names=["blocks.0.attn.hook_z"])
        z = cache["blocks.0.attn.hook_z"][0]  # [pos, head, d_head]
        assert z[:, 2].abs().max() == 0 and z[:, 1].abs().max() > 0


def test_mean_ablation_uses_reference_means(zoo_model):
    model = zoo_model("tiny-ioi")
    reference = make_task("ioi", model, n=8, seed=3).clean_tokens
    tokens = model.to_tokens(PROMPT)
    with torch.no_grad():
        _, ref = model.run_with_cache(reference, names=["blocks.1.attn.hook_z"])
        mean = ref["blocks.1.attn.hook_z"][:, :, 3].mean((0, 1))  # [d_head]
        p = HeadPerturbation(heads=((1, 3),), method="mean", reference_tokens=reference)
        with perturbed(model, p):
            _, cache = model.run_with_cache(tokens, names=["blocks.1.attn.hook_z"])
    z = cache["blocks.1.attn.hook_z"][0, :, 3]  # [pos, d_head]
    torch.testing.assert_close(z, mean.expand_as(z), rtol=0, atol=1e-6)


def test_encoder_pattern_perturbation_goes_through_z_and_respects_padding(zoo_model):
    model = zoo_model("minilm")
    assert not pattern_edits_take_effect(model, 1)  # BERT fires hook_pattern after the fact
    tokens = model.to_tokens(["the cat sat on the mat", "a dog"])  # second prompt padded
    mask = model.attention_mask(tokens)
    names = ["blocks.1.attn.hook_z", "blocks.1.attn.hook_v"]
    hooks_before = model.active_hook_count()
    with torch.no_grad():
        clean, _ = model.run_with_cache(tokens, names=names)
        with perturbed(
            model, HeadPerturbation(heads=((1, 3),), method="uniform", u=0.0), attention_mask=mask
        ):
            same, _ = model.run_with_cache(tokens, names=names)
        with perturbed(
            model, HeadPerturbation(heads=((1, 3),), method="identity"), attention_mask=mask
        ):
            _, ident = model.run_with_cache(tokens, names=names)
        with perturbed(
            model, HeadPerturbation(heads=((1, 3),), method="uniform"), attention_mask=mask
        ):
            _, unif = model.run_with_cache(tokens, names=names)
        unmasked = HeadPerturbation(heads=((1, 3),), method="uniform")
        with pytest.raises(ValueError, match="pass attention_mask"), perturbed(model, unmasked):
            model(tokens)
    assert model.active_hook_count() == hooks_before
    assert torch.equal(clean, same)
    real = mask.bool()  # [batch, pos]
    z, v = ident["blocks.1.attn.hook_z"][:, :, 3], ident["blocks.1.attn.hook_v"][:, :, 3]
    torch.testing.assert_close(z[real], v[real], rtol=1e-5, atol=1e-5)
    z, v = unif["blocks.1.attn.hook_z"][1, :, 3], unif["blocks.1.attn.hook_v"][1, :, 3]
    n_real = int(mask[1].sum())  # uniform over the real keys only, padding excluded
    torch.testing.assert_close(
        z[:n_real], v[:n_real].mean(0).expand(n_real, -1), rtol=1e-5, atol=1e-5
    )


def test_z_route_matches_the_pattern_route_on_a_decoder(zoo_model):
    model = zoo_model("tiny-ioi")
    tokens = model.to_tokens(PROMPT)
    p = HeadPerturbation(heads=((0, 1), (0, 3)), method="mean_query", u=0.6)
    with torch.no_grad():
        with perturbed(model, p):
            via_pattern = model(tokens)
        with model.intervene(p._z_route_hooks(0, [1, 3], model, None)):
            via_z = model(tokens)
    torch.testing.assert_close(via_z, via_pattern, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=r"layer: 9 is out of range for \S+ \(\d+ layers"):
        HeadPerturbation(heads=((9, 0),), method="zero").hooks(model)


@pytest.mark.parametrize("name", DECODERS)
def test_w_zero_greedy_guidance_equals_huggingface_generate(zoo_model, name):
    model = zoo_model(name)
    p = HeadPerturbation(heads=((1, 0),), method="identity")
    result = guide(
        model, prompt_for(model), p, w=0.0, alpha=0.1, max_new_tokens=6, stop_at_eos=False
    )
    tokens = model.to_tokens(prompt_for(model))
    hf = model.bridge.original_model.generate(
        tokens,
        max_new_tokens=6,
        min_new_tokens=6,
        do_sample=False,
        use_cache=False,  # the bridge's wrapped modules do not support HF's KV cache
        attention_mask=torch.ones_like(tokens),
    )
    assert result.tokens.tolist() == hf[0, tokens.shape[1] :].tolist()
    assert torch.equal(result.tokens, result.plain_token)
    assert result.shift_norm.abs().max() == 0


def test_guided_logits_follow_the_formula_and_plausibility_set(zoo_model):
    model = zoo_model("tiny-induction")
    tokens = model.to_tokens(prompt_for(model))
    p = HeadPerturbation(heads=((1, 2), (1, 5)), method="uniform", u=0.7)
    with torch.no_grad():
        clean = model(tokens)
        with perturbed(model, p):
            pert = model(tokens)
    got = guided_logits(model, tokens, p, w=1.5, alpha=0.05)
    probs = torch.softmax(clean, -1)
    keep = probs >= 0.05 * probs.max(-1, keepdim=True).values
    torch.testing.assert_close(got[keep], (2.5 * clean - 1.5 * pert)[keep], rtol=1e-6, atol=1e-5)
    assert torch.isinf(got[~keep]).all() and keep.sum() < keep.numel()


def test_guidance_changes_decoding_and_sampling_is_seeded(zoo_model):
    model = zoo_model("tiny-ioi")
    p = HeadPerturbation(heads=((1, 0), (1, 2)), method="identity")
    greedy = guide(model, PROMPT, p, w=3.0, alpha=0.0, max_new_tokens=8, stop_at_eos=False)
    assert greedy.shift_norm.min() > 0
    runs = [
        guide(model, PROMPT, p, w=1.0, sample=True, seed=s, max_new_tokens=8, stop_at_eos=False)
        for s in (5, 5, 6)
    ]
    assert torch.equal(runs[0].tokens, runs[1].tokens)
    assert runs[0].text == runs[1].text
    back = Result.from_json(runs[2].to_json())
    assert isinstance(back, GuidanceResult) and torch.equal(back.tokens, runs[2].tokens)
    assert len(back.to_frame()) == len(runs[2].tokens)
    assert back.plot().data


def test_guidance_refuses_encoders_and_bad_arguments(zoo_model):
    p = HeadPerturbation(heads=((0, 0),), method="zero")
    with pytest.raises(ValueError, match="model: guidance needs a decoder"):
        guide(zoo_model("minilm"), "a cat", p)
    with pytest.raises(ValueError, match="alpha:"):
        guide(zoo_model("tiny-ioi"), PROMPT, p, alpha=2.0)


def test_head_search_selects_on_one_split_and_scores_on_another(zoo_model):
    model = zoo_model("tiny-ioi")
    task = make_task("ioi", model, n=24, seed=11)
    select, heldout = split_rows(task.n_prompts, seed=0)
    hunter = HeadHunter(method="identity", w=1.0, rounds=2, top_k=1).fit(
        model, ioi_objective(task), select=select, heldout=heldout
    )
    result = hunter.result_
    assert 1 <= len(hunter.heads_) <= 2
    assert (
        set(result.history["round"]) <= {0, 1}
        and len(result.history) >= model.n_layers * model.n_heads
    )
    held = result.comparison["heldout"]
    # guidance away from IOI-breaking perturbations must raise the held-out logit difference
    assert held["searched_heads"] > held["no_guidance"]
    # first-round scores equal an independent recomputation for one candidate
    first = result.history[(result.history["round"] == 0)].iloc[0]
    p = HeadPerturbation(heads=((int(first["layer"]), int(first["head"])),), method="identity")
    logits = guided_logits(model, task.clean_tokens[select], p, w=1.0, alpha=0.0)
    manual = ioi_objective(task).score(logits, select).mean()
    assert float(first["score"]) == pytest.approx(float(manual), rel=1e-5)
    back = Result.from_json(result.to_json())
    assert isinstance(back, HeadSearchResult) and back.heads == result.heads
    assert back.plot().data and back.plot("history").data
    with pytest.raises(ValueError, match="heldout: the held-out rows overlap"):
        HeadHunter().fit(model, ioi_objective(task), select=select, heldout=select)
