"""Statistics attention on sliding-window and soft-capped families, against transformers' eager.

Gemma-2 (alternating sliding/full layers, `attn_logit_softcapping`), Gemma-3 text
(`Gemma3ForCausalLM`: sliding layers, optional soft-capping) and Mistral (a sliding window on
every layer) as tiny random checkpoints of the shared family table (family_checkpoints.py),
written with `save_pretrained` (a zoo tokenizer copied beside them) and loaded by folder through `workbench.load_model`. The window is 4 tokens and the
prompts are longer, so the window masks most keys. gpt-oss adds learned attention sinks (`s_aux`,
one logit per head in the softmax denominator; its `output_attentions` drops the sink column, so
the real keys' probabilities sum to less than 1, as the kernel's statistics do). The reference is transformers' eager
attention (`output_attentions=True`), float64 entropy, max-prob and sink mass per query; a
statistics kernel that ignored the window or the cap is off by far more than 1e-5 (checked by
`test_window_and_softcap_change_the_statistics`).
"""

from __future__ import annotations

import pytest
import torch

from analysis import attention_stats
from tests.integration.adapters.family_checkpoints import (
    build_model,
    eager_patterns,
    entropy,
    save_checkpoint,
)
from workbench import load_model

PROMPTS = [
    "When Mary and John went to the store, John gave a drink to",
    "Mary and John went to the store",
]
WINDOW = 4
# family (in the shared table) -> config overrides; the table's Gemma-2/3 and gpt-oss already
# slide over 4 tokens (Gemma-2/3 soft-cap too), Mistral's window is switched on here.
FAMILY_OVERRIDES = {
    "gemma2": {},
    "gemma3": {},
    "mistral": {"sliding_window": WINDOW},
    "gpt_oss": {},
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """`checkpoints(family)` -> the folder of a tiny random checkpoint of that family."""
    made = {}

    def get(family: str):
        if family not in made:
            model = build_model(family, **FAMILY_OVERRIDES[family])
            assert model.config.sliding_window == WINDOW
            with torch.no_grad():  # q/k large enough that the 3.0/5.0 caps bite
                for name, weight in model.named_parameters():
                    if name.endswith(("q_proj.weight", "k_proj.weight")):
                        weight.mul_(8.0)
                    if name.endswith(".sinks"):  # gpt-oss: sink logits that take real mass
                        weight.copy_(torch.randn(weight.shape) * 2.0)
            made[family] = save_checkpoint(model, tmp_path_factory.mktemp(family))
        return made[family]

    return get


@pytest.mark.parametrize("family", sorted(FAMILY_OVERRIDES))
def test_statistics_equal_transformers_eager_attention(checkpoints, family):
    folder = checkpoints(family)
    model = load_model(str(folder))
    stats = attention_stats(model, PROMPTS)
    for index, prompt in enumerate(PROMPTS):
        tokens = model.to_tokens(prompt)  # [1, pos]
        n = tokens.shape[1]
        assert n > WINDOW
        for layer, pattern in enumerate(eager_patterns(folder, tokens)):
            ours = stats.entropy[index, layer, :, :n].double()  # [head, query]
            assert (ours - entropy(pattern)).abs().max().item() < 1e-5, (family, layer)
            max_prob = stats.max_prob[index, layer, :, :n].double()
            assert (max_prob - pattern.max(-1).values).abs().max().item() < 1e-5
            sink = stats.sink[index, layer, :, :n].double()
            assert (sink - pattern[..., 0]).abs().max().item() < 1e-5
            if family == "gpt_oss":  # the learned sinks take visible mass off the real keys
                assert (1 - pattern.sum(-1)).max().item() > 0.05


def test_window_and_softcap_change_the_statistics(checkpoints):
    """The comparison above can fail: dropping the window or the cap moves the entropy."""
    folder = checkpoints("gemma2")
    model = load_model(str(folder))
    stats = attention_stats(model, PROMPTS[:1])
    tokens = model.to_tokens(PROMPTS[0])  # [1, pos]
    n = tokens.shape[1]
    ours = stats.entropy[0, :, :, :n].double()  # [layer, head, query]
    no_window = eager_patterns(folder, tokens, sliding_window=n)
    no_cap = eager_patterns(folder, tokens, attn_logit_softcapping=None)
    assert (ours[0] - entropy(no_window[0])).abs().max().item() > 1e-2  # layer 0 slides
    assert (ours[1] - entropy(no_cap[1])).abs().max().item() > 1e-2  # layer 1: full, capped


REFUSED = {  # case -> (family, config overrides, the refusal's message)
    "gemma3_bidirectional_window": (
        "gemma3",
        {"use_bidirectional_attention": True},
        "only plain causal, bidirectional or causal sliding-window masks",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unsupported_attention_is_refused(tmp_path, case):
    """Learned attention sinks and bidirectional windows raise instead of computing wrongly."""
    family, overrides, message = REFUSED[case]
    model = load_model(str(save_checkpoint(build_model(family, **overrides), tmp_path)))
    with pytest.raises(NotImplementedError, match=message):
        attention_stats(model, PROMPTS[:1])
