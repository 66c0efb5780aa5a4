"""`attention_stats` on the zoo models against TransformerLens' own `hook_pattern`.

References are independent float64 computations from what a normal (eager) run caches:
`hook_pattern` for every pattern statistic, and the (rotated, for RoPE) `hook_q`/`hook_k` for
lse. Each prompt's reference comes from running it alone (no padding), while `attention_stats`
runs the prompts as one right-padded batch, so batching is checked on the way.
"""

from __future__ import annotations

import math

import pytest
import torch

from analysis.statistics.attention_stats import attention_stats
from kernels import STAT_NAMES
from workbench.adapters.statistics_attention import statistics_attention

ATOL = 1e-5  # float32 statistics vs float64 references of float32 patterns
# lse and mean_distance are not probabilities (mean_distance reaches ~30 tokens here): the
# float32 pattern's own rounding, times the distance, gives them 1e-5 relative error on top.
RTOL = {"lse": 1e-5, "mean_distance": 1e-5}
MASS_BLOCK = 4  # small, so the test prompts span several key blocks
PROMPTS = {
    "tiny-ioi": [
        "When Mary and John went to the store, John gave a drink to",
        "Then, Sarah and Tom had a long argument. Afterwards Tom said to",
        "Mary and John",
    ],
    "tiny-induction": [
        "def add(a, b): return a + b\ndef add(a, b): return a + b\n",
        "import os",
        "The quick brown fox jumps over the lazy dog. The quick brown fox",
    ],
    "minilm": [
        "A man is playing a guitar on the stage while the crowd sings along.",
        "The cat sat.",
        "Attention heads often attend to the first token of a sentence.",
    ],
}
MODELS = list(PROMPTS)


def reference_stats(model, prompt: str) -> dict[str, torch.Tensor]:
    """float64 `[layer, head, query(, bucket)]` statistics of one prompt run alone (eager)."""
    rotary = "blocks.0.attn.hook_rot_q" in model.hook_names
    q_name, k_name = ("hook_rot_q", "hook_rot_k") if rotary else ("hook_q", "hook_k")
    names = [
        f"blocks.{layer}.attn.{hook}"
        for layer in range(model.n_layers)
        for hook in ("hook_pattern", q_name, k_name)
    ]
    _, cache = model.run_with_cache(prompt, names=names)
    per_layer = []
    for layer in range(model.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0].double()  # [head, query, key]
        q = _heads_first(cache[f"blocks.{layer}.attn.{q_name}"][0])  # [head, query, d_head]
        k = _heads_first(cache[f"blocks.{layer}.attn.{k_name}"][0])  # [kv_head, key, d_head]
        per_layer.append(_pattern_stats(pattern, q, k, causal=model.is_causal))
    return {name: torch.stack([s[name] for s in per_layer]) for name in per_layer[0]}


def _heads_first(x: torch.Tensor) -> torch.Tensor:
    """Bridge hook layout `[pos, head, d_head]` (q, k, rot_q, rot_k alike) -> `[head, pos, d_head]`."""
    return x.transpose(0, 1).double()


def _pattern_stats(pattern, q, k, *, causal: bool) -> dict[str, torch.Tensor]:
    n = pattern.shape[-1]
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    distance = (i - j).abs()  # [query, key]
    plogp = torch.where(pattern > 0, pattern * pattern.log(), torch.zeros_like(pattern))
    k = k.repeat_interleave(q.shape[0] // k.shape[0], dim=0)  # [head, key, d_head]
    scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])  # [head, query, key]
    if causal:
        scores = scores.masked_fill(j > i, -math.inf)
    buckets = torch.tensor([int(d).bit_length() for d in range(n)])[distance]  # [query, key]
    n_buckets = (n - 1).bit_length() + 1
    one_hot = torch.nn.functional.one_hot(buckets, n_buckets).double()  # [query, key, bucket]
    blocks = torch.nn.functional.one_hot(j[0] // MASS_BLOCK).double()  # [key, block]
    return {
        "lse": torch.logsumexp(scores, dim=-1),
        "entropy": -plogp.sum(-1),
        "max_prob": pattern.amax(-1),
        "sink": pattern[..., 0],
        "mean_distance": (pattern * distance).sum(-1),
        "sum_sq": (pattern**2).sum(-1),
        "distance_hist": torch.einsum("hqk,qkb->hqb", pattern, one_hot),
        "block_mass": pattern @ blocks,
    }


@pytest.fixture(scope="module")
def all_stats(zoo_model):
    """`attention_stats` of every model's prompts, one padded batch, every statistic."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = attention_stats(
                zoo_model(name),
                PROMPTS[name],
                backend="chunked",
                stats=STAT_NAMES,
                mass_block=MASS_BLOCK,
                batch_size=len(PROMPTS[name]),
            )
        return cache[name]

    return get


@pytest.mark.parametrize("name", MODELS)
def test_statistics_match_hook_pattern_references(zoo_model, all_stats, name):
    model, result = zoo_model(name), all_stats(name)
    assert len(set(result.lengths)) > 1  # a ragged batch: padding is exercised
    for index, prompt in enumerate(PROMPTS[name]):
        n = result.lengths[index]
        expected = reference_stats(model, prompt)
        for stat in STAT_NAMES:
            got = getattr(result, stat)[index, :, :, :n]
            want = expected[stat].float()
            if stat in ("distance_hist", "block_mass"):
                got = got[..., : want.shape[-1]]
                assert torch.all(getattr(result, stat)[index, :, :, :n, want.shape[-1] :] == 0)
            rtol = RTOL.get(stat, 0.0)
            torch.testing.assert_close(got, want, atol=ATOL, rtol=rtol, msg=f"{name} {stat}")
            assert torch.isnan(getattr(result, stat)[index, :, :, n:]).all()


@pytest.mark.parametrize("name", MODELS)
def test_outputs_unchanged_with_statistics_attention_installed(zoo_model, name):
    model = zoo_model(name)
    tokens = model.to_tokens(PROMPTS[name])  # [batch, pos], right-padded
    final = f"blocks.{model.n_layers - 1}.hook_out"
    logits, cache = model.run_with_cache(tokens, names=[final])
    with statistics_attention(model, backend="chunked") as attention:
        logits_stats, cache_stats = model.run_with_cache(tokens, names=[final])
        per_layer = attention.take()
    assert len(per_layer) == model.n_layers
    # Compare real positions only (decoders run right padding unmasked, as Model.forward does).
    # MiniLM's logits come from an untrained MLM head: compare BertModel's hidden states there.
    got, want = (logits_stats, logits) if model.is_causal else (cache_stats[final], cache[final])
    for row, prompt in enumerate(PROMPTS[name]):
        n = model.to_tokens(prompt).shape[1]
        torch.testing.assert_close(got[row, :n], want[row, :n], atol=ATOL, rtol=0)


def test_no_pattern_is_built_while_installed(zoo_model):
    model = zoo_model("tiny-induction")
    fired = []

    def record(pattern, *, hook):
        fired.append(hook.name)

    pattern_hooks = {f"blocks.{layer}.attn.hook_pattern": record for layer in range(2)}
    with model.intervene(pattern_hooks), statistics_attention(model) as attention:
        model(PROMPTS["tiny-induction"][0])
        attention.take()
    assert fired == []
    with model.intervene(pattern_hooks):
        model(PROMPTS["tiny-induction"][0])
    assert len(fired) == model.n_layers  # the same hooks do fire on a normal run


@pytest.mark.parametrize("name", MODELS)
def test_head_interventions_apply_to_the_statistics_run(zoo_model, name):
    """Zeroing a head's output at hook_z changes the next layer's statistics exactly as it
    changes the pattern of a normal run with the same intervention."""
    model = zoo_model(name)
    prompt = PROMPTS[name][0]

    def zero_head(z, *, hook):  # z: [batch, pos, head, d_head]
        z[:, :, 1] = 0.0
        return z

    with model.intervene({"blocks.0.attn.hook_z": zero_head}):
        result = attention_stats(model, [prompt], stats=["entropy"])
        pattern = reference_pattern(model, prompt, layer=1).double()  # [head, query, key]
    entropy = -torch.special.xlogy(pattern, pattern).sum(-1)  # [head, query]
    torch.testing.assert_close(result.entropy[0, 1], entropy.float(), atol=ATOL, rtol=0)
    plain = attention_stats(model, [prompt], stats=["entropy"])
    assert (plain.entropy[0, 1] - result.entropy[0, 1]).abs().max() > 1e-3  # it did change


@pytest.mark.parametrize("name", ["minilm", "tiny-induction"])
def test_batched_statistics_equal_each_prompt_alone(zoo_model, all_stats, name):
    alone = attention_stats(
        zoo_model(name), PROMPTS[name], stats=STAT_NAMES, mass_block=MASS_BLOCK, batch_size=1
    )
    batched = all_stats(name)
    for stat in STAT_NAMES:
        torch.testing.assert_close(
            getattr(batched, stat), getattr(alone, stat), atol=ATOL, rtol=0, equal_nan=True
        )


def test_everything_installed_is_removed_even_on_error(zoo_model):
    from transformers import AttentionInterface, AttentionMaskInterface

    model = zoo_model("tiny-ioi")
    config = model.bridge.original_model.config
    before = (
        [set(block.attn.__dict__) for block in model.bridge.blocks],
        config._attn_implementation,
        set(AttentionInterface._global_mapping),
        set(AttentionMaskInterface._global_mapping),
        model.active_hook_count(),
    )
    logits = model(PROMPTS["tiny-ioi"][0])
    with pytest.raises(RuntimeError, match="boom"), statistics_attention(model):
        assert config._attn_implementation.startswith("workbench_stats_")
        overrides = [set(block.attn.__dict__) - before[0][0] for block in model.bridge.blocks]
        assert overrides == [{"_reconstruct_attention"}] * model.n_layers  # GPT-2's seam
        raise RuntimeError("boom")
    after = (
        [set(block.attn.__dict__) for block in model.bridge.blocks],
        config._attn_implementation,
        set(AttentionInterface._global_mapping),
        set(AttentionMaskInterface._global_mapping),
        model.active_hook_count(),
    )
    assert after == before
    assert torch.equal(model(PROMPTS["tiny-ioi"][0]), logits)
    _, cache = model.run_with_cache(PROMPTS["tiny-ioi"][0], names=["blocks.0.attn.hook_pattern"])
    assert cache["blocks.0.attn.hook_pattern"].shape[-1] == logits.shape[1]


def test_subset_of_statistics_and_sink_tokens(zoo_model):
    model = zoo_model("tiny-ioi")
    result = attention_stats(model, PROMPTS["tiny-ioi"][:1], stats=["sink"], sink_tokens=2)
    assert result.statistics == ("sink",) and result.entropy is None
    pattern = reference_pattern(model, PROMPTS["tiny-ioi"][0], layer=1)  # [head, query, key]
    torch.testing.assert_close(result.sink[0, 1], pattern[..., :2].sum(-1), atol=ATOL, rtol=0)
    assert list(result.to_frame().columns) == ["prompt", "layer", "head", "query", "token", "sink"]


def reference_pattern(model, prompt: str, *, layer: int) -> torch.Tensor:
    name = f"blocks.{layer}.attn.hook_pattern"
    return model.run_with_cache(prompt, names=[name])[1][name][0]


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"prompts": []}, "prompts"),
        ({"prompts": ["fine", "   "]}, r"prompts\[1\]"),
        ({"prompts": ["word " * 600]}, r"prompts\[0\].*context"),
        ({"stats": ["entropy", "bogus"]}, "stats.*bogus"),
        ({"backend": "warp-drive"}, "backend.*warp-drive"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_input_raises_value_error_naming_it(zoo_model, kwargs, argument):
    call = {"prompts": ["A short prompt."], **kwargs}
    with pytest.raises(ValueError, match=argument):
        attention_stats(zoo_model("minilm"), call.pop("prompts"), **call)


def test_left_padding_is_refused_not_computed_wrongly(zoo_model):
    model = zoo_model("minilm")
    tokens = model.to_tokens(PROMPTS["minilm"][:2])  # [batch, pos]
    mask = model.attention_mask(tokens).flip(-1)  # padding on the left
    with statistics_attention(model), pytest.raises(ValueError, match="right padding"):
        model.bridge(tokens, attention_mask=mask)


def test_installing_twice_on_one_model_is_refused(zoo_model):
    model = zoo_model("tiny-ioi")
    with (
        statistics_attention(model),
        pytest.raises(RuntimeError, match="already installed"),
        statistics_attention(model),
    ):
        pass
    assert model.bridge.original_model.config._attn_implementation == "eager"
