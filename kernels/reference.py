"""Eager float64 reference: materialise the whole attention pattern and reduce it naively.

This is the ground truth the chunked and Triton backends are tested against. It allocates
[batch, heads_q, seq_q, seq_k] float64 tensors, so it is only meant for small inputs.
`compute_dtype=torch.float32` turns it into the eager "pattern + reductions" baseline that
benchmarks/attention_stats.py measures the chunked path against.
"""

from __future__ import annotations

import torch

from kernels.contract import (
    AttentionConfig,
    AttentionStats,
    cap_scores,
    distance_bucket_index,
    distance_buckets,
    visible_keys,
)


def reference_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: AttentionConfig,
    compute_dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor | None, AttentionStats]:
    """Attention output and statistics from the materialised pattern (checked input)."""
    batch, heads_q, seq_q, _ = q.shape
    heads_kv, seq_k = k.shape[1], k.shape[2]
    group = heads_q // heads_kv
    device = q.device
    keys = k.to(compute_dtype).repeat_interleave(group, dim=1)  # [batch, heads_q, key, d_head]
    values = v.to(compute_dtype).repeat_interleave(group, dim=1)  # [batch, heads_q, key, d_head]
    scores = q.to(compute_dtype) @ keys.transpose(-1, -2)  # [batch, heads_q, query, key]
    scores.mul_(config.sm_scale)
    scores = cap_scores(scores, config.softcap)  # [batch, heads_q, query, key]
    query_index = torch.arange(seq_q, device=device)
    key_index = torch.arange(seq_k, device=device)
    mask = visible_keys(
        query_index,
        key_index,
        seq_q=seq_q,
        seq_k=seq_k,
        causal=config.causal,
        key_lengths=config.key_lengths,
        window=config.window,
    )  # [batch or 1, 1, query, key]
    scores.masked_fill_(~mask, float("-inf"))
    peak = scores.amax(-1, keepdim=True)  # [batch, heads_q, query, 1]
    if config.sinks is not None:
        sink_logit = config.sinks.to(compute_dtype)[None, :, None, None]  # [1, heads_q, 1, 1]
        peak = torch.maximum(peak, sink_logit)
    peak = peak.masked_fill(peak == float("-inf"), 0.0)  # a row that sees no key (window)
    pattern = scores.sub_(peak).exp_()  # [batch, heads_q, query, key], in place
    total = pattern.sum(-1, keepdim=True)  # [batch, heads_q, query, 1]; 0 for an empty row
    if config.sinks is not None:
        total = total + (sink_logit - peak).exp()  # the sink's term; its column is dropped
    pattern.div_(total.clamp_min(torch.finfo(compute_dtype).tiny))  # not exp(s - lse): that
    # loses the score gaps when |s| is huge; an empty row stays all 0
    lse = (peak + total.log()).squeeze(-1)  # [batch, heads_q, query]
    del scores

    distance = (query_index[:, None] + (seq_k - seq_q) - key_index[None, :]).abs()  # [query, key]
    n_buckets = distance_buckets(seq_k)
    bucket = distance_bucket_index(distance, n_buckets)  # [query, key]
    n_mass_blocks = -(-seq_k // config.mass_block)
    block = key_index // config.mass_block  # [key]

    compute = {
        "lse": lambda: lse,
        "entropy": lambda: -torch.special.xlogy(pattern, pattern).sum(-1),
        "max_prob": lambda: pattern.amax(-1),
        "sink": lambda: pattern[..., : config.sink_tokens].sum(-1),
        "mean_distance": lambda: (pattern * distance.to(compute_dtype)).sum(-1),
        "sum_sq": lambda: (pattern * pattern).sum(-1),
        "distance_hist": lambda: pattern.new_zeros(batch, heads_q, seq_q, n_buckets).scatter_add_(
            -1, bucket.expand(batch, heads_q, seq_q, seq_k), pattern
        ),  # [batch, heads_q, query, bucket]
        "block_mass": lambda: pattern.new_zeros(batch, heads_q, seq_q, n_mass_blocks).index_add_(
            -1, block, pattern
        ),  # [batch, heads_q, query, mass block]
    }
    fields = {name: compute[name]().float() for name in config.stats}
    stats = AttentionStats(**fields, sink_tokens=config.sink_tokens, mass_block=config.mass_block)
    out = (
        (pattern @ values).to(q.dtype) if config.write_out else None
    )  # [batch, heads_q, query, d_head]
    return out, stats
