"""Scalar attention statistics from torch's CPU flash kernel, through augmented values.

torch's `aten._scaled_dot_product_flash_attention_for_cpu` returns the output P V and the
log-sum-exp of every row. Statistics linear in the attention weights P = softmax(s) follow from
extra value columns (the kernel needs V as wide as Q and K, so Q and K get zero columns, which
change no score, when the value block is wider than d_head):

- entropy: V gets the keys K, so the call returns w_i = sum_j p_ij k_j, hence
  sum_j p_ij s_ij = sm_scale q_i . w_i and H_i = lse_i - sum_j p_ij s_ij;
- mean_distance (causal only: there |i - j| = i - j): V gets a position column j, the call
  returns sum_j p_ij j, and the mean distance is i - sum_j p_ij j;
- sink: the first sink_tokens scores are recomputed ([seq_q, sink_tokens] per head) and
  sink_i = sum_j exp(s_ij - lse_i);
- sum_sq: sum_j p_ij^2 = exp(lse2_i - 2 lse_i), lse2 the log-sum-exp of the doubled scores
  (a second kernel call with 2 sm_scale);
- max_prob = exp(max_j s_ij - lse_i), the row max from a chunked Q K^T pass (a matmul and a max,
  no softmax);
- the attention output comes from the same call as the entropy/distance columns.
Not served here (they need the pattern itself): distance_hist, block_mass.

Cost (benchmarks/kernel_cpu_stats.py, docs/scale.md; CPU time, 12 heads, d_head 64, causal,
one thread): a kernel call costs roughly in proportion to its padded width d, so lse+entropy+sink
without the output (d = 65) cost 1.07-1.16x SDPA at n = 2,048-4,096 against the chunked path's
1.53-1.69x (two runs); with the output (d = 128) ~2.2x, no better than the chunked path; sum_sq (a second
call) and max_prob (a Q K^T max pass) each add about one SDPA, so with them the chunked path's
single pass is cheaper. backend="auto" therefore sends only the first case here (AUTO_STATS,
write_out=False, seq_k >= AUTO_MIN_KEYS); backend="augmented" takes every call it serves.

Accuracy: lse - sum_j p_j s_j cancels when a row is peaked (H near 0 while |s| is large): the
float32 error is about eps (|lse| + sm_scale |q_i| . max_j |k_j|), not eps H. Before any work
the route bounds that error per row (`entropy_error_bound`); if any row's bound exceeds
ENTROPY_ATOL the whole call goes to the chunked path instead. The mean distance is i - sum_j p_j j
with sum_j p_j j ~ i in float32: its error is about eps * seq_k, so it is served only for
seq_k <= MEAN_DISTANCE_MAX_KEYS (above, the chunked path computes the call).

Scope (anything else runs the chunked path, which gives the same contract): CPU tensors, no
key_lengths, window, softcap or sinks, and causal only with seq_q == seq_k (the kernel's causal
mask is top-left aligned, the contract's bottom-right; they agree only then). Inputs are computed
in float32 whatever their dtype (as the chunked path); `out` is cast back. GQA expands the kv
heads (a copy of K and V, O(n d), not O(n^2)).
"""

from __future__ import annotations

import math

import torch

from kernels.contract import SCALAR_STATS, AttentionConfig, AttentionStats

SERVED = SCALAR_STATS  # lse, entropy, max_prob, sink, mean_distance, sum_sq
EPS32 = torch.finfo(torch.float32).eps
# Max abs entropy error (nats) the route accepts (a bound: typical rows are 10-100x better).
ENTROPY_ATOL = 1e-4
ERROR_FACTOR = 1.0  # measured worst |error| / bound on adversarial rows (n <= 4,096): < 0.5
# i - sum_j p_j j has float32 error up to ~ eps * seq_k (measured 7e-5 at 256 keys on diffuse
# rows, where the distance is ~100; 8e-7 on rows peaked at the diagonal).
MEAN_DISTANCE_MAX_KEYS = 256
MAX_SCORE_ELEMENTS = 2**23  # the max_prob pass's score chunk: at most 32 MB (and 512 rows)
MAX_SINK_TOKENS = 64  # sink scores [seq_q, sink_tokens] per head are materialised
# What backend="auto" sends here on CPU (kernels._auto_augmented, write_out=False only): where
# benchmarks/kernel_cpu_stats.py measured the route faster than the chunked path.
AUTO_STATS = ("lse", "entropy", "sink")
AUTO_MIN_KEYS = 512


def unsupported_reason(q: torch.Tensor, k: torch.Tensor, config: AttentionConfig) -> str | None:
    """Why this call cannot take the augmented route (None when it can); a cheap, input-free
    check: the entropy accuracy bound is checked separately, on the data."""
    seq_q, seq_k = q.shape[2], k.shape[2]
    extra = [name for name in config.stats if name not in SERVED]
    if extra:
        return f"statistics {extra} need the pattern"
    if q.device.type != "cpu":
        return "the flash kernel used here is CPU-only"
    for name in ("key_lengths", "window", "softcap", "sinks"):
        if getattr(config, name) is not None:
            return f"{name} is not supported"
    if config.wants("sink") and config.sink_tokens > MAX_SINK_TOKENS:
        return f"sink_tokens > {MAX_SINK_TOKENS} (the sink scores are computed eagerly)"
    if config.causal and seq_q != seq_k:
        return "causal with seq_q != seq_k (the kernel's causal mask is top-left aligned)"
    if config.wants("mean_distance"):
        if not config.causal:
            return "mean_distance without causality is not linear in the weights"
        if seq_k > MEAN_DISTANCE_MAX_KEYS:
            return f"mean_distance loses float32 precision beyond {MEAN_DISTANCE_MAX_KEYS} keys"
    return None


def entropy_error_bound(q: torch.Tensor, k: torch.Tensor, sm_scale: float) -> torch.Tensor:
    """Per-row bound [batch, heads_q, seq_q] on |H_augmented - H| (nats, float32 rounding):
    ERROR_FACTOR * eps * (2 sm_scale |q_i| . max_j |k_j| + log seq_k), which bounds
    eps * (|lse_i| + sm_scale |q_i| . |w_i|) since |s_ij| <= sm_scale |q_i| . max_j |k_j|."""
    group = q.shape[1] // k.shape[1]
    k_peak = k.float().abs().amax(-2).repeat_interleave(group, dim=1)  # [batch, heads_q, d_head]
    reach = q.float().abs() @ k_peak[..., None]  # [batch, heads_q, seq_q, 1]
    return ERROR_FACTOR * EPS32 * (2 * sm_scale * reach[..., 0] + math.log(k.shape[2]))


def serves(q: torch.Tensor, k: torch.Tensor, config: AttentionConfig) -> bool:
    """Whether the augmented route computes this call (all checks, the data-dependent one too)."""
    if unsupported_reason(q, k, config) is not None:
        return False
    if config.wants("entropy"):
        return bool(entropy_error_bound(q, k, config.sm_scale).max() <= ENTROPY_ATOL)
    return True


def augmented_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, config: AttentionConfig
) -> tuple[torch.Tensor | None, AttentionStats]:
    """Output and scalar statistics via the flash kernel; calls it cannot serve (see the module
    docstring) go to the chunked path, with the same contract."""
    if not serves(q, k, config):
        from kernels.chunked import chunked_attention

        return chunked_attention(q, k, v, config)
    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    batch, heads_q, seq_q, d_head = q.shape
    seq_k, group = k.shape[2], heads_q // k.shape[1]
    scale = config.sm_scale
    query = q.float()  # [batch, heads_q, query, d_head]
    keys = _per_query_head(k, group)  # [batch, heads_q, key, d_head]
    columns = []  # value blocks, each [batch, heads_q, key, width]
    if config.write_out:
        columns.append(_per_query_head(v, group))
    if config.wants("entropy"):
        columns.append(keys)
    if config.wants("mean_distance"):
        position = torch.arange(seq_k, dtype=torch.float32)  # [key]
        columns.append(position.expand(batch, heads_q, seq_k)[..., None])
    width = sum(c.shape[-1] for c in columns)
    padded = max(d_head, width)
    values = torch.cat(columns, -1) if len(columns) > 1 else (columns or [keys])[0]
    fold, lse = flash(
        _pad(query, padded),
        _pad(keys, padded),
        _pad(values, padded),  # [batch, heads_q, key, padded]
        0.0,
        config.causal,
        scale=scale,
    )  # fold [batch, heads_q, query, padded]: sum_j p_j values_j; lse [batch, heads_q, query]
    results = {"lse": lse}
    offset = 0
    out = None
    if config.write_out:
        out = fold[..., :d_head].to(q.dtype).contiguous()  # [batch, heads_q, query, d_head]
        offset = d_head
    if config.wants("entropy"):
        mean_key = fold[..., offset : offset + d_head]  # sum_j p_j k_j
        mean_score = scale * (query * mean_key).sum(-1)  # [batch, heads_q, query]
        results["entropy"] = (lse - mean_score).clamp_min(0.0)
        offset += d_head
    if config.wants("mean_distance"):
        query_pos = torch.arange(seq_q, dtype=torch.float32) + (seq_k - seq_q)  # [query]
        results["mean_distance"] = (query_pos - fold[..., offset]).clamp_min(0.0)
    if config.wants("sink"):
        results["sink"] = _sink(query, keys, lse, config)
    if config.wants("sum_sq"):
        _, lse2 = flash(query, keys, keys, 0.0, config.causal, scale=2 * scale)
        results["sum_sq"] = torch.exp(lse2 - 2 * lse)  # [batch, heads_q, query]
    if config.wants("max_prob"):
        results["max_prob"] = torch.exp(_row_max(query, keys, config) - lse)
    stats = AttentionStats(
        **{name: results[name].float().contiguous() for name in config.stats},
        sink_tokens=config.sink_tokens,
        mass_block=config.mass_block,
    )
    return out, stats


def _per_query_head(t: torch.Tensor, group: int) -> torch.Tensor:
    """float32 [batch, heads_q, seq, d]: kv head h // group for query head h (no copy when
    t is float32 and group is 1)."""
    t = t.float()
    return t if group == 1 else t.repeat_interleave(group, dim=1)


def _pad(t: torch.Tensor, width: int) -> torch.Tensor:
    """t [..., d] with zero columns up to `width` (t itself when already that wide)."""
    return t if t.shape[-1] == width else torch.nn.functional.pad(t, (0, width - t.shape[-1]))


def _sink(query, keys, lse, config: AttentionConfig) -> torch.Tensor:
    """Mass on the first sink_tokens keys: sum_j exp(s_j - lse) over those a row sees."""
    seq_q, seq_k = query.shape[2], keys.shape[2]
    first = min(config.sink_tokens, seq_k)
    scores = (query * config.sm_scale) @ keys[..., :first, :].transpose(-1, -2)  # [b, h, q, t]
    weights = torch.exp(scores - lse[..., None])  # [batch, heads_q, query, first]
    if config.causal:
        query_pos = torch.arange(seq_q)[:, None] + (seq_k - seq_q)  # [query, 1]
        weights = weights.masked_fill(torch.arange(first)[None, :] > query_pos, 0.0)
    return weights.sum(-1)  # [batch, heads_q, query]


def _row_max(query, keys, config: AttentionConfig) -> torch.Tensor:
    """Max scaled score of each row [batch, heads_q, query], one chunk of query rows at a time
    (scores [batch, heads_q, rows, key] of at most MAX_SCORE_ELEMENTS floats, or 16 rows;
    causal: only the keys the chunk sees, the diagonal tile masked)."""
    seq_q, seq_k = query.shape[2], keys.shape[2]
    offset = seq_k - seq_q
    peaks = []
    rows = max(16, min(512, MAX_SCORE_ELEMENTS // (query.shape[0] * query.shape[1] * seq_k)))
    for q0 in range(0, seq_q, rows):
        q1 = min(q0 + rows, seq_q)
        key_end = min(seq_k, q1 + offset) if config.causal else seq_k
        chunk = query[:, :, q0:q1] * config.sm_scale  # [batch, heads_q, chunk, d_head]
        scores = chunk @ keys[:, :, :key_end].transpose(-1, -2)  # [batch, heads_q, chunk, key]
        if config.causal:  # only the tile from the chunk's first query position on is masked
            start = q0 + offset
            query_pos = torch.arange(q0, q1)[:, None] + offset  # [chunk, 1]
            hidden = torch.arange(start, key_end)[None, :] > query_pos  # [chunk, key - start]
            scores[..., start:].masked_fill_(hidden, float("-inf"))
        peaks.append(scores.amax(-1))
    return torch.cat(peaks, -1)  # [batch, heads_q, query]
