"""Statistics attention on real model families, against transformers' own eager attention.

Each family is a tiny random checkpoint written with `save_pretrained` (2 layers, 4 heads, a
zoo tokenizer copied beside it) and loaded by folder through `workbench.load_model`, as a
user would. The reference is independent of TransformerLens and of this project:
transformers' eager attention (`attn_implementation="eager"`, `output_attentions=True`), whose
float64 pattern gives entropy, max-prob and sink mass per query.

GPT-NeoX (partial rotary), Phi-3 and Falcon go through the bridge's fused-QKV rotary attention
(`JointQKVPositionEmbeddingsAttentionBridge`); the statistics attention once skipped their
rotary step there and was off by 3e-4 to 6e-4 in entropy.
"""

from __future__ import annotations

import pytest
import torch
import transformers

from analysis import attention_stats
from tests.integration.adapters.family_checkpoints import eager_patterns, entropy, save_checkpoint
from workbench import load_model

PROMPTS = [
    "When Mary and John went to the store, John gave a drink to",
    "Mary and John went to the store",
]
COMMON = {"vocab_size": 2048, "num_hidden_layers": 2, "max_position_embeddings": 128}
FAMILIES = {
    "gpt2": (
        transformers.GPT2Config,
        transformers.GPT2LMHeadModel,
        {"vocab_size": 2048, "n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 128},
    ),
    "gpt_neox": (
        transformers.GPTNeoXConfig,
        transformers.GPTNeoXForCausalLM,
        {
            **COMMON,
            "hidden_size": 64,
            "num_attention_heads": 4,
            "intermediate_size": 128,
            "rotary_pct": 0.25,
        },
    ),
    "phi3": (
        transformers.Phi3Config,
        transformers.Phi3ForCausalLM,
        {
            **COMMON,
            "hidden_size": 64,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "intermediate_size": 128,
            "pad_token_id": 0,
        },
    ),
    "falcon": (
        transformers.FalconConfig,
        transformers.FalconForCausalLM,
        {
            "vocab_size": 2048,
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "new_decoder_architecture": False,
            "multi_query": True,
            "parallel_attn": True,
            "alibi": False,
        },
    ),
    "llama": (
        transformers.LlamaConfig,
        transformers.LlamaForCausalLM,
        {
            **COMMON,
            "hidden_size": 64,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "intermediate_size": 128,
        },
    ),
    "qwen2": (
        transformers.Qwen2Config,
        transformers.Qwen2ForCausalLM,
        {
            **COMMON,
            "hidden_size": 64,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "intermediate_size": 128,
        },
    ),
    "qwen3": (
        transformers.Qwen3Config,
        transformers.Qwen3ForCausalLM,
        {
            **COMMON,
            "hidden_size": 64,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "intermediate_size": 128,
            "head_dim": 16,
        },
    ),
    "mistral": (
        transformers.MistralConfig,
        transformers.MistralForCausalLM,
        {
            **COMMON,
            "hidden_size": 64,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "intermediate_size": 128,
            "sliding_window": None,
        },
    ),
    "gemma": (
        transformers.GemmaConfig,
        transformers.GemmaForCausalLM,
        {
            **COMMON,
            "hidden_size": 64,
            "num_attention_heads": 4,
            "num_key_value_heads": 1,
            "intermediate_size": 128,
            "head_dim": 16,
        },
    ),
    "opt": (
        transformers.OPTConfig,
        transformers.OPTForCausalLM,
        {
            **COMMON,
            "hidden_size": 64,
            "num_attention_heads": 4,
            "ffn_dim": 128,
            "word_embed_proj_dim": 64,
        },
    ),
    "gptj": (
        transformers.GPTJConfig,
        transformers.GPTJForCausalLM,
        {
            "vocab_size": 2048,
            "n_embd": 64,
            "n_layer": 2,
            "n_head": 4,
            "n_positions": 128,
            "rotary_dim": 8,
        },
    ),
    "stablelm": (
        transformers.StableLmConfig,
        transformers.StableLmForCausalLM,
        {
            **COMMON,
            "hidden_size": 64,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "intermediate_size": 128,
            "partial_rotary_factor": 0.25,
        },
    ),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """`checkpoints(family)` -> the folder of a tiny random checkpoint of that family."""
    made = {}

    def get(family: str):
        if family not in made:
            config_class, model_class, kwargs = FAMILIES[family]
            torch.manual_seed(0)
            folder = tmp_path_factory.mktemp(family)
            made[family] = save_checkpoint(model_class(config_class(**kwargs)), folder)
        return made[family]

    return get


@pytest.mark.parametrize("family", sorted(FAMILIES))
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
