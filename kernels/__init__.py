"""Attention with per-query statistics, without materialising the n x n pattern.

One public function, `attention_with_stats`, dispatches to four backends that compute the same
thing: a Triton kernel (CUDA, or the Triton interpreter with TRITON_INTERPRET=1), a chunked
pure-torch path (the CPU default), the augmented route (torch's CPU flash kernel with extra value
columns: scalar statistics only, the CPU choice for lse/entropy/sink without the output) and an
eager float64 reference (the ground truth, small inputs only). Knows nothing about models:
imports torch (and triton, lazily) only.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from kernels.contract import (
    DEFAULT_STATS,
    SCALAR_STATS,
    STAT_NAMES,
    AttentionStats,
    distance_buckets,
    validate_inputs,
)

__all__ = [
    "DEFAULT_STATS",
    "SCALAR_STATS",
    "STAT_NAMES",
    "AttentionStats",
    "attention_with_stats",
    "distance_buckets",
]


def attention_with_stats(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    sm_scale: float | None = None,
    backend: str = "auto",
    stats: Iterable[str] | None = None,
    key_lengths: torch.Tensor | None = None,
    sink_tokens: int = 1,
    mass_block: int = 64,
    write_out: bool = True,
    chunk_size: int = 256,
    window: int | None = None,
    softcap: float | None = None,
    sinks: torch.Tensor | None = None,
) -> tuple[torch.Tensor | None, AttentionStats]:
    """Scaled dot-product attention plus per-query statistics of its pattern.

    q: [batch, heads_q, seq_q, d_head]; k, v: [batch, heads_kv, seq_k, d_head] with
    heads_q % heads_kv == 0 (query head h reads kv head h // (heads_q // heads_kv)).
    Causal masks are bottom-right aligned (query i sees key j iff j <= i + seq_k - seq_q);
    key_lengths [batch] masks keys j >= key_lengths[b]. window (causal only) keeps the keys
    j > i' - window of query i at key position i' (transformers' `sliding_window`); softcap
    replaces each scaled score s by softcap * tanh(s / softcap) before the softmax (Gemma-2's
    `attn_logit_softcapping`); statistics then cover the visible keys and the capped scores.
    sinks [heads_q] adds one learned logit per head to the softmax denominator (gpt-oss's
    `s_aux`): lse includes it, the other statistics cover the real keys' probabilities.
    backend "auto" picks "triton" for CUDA tensors; on CPU "augmented" (kernels.augmented: torch's
    CPU flash kernel with augmented values) for lse/entropy/sink without the output where that
    route serves the call, else "chunked". Returns (out [batch, heads_q, seq_q, d_head] in q's
    dtype, or None when write_out=False; AttentionStats with float32 fields, None where not
    requested).
    Raises ValueError naming the argument on bad input, and naming the overflow when q and k
    are so large that float32 scores could overflow (`kernels.contract.SCORE_LIMIT`).
    """
    config = validate_inputs(
        q,
        k,
        v,
        causal=causal,
        sm_scale=sm_scale,
        backend=backend,
        stats=stats,
        key_lengths=key_lengths,
        sink_tokens=sink_tokens,
        mass_block=mass_block,
        write_out=write_out,
        chunk_size=chunk_size,
        window=window,
        softcap=softcap,
        sinks=sinks,
    )
    if config.backend == "reference":
        from kernels.reference import reference_attention

        return reference_attention(q, k, v, config)
    if config.backend == "augmented" or (backend == "auto" and _auto_augmented(q, k, config)):
        from kernels.augmented import augmented_attention

        return augmented_attention(q, k, v, config)
    if config.backend == "chunked":
        from kernels.chunked import chunked_attention

        return chunked_attention(q, k, v, config)
    from kernels.triton_launcher import triton_attention

    return triton_attention(q, k, v, config)


def _auto_augmented(q: torch.Tensor, k: torch.Tensor, config) -> bool:
    """Whether "auto" on CPU takes the augmented route (kernels.augmented): only where
    benchmarks/kernel_cpu_stats.py measured it faster than the chunked path, i.e. without the
    output (with it both cost ~2.2x SDPA), every requested statistic in AUTO_STATS, seq_k >=
    AUTO_MIN_KEYS, and a call the route serves accurately (its entropy bound included)."""
    from kernels import augmented

    if config.backend != "chunked" or config.write_out or k.shape[2] < augmented.AUTO_MIN_KEYS:
        return False
    if not set(config.stats) <= set(augmented.AUTO_STATS):
        return False
    return augmented.serves(q, k, config)
