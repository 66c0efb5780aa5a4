"""SVD tracing on the families beyond GPT-2 and Llama: fused QKV (Phi-3, GPT-NeoX, Falcon),
partial rotary (GPT-NeoX), interleaved rotary (GPT-J), multi-query (Falcon), learned positions
(OPT), Gemma's (1 + w) RMSNorm, Qwen-3's q/k norms, and parallel attention/MLP blocks
(GPT-NeoX, GPT-J, Falcon), and Gemma-2 (norm on the attention output, soft-capped scores,
a sliding window on alternate layers).

Each family is a tiny random checkpoint with a large initialisation (sharp patterns), written
with `save_pretrained` (tests/integration/adapters/family_checkpoints.py) and loaded by folder.
Reference independent of TransformerLens and of `workbench.adapters.weights`: transformers'
eager attention. Every query row's decomposed scores (the sum of the SVD terms for each key),
scaled and put through a float64 softmax, must give transformers' attention pattern; and the
writers must sum to the residual stream. Gemma-2's reference applies its own scaling
(`query_pre_attn_scalar`), soft cap and window (the keys transformers gives zero weight).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.training_dynamics.entropy_bound import logit_scale
from circuits.graph import build_graph
from circuits.svd_tracing import _Context, decompose_firing, svd_tracing
from circuits.svd_tracing_state import prompt_states
from circuits.task_batches import task_slice
from tests.integration.adapters.family_checkpoints import (
    build_model,
    eager_patterns,
    save_checkpoint,
)
from workbench import load_model
from workbench.tasks import make_induction_task

FAMILIES = ("gpt_neox", "phi3", "gptj", "falcon", "opt", "gemma", "gemma2", "qwen3")
PARALLEL = ("gpt_neox", "gptj", "falcon")


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    """`family(name)` -> (folder, Model, induction task) of a sharp tiny checkpoint."""
    root, loaded = tmp_path_factory.mktemp("svd_tracing_families"), {}

    def get(name: str, **overrides):
        if name not in loaded:
            model = build_model(name, initializer_range=0.2, **overrides)
            folder = save_checkpoint(model, root / name)
            model = load_model(str(folder))
            loaded[name] = folder, model, make_induction_task(model, n=2, seq_len=5, seed=0)
        return loaded[name]

    return get


def _logits(model, layer: int, scores: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Raw q.k scores -> the logits transformers softmaxes (Gemma-2: its scalar, cap, window)."""
    config = model.bridge.original_model.config
    if getattr(config, "attn_logit_softcapping", None) is None:
        return scores * logit_scale(model, layer)
    cap = config.attn_logit_softcapping  # bounded logits: no masked-out key underflows to 0
    capped = cap * np.tanh(scores * config.query_pre_attn_scalar**-0.5 / cap)
    return np.where(row > 0, capped, -np.inf)  # the window's keys get exactly zero weight


@pytest.mark.parametrize("name", FAMILIES)
def test_decomposed_scores_give_transformers_pattern(family, name):
    folder, model, task = family(name)
    graph = build_graph(model)
    assert graph.parallel == (name in PARALLEL)  # MLPs read the layer input, like the heads
    state = next(prompt_states(model, task_slice(task, 0, 1), graph, batch_size=1))
    assert state.component_error < 1e-4  # writers + biases sum to the residual stream
    tokens = task.clean_tokens[:1]  # [1, pos]
    patterns = eager_patterns(folder, tokens)  # per layer [head, query, key]
    ctx, n = _Context(model, graph), tokens.shape[1]
    worst = 0.0
    for layer in range(model.n_layers):
        for head in range(model.n_heads):
            for query in range(1, n):
                scores = np.array(
                    [
                        decompose_firing(ctx, state, layer, head, query, key, 1.0).terms.sum()
                        for key in range(query + 1)
                    ]
                )  # [key] raw q.k, from the SVD terms
                row = patterns[layer][head, query, : query + 1].numpy()
                logits = _logits(model, layer, scores, row)  # [key]
                soft = np.exp(logits - logits.max())
                soft /= soft.sum()
                worst = max(worst, float(np.abs(soft - row).max()))
    sharpness = max(float(p.max(-1).values[:, 1:].min()) for p in patterns)
    assert sharpness < 0.99 and max(float(p[:, 4:].max()) for p in patterns) > 0.3
    assert worst < 1e-5, f"{name}: decomposed scores miss transformers' pattern by {worst:.2e}"


@pytest.mark.parametrize("name", FAMILIES)
def test_tracing_runs_and_scores_edges(family, name):
    _, model, task = family(name)
    circuit = svd_tracing(model, task, n_prompts=2, attn_threshold=0.05, skip_first_key=False)
    assert circuit.config["traced_heads"], "nothing traced"
    assert circuit.config["component_error"] < 1e-4
    scored = [e for e, s in zip(circuit.edges, circuit.scores.tolist(), strict=True) if s]
    assert any(e.endswith("<q>") or e.endswith("<k>") for e in scored)
    assert torch.isfinite(circuit.scores).all()
