"""Chunked pure-torch attention with statistics: the CPU default backend.

Loops over query chunks, and inside each over key chunks, with the online softmax of
FlashAttention: a running row max m, normaliser l = sum_j exp(s_j - m) and an output accumulator.
Every statistic is an accumulator relative to the same running max, rescaled by
alpha = exp(m_old - m_new) whenever m grows:

- entropy: T = sum_j exp(s_j - m) (s_j - m), rescaled as T <- alpha (T + (m_old - m_new) l_old);
  at the end H = log l - T / l (stable: no log of a probability is ever taken);
- max_prob = 1 / l (the largest term is exp(m - m) = 1);
- sink, mean_distance, distance_hist, block_mass: plain sums of exp(s_j - m) times a weight,
  rescaled by alpha and divided by l at the end; sum_sq is rescaled by alpha^2, divided by l^2.

Memory: O(batch * heads * chunk_size^2) for the score chunk, never [seq_q, seq_k] per head (the
block_mass output itself is [seq_q, seq_k / mass_block]). Computation is float32 whatever the
input dtype; the output is cast back to it. Key chunks a causal, sliding-window or key_lengths
mask hides entirely are skipped; masks are only built for chunks that need them. Soft-capping
(softcap * tanh(s / softcap)) is applied to each score tile before the mask. A row may see no key
in a tile (or, with window and key_lengths, in any tile): its running max stays -inf, shifts use 0
instead, and an empty row ends with out 0, lse -inf and all other statistics 0.
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


def chunked_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, config: AttentionConfig
) -> tuple[torch.Tensor | None, AttentionStats]:
    """Attention output and statistics, one (query chunk, key chunk) tile at a time."""
    batch, heads_q, seq_q, d_head = q.shape
    heads_kv, seq_k = k.shape[1], k.shape[2]
    group = heads_q // heads_kv
    n_buckets = distance_buckets(seq_k)
    n_mass_blocks = -(-seq_k // config.mass_block)
    rows = (batch, heads_kv, group, seq_q)
    widths = {"distance_hist": (n_buckets,), "block_mass": (n_mass_blocks,)}
    results = {
        name: q.new_zeros(*rows, *widths.get(name, ()), dtype=torch.float32)
        for name in config.stats
    }  # each [batch, heads_kv, group, query(, width)]
    out = q.new_empty(batch, heads_kv, group, seq_q, d_head) if config.write_out else None

    for q0 in range(0, seq_q, config.chunk_size):
        q1 = min(q0 + config.chunk_size, seq_q)
        query_chunk = q[:, :, q0:q1].reshape(batch, heads_kv, group, q1 - q0, d_head).float()
        query_chunk = query_chunk * config.sm_scale  # [batch, heads_kv, group, query, d_head]
        state = _QueryChunk(q0, q1, query_chunk, config, seq_q, seq_k, n_buckets, n_mass_blocks)
        for k0 in range(state.key_start, state.key_end, config.chunk_size):
            k1 = min(k0 + config.chunk_size, state.key_end)
            state.add_keys(
                k0, k1, k[:, :, None, k0:k1], v[:, :, None, k0:k1] if config.write_out else None
            )
        for name, value in state.finish().items():
            results[name][:, :, :, q0:q1] = value
        if out is not None:
            out[:, :, :, q0:q1] = state.output()

    def to_heads(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(batch, heads_q, *t.shape[3:])  # [batch, heads_q, query(, width)]

    stats = AttentionStats(
        **{name: to_heads(value) for name, value in results.items()},
        sink_tokens=config.sink_tokens,
        mass_block=config.mass_block,
    )
    return (to_heads(out) if out is not None else None), stats


class _QueryChunk:
    """Running softmax state and statistic accumulators for one chunk of queries."""

    def __init__(self, q0, q1, query_chunk, config, seq_q, seq_k, n_buckets, n_mass_blocks):
        self.q0, self.q1, self.config = q0, q1, config
        self.seq_q, self.seq_k, self.n_buckets = seq_q, seq_k, n_buckets
        self.query = query_chunk  # [batch, heads_kv, group, query, d_head], pre-scaled
        self.offset = seq_k - seq_q  # query i sits at key position i + offset
        self.query_index = torch.arange(q0, q1, device=query_chunk.device)
        key_end = seq_k
        if config.causal:
            key_end = min(key_end, q1 - 1 + self.offset + 1)
        self.min_length = seq_k
        if config.key_lengths is not None:
            key_end = min(key_end, int(config.key_lengths.max()))
            self.min_length = int(config.key_lengths.min())
        self.key_end = key_end
        self.key_start = 0  # first key some row of the chunk sees
        if config.window is not None:
            self.key_start = max(0, q0 + self.offset - config.window + 1)
        rows = query_chunk.shape[:-1]  # (batch, heads_kv, group, query)
        self.m = query_chunk.new_full(rows, float("-inf"))  # running max of the scaled scores
        self.l = query_chunk.new_zeros(rows)  # sum_j exp(s_j - m)
        wants = config.wants
        self.acc = query_chunk.new_zeros(query_chunk.shape) if config.write_out else None
        self.t = query_chunk.new_zeros(rows) if wants("entropy") else None
        self.sink = query_chunk.new_zeros(rows) if wants("sink") else None
        self.distance = query_chunk.new_zeros(rows) if wants("mean_distance") else None
        self.sum_sq = query_chunk.new_zeros(rows) if wants("sum_sq") else None
        self.hist = query_chunk.new_zeros(*rows, n_buckets) if wants("distance_hist") else None
        self.blocks = query_chunk.new_zeros(*rows, n_mass_blocks) if wants("block_mass") else None

    def _mask(self, key_index: torch.Tensor) -> torch.Tensor | None:
        """Visibility [batch or 1, 1, 1, query, key] for this tile, or None when all is visible."""
        k1 = int(key_index[-1]) + 1
        crosses_diagonal = self.config.causal and k1 - 1 > self.q0 + self.offset
        window = self.config.window
        crosses_window = (
            window is not None and int(key_index[0]) <= self.q1 - 1 + self.offset - window
        )
        if not crosses_diagonal and not crosses_window and k1 <= self.min_length:
            return None
        mask = visible_keys(
            self.query_index,
            key_index,
            seq_q=self.seq_q,
            seq_k=self.seq_k,
            causal=self.config.causal,
            key_lengths=self.config.key_lengths,
            window=window,
        )  # [batch or 1, 1, query, key]
        return mask[:, :, None]

    def add_keys(self, k0: int, k1: int, keys: torch.Tensor, values: torch.Tensor | None) -> None:
        """Fold keys [k0, k1) into the running state.

        keys, values: [batch, heads_kv, 1, key, d_head] (values None when write_out is off).
        """
        key_index = torch.arange(k0, k1, device=keys.device)
        scores = self.query @ keys.float().transpose(-1, -2)  # [batch, heads_kv, group, query, key]
        scores = cap_scores(scores, self.config.softcap)  # [batch, heads_kv, group, query, key]
        mask = self._mask(key_index)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        m_new = torch.maximum(self.m, scores.amax(-1))  # [batch, heads_kv, group, query]
        # -inf while a row has seen no key yet: shift by 0 there (its weights are all 0 anyway)
        m_safe = m_new.masked_fill(m_new == float("-inf"), 0.0)  # [batch, heads_kv, group, query]
        alpha = torch.exp(self.m - m_safe)  # 0 while the row had seen no key
        shifted = scores - m_safe[..., None]  # [batch, heads_kv, group, query, key]; -inf if masked
        weights = torch.exp(shifted)  # exp(s_j - m_new): 0 where masked
        row_sum = weights.sum(-1)
        if self.t is not None:
            if mask is not None:
                shifted = shifted.masked_fill(~mask, 0.0)  # avoid 0 * -inf
            tile_t = (weights * shifted).sum(-1)
            gap = torch.where(self.l > 0, (self.m - m_safe) * self.l, 0.0)  # no -inf * 0
            self.t = alpha * (self.t + gap) + tile_t
        self.l = self.l * alpha + row_sum
        if self.sink is not None:
            in_sink = max(0, min(self.config.sink_tokens, k1) - k0)
            self.sink = self.sink * alpha + weights[..., :in_sink].sum(-1)
        if self.distance is not None or self.hist is not None:
            key_pos = self.query_index[:, None] + self.offset  # [query, 1]
            distance = (key_pos - key_index[None, :]).abs()  # [query, key]
        if self.distance is not None:
            self.distance = self.distance * alpha + (weights * distance.float()).sum(-1)
        if self.sum_sq is not None:
            self.sum_sq = self.sum_sq * alpha * alpha + (weights * weights).sum(-1)
        if self.hist is not None:
            self.hist.mul_(alpha[..., None])
            bucket = distance_bucket_index(distance, self.n_buckets)  # [query, key]
            low, high = int(bucket.min()), int(bucket.max())
            if low == high:  # far tiles usually fall into a single bucket
                self.hist[..., low] += row_sum
            else:
                self.hist.scatter_add_(-1, bucket.expand(weights.shape), weights)
        if self.blocks is not None:
            last_block = (k1 - 1) // self.config.mass_block + 1
            self.blocks[..., :last_block].mul_(alpha[..., None])
            self.blocks.index_add_(-1, key_index // self.config.mass_block, weights)
        if self.acc is not None:
            self.acc = (
                self.acc * alpha[..., None] + weights @ values.float()
            )  # [..., query, d_head]
        self.m = m_new

    def finish(self) -> dict[str, torch.Tensor]:
        """Normalised statistics: name -> [batch, heads_kv, group, query(, width)]."""
        lse, inv_l = self._normaliser()

        def entropy() -> torch.Tensor:
            if self.config.sinks is None:
                value = torch.log(self.l) - self.t * inv_l
            else:  # H = -sum_j p_j log p_j over the real keys = f (l (lse - m) - T), f = inv_l
                value = inv_l * (self.l * (lse - self.m) - self.t)
            return torch.where(self.l > 0, value, 0.0).clamp_min(0.0)  # 0 for an empty row

        values = {
            "lse": lambda: lse,
            "entropy": entropy,
            "max_prob": lambda: inv_l,
            "sink": lambda: self.sink * inv_l,
            "mean_distance": lambda: self.distance * inv_l,
            "sum_sq": lambda: self.sum_sq * inv_l * inv_l,
            "distance_hist": lambda: self.hist * inv_l[..., None],
            "block_mass": lambda: self.blocks * inv_l[..., None],
        }
        return {name: values[name]() for name in self.config.stats}

    def _normaliser(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(lse, f) [batch, heads_kv, group, query]: p_j = exp(s_j - m) * f. Without sinks
        f = 1 / l; with a sink logit z, lse = logaddexp(m + log l, z) and f = exp(m - lse).
        A row that saw no key has f = 0 (and lse -inf, or z with a sink)."""
        lse = self.m + torch.log(self.l)  # -inf for a row that saw no key
        if self.config.sinks is None:
            return lse, torch.where(self.l > 0, 1.0 / self.l, 0.0)
        heads_kv, group = self.query.shape[1], self.query.shape[2]
        sink_logit = self.config.sinks.view(1, heads_kv, group, 1)  # [1, heads_kv, group, 1]
        lse = torch.logaddexp(lse, sink_logit)  # [batch, heads_kv, group, query]
        return lse, torch.exp(self.m - lse)

    def output(self) -> torch.Tensor:
        inv_l = self._normaliser()[1]  # [batch, heads_kv, group, query]
        return self.acc * inv_l[..., None]  # [batch, heads_kv, group, query, d_head]
