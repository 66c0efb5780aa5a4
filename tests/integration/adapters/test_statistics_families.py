"""Statistics attention on real model families, against transformers' own eager attention.

Every family of the shared table (family_checkpoints.FAMILIES: the decoders users load, and
BERT / RoBERTa) as a tiny random checkpoint written with `save_pretrained` (2 layers, 4 heads,
a zoo tokenizer copied beside it) and loaded by folder through `workbench.load_model`, as a
user would. The reference is independent of TransformerLens and of this project:
transformers' eager attention (`attn_implementation="eager"`, `output_attentions=True`), whose
float64 pattern gives entropy, max-prob and sink mass per query.

GPT-NeoX (partial rotary), Phi-3 and Falcon go through the bridge's fused-QKV rotary attention
(`JointQKVPositionEmbeddingsAttentionBridge`); the statistics attention once skipped their
rotary step there and was off by 3e-4 to 6e-4 in entropy. Families whose attention the
kernel does not reproduce (ALiBi, custom scores, attention outside transformers' interface)
must refuse with `NotImplementedError`.
"""

from __future__ import annotations

import pytest

from analysis import attention_stats
from tests.integration.adapters.family_checkpoints import (
    FAMILIES,
    build_checkpoint,
    eager_patterns,
    entropy,
)
from workbench import load_model

PROMPTS = [
    "When Mary and John went to the store, John gave a drink to",
    "Mary and John went to the store",
]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """`checkpoints(family)` -> the folder of a tiny random checkpoint of that family."""
    root = tmp_path_factory.mktemp("families")
    made = {}

    def get(family: str):
        if family not in made:
            made[family] = build_checkpoint(family, root / family)
        return made[family]

    return get


# families whose attention the statistics kernel does not reproduce -> the refusal's message
REFUSED = {
    "bloom": "computes attention its own way",  # ALiBi
    "gpt_neo": "does not call transformers' attention interface",
}


@pytest.mark.parametrize("family", sorted(REFUSED))
def test_statistics_refuse_attention_they_do_not_reproduce(checkpoints, family):
    model = load_model(str(checkpoints(family)))
    with pytest.raises(NotImplementedError, match=REFUSED[family]):
        attention_stats(model, PROMPTS)


@pytest.mark.parametrize("family", sorted(set(FAMILIES) - set(REFUSED)))
def test_statistics_equal_transformers_eager_attention(checkpoints, family):
    folder = checkpoints(family)
    model = load_model(str(folder))
    stats = attention_stats(model, PROMPTS)
    for index, prompt in enumerate(PROMPTS):
        tokens = model.to_tokens(prompt)  # [1, pos]
        n = tokens.shape[1]
        for layer, pattern in enumerate(eager_patterns(folder, tokens)):
            ours = stats.entropy[index, layer, :, :n].double()  # [head, query]
            assert (ours - entropy(pattern)).abs().max().item() < 1e-5, (family, layer, "entropy")
            max_prob = stats.max_prob[index, layer, :, :n].double()
            assert (max_prob - pattern.max(-1).values).abs().max().item() < 1e-5
            sink = stats.sink[index, layer, :, :n].double()
            assert (sink - pattern[..., 0]).abs().max().item() < 1e-5
