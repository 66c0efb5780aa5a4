"""Fixtures for circuit tests: small tasks on the zoo models and a random GQA Llama."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def ioi(zoo_model):
    from workbench.tasks import make_task

    model = zoo_model("tiny-ioi")
    return model, make_task("ioi", model, n=8, seed=3)


@pytest.fixture(scope="session")
def induction(zoo_model):
    from workbench.tasks import make_task

    model = zoo_model("tiny-induction")
    return model, make_task("induction", model, n=6, seed=3)


@pytest.fixture(scope="session")
def random_gqa(zoo_model):
    """A random-weight Llama (2 layers, 4 query / 2 kv heads) built offline, induction task."""
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import LlamaConfig, LlamaForCausalLM

    from workbench.model import Model
    from workbench.tasks.induction import make_induction_task

    base = zoo_model("tiny-induction")
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=base.d_vocab,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=64,
        bos_token_id=base.tokenizer.bos_token_id,
    )
    hf = LlamaForCausalLM(cfg).eval()
    bridge = TransformerBridge.boot_transformers(base.path, hf_model=hf, tokenizer=base.tokenizer)
    model = Model(bridge=bridge, name="random-gqa", source="local", is_causal=True)
    return model, make_induction_task(model, n=4, seq_len=8, seed=1)
