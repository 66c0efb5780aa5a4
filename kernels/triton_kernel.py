"""Triton attention forward (FlashAttention-2 style) that accumulates per-query statistics.

One program per (query block, batch * head): it loads its Q block once, then walks the key blocks
with the online softmax (running max m_i, normaliser l_i, output accumulator) in the log2 domain
(scores scaled by sm_scale * log2(e) in the same FMA that subtracts the max; exp2 everywhere).
Key blocks that every row of the query block fully sees run without a mask; only blocks
crossing the causal diagonal or a key_length pay for one. Grouped-query attention reads kv head
h // group. Plain pointer arithmetic with masked loads (`tl.make_block_ptr` is gone in 3.9).

Statistics ride along the same loop, each behind a `tl.constexpr` switch (an unused one is
compiled out) and rescaled by alpha = exp2(m_old - m_new) like the output accumulator: entropy via
T = sum p (s - m) (H = ln l - T / l), max_prob = 1 / l, mean distance (float offsets relative to
the key block, so no int tile), sum of squares (alpha^2) and the log2 distance histogram. Per key
block the histogram visits only the buckets the block's distance range can reach (far blocks
usually reach one: no extra pass at all); the last visited bucket takes the rest of the row sum.

`sink` and `block_mass` are post-passes with the final m_i and l_i (`_range_mass`): they recompute
Q K^T only over the keys they need. For `sink` that is one small tile per query block (keeps the
main loop free of a branch that cost registers); for `block_mass` it is every visible key, so it
about doubles the cost, and only runs when requested; it is also the simplest correct way to
normalise sums over key blocks whose width (mass_block) is independent of BLOCK_N.

Sliding window (HAS_WINDOW, causal only): a query block walks only the key blocks from the first
one its first row sees, every one of them masked (no unmasked fast path yet); rows that see no
key keep l = 0 and store out 0, lse -inf, other statistics 0. Soft-capping (SOFTCAP) turns the raw
q.k into cap_out * tanh(cap_in * q.k) with cap_in = sm_scale / softcap, cap_out = softcap /
sm_scale, so the usual qk_scale FMA yields softcap * tanh(s / softcap) in log2 units (tanh from
exp2: the interpreter and every GPU have it). Attention sinks (HAS_SINKS, one logit z per query
head, gpt-oss): the loop is unchanged; at the end lse = log2(2^(m + log2 l) + 2^z) and every
statistic is normalised by f = 2^(m - lse) instead of 1 / l, so p_j = 2^(s_j - m) f sums to
1 - p_sink over the real keys; entropy = f ln2 (l (lse - m) - T) over the real keys.

Caveats: UPCAST (set by the launcher under TRITON_INTERPRET=1 only) turns fp16/bf16 tiles into
fp32 before tl.dot, because bf16 tl.dot gives garbage in the interpreter; on a GPU tiles stay in
the input dtype and P is cast to it for P V, as FlashAttention does. Offsets are int32: fine up
to 2^31 elements per tensor.
"""

import triton
import triton.language as tl

# fmt: off
# (argument lists are kept compact by hand; ruff format would put each on its own line)


@triton.jit
def _bucket(distance, n_buckets):
    """Log2 distance bucket of non-negative int32 distances: 0 for 0, else floor(log2 d) + 1,
    clamped to n_buckets - 1. Exact: reads the float32 exponent instead of rounding a log."""
    bits = distance.to(tl.float32).to(tl.int32, bitcast=True)
    bucket = tl.where(distance == 0, 0, ((bits >> 23) & 0xFF) - 126)
    return tl.minimum(bucket, n_buckets - 1)


@triton.jit
def _load_rows(ptrs, rows_ok, d_ok, MASK_ROWS: tl.constexpr, EVEN_D: tl.constexpr,
               UPCAST: tl.constexpr):
    """Load a [rows, BLOCK_D] tile; out-of-bounds entries read as 0."""
    if MASK_ROWS:
        tile = tl.load(ptrs, mask=rows_ok[:, None] & d_ok[None, :], other=0.0)
    elif EVEN_D:
        tile = tl.load(ptrs)
    else:
        tile = tl.load(ptrs, mask=d_ok[None, :], other=0.0)
    if UPCAST:
        tile = tile.to(tl.float32)
    return tile


@triton.jit
def _tanh(x):
    """tanh from exp2, sign-symmetric (no overflow for large |x|)."""
    e = tl.exp2(tl.abs(x) * -2.8853900817779268)  # exp(-2|x|)
    magnitude = (1.0 - e) / (1.0 + e)
    return tl.where(x < 0, -magnitude, magnitude)


@triton.jit
def _scores(q, k_ptrs, offs_n, offs_m, d_ok, seq_k, key_length, key_offset, window, cap_in,
            cap_out, MASKED: tl.constexpr, CAUSAL: tl.constexpr, EVEN_D: tl.constexpr,
            UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr, HAS_WINDOW: tl.constexpr,
            SOFTCAP: tl.constexpr):
    """Unscaled q.k [BLOCK_M, BLOCK_N] (-inf where masked, if MASKED) and visibility. Callers
    scale by qk_scale inside their FMA (s * qk_scale - m), as FlashAttention does; soft-capped
    scores are cap_out * tanh(cap_in * q.k), which that scale turns into the capped score."""
    k = _load_rows(k_ptrs, offs_n < seq_k, d_ok, MASKED, EVEN_D, UPCAST)  # [BLOCK_N, BLOCK_D]
    s = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION)  # [BLOCK_M, BLOCK_N]
    if SOFTCAP:
        s = cap_out * _tanh(s * cap_in)
    visible = offs_n[None, :] < key_length  # [1, BLOCK_N]
    if CAUSAL:
        visible = visible & (offs_n[None, :] <= offs_m[:, None] + key_offset)  # [BLOCK_M, BLOCK_N]
    if HAS_WINDOW:
        visible = visible & (offs_n[None, :] > offs_m[:, None] + key_offset - window)
    if MASKED:
        s = tl.where(visible, s, float("-inf"))
    return s, visible


@triton.jit
def _tile(q, start_n, k_base, v_base, stride_kn, stride_kd, stride_vn, stride_vd,
          offs_m, offs_n0, offs_d, d_ok, seq_k, key_length, key_offset, qk_scale, n_buckets,
          window, cap_in, cap_out, m_i, l_i, acc, t, dist, sum_sq, hist,
          HAS_WINDOW: tl.constexpr, SOFTCAP: tl.constexpr, MASKED: tl.constexpr, NEAR: tl.constexpr, CAUSAL: tl.constexpr, EVEN_D: tl.constexpr,
          UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr, BLOCK_N: tl.constexpr,
          WRITE_OUT: tl.constexpr, HAS_ENTROPY: tl.constexpr, HAS_DIST: tl.constexpr,
          HAS_SUM_SQ: tl.constexpr, HAS_HIST: tl.constexpr, BUCKETS_PAD: tl.constexpr):
    """Fold key block [start_n, start_n + BLOCK_N) into the running state of one query block."""
    offs_n = start_n + offs_n0  # [BLOCK_N] key positions
    k_ptrs = k_base + offs_n[:, None] * stride_kn + offs_d[None, :] * stride_kd
    s, visible = _scores(q, k_ptrs, offs_n, offs_m, d_ok, seq_k, key_length, key_offset, window,
                         cap_in, cap_out, MASKED, CAUSAL, EVEN_D, UPCAST, DOT_PRECISION,
                         HAS_WINDOW, SOFTCAP)
    m_new = tl.maximum(m_i, tl.max(s, 1) * qk_scale)  # [BLOCK_M] (qk_scale > 0); m_i starts
    alpha = tl.exp2(m_i - m_new)  # at -1e30, so this stays finite
    shifted = s * qk_scale - m_new[:, None]  # [BLOCK_M, BLOCK_N] log2 units, -inf where masked
    p = tl.exp2(shifted)  # unnormalised probabilities relative to m_new
    row_sum = tl.sum(p, 1)
    if HAS_ENTROPY:
        if MASKED:
            shifted = tl.where(visible, shifted, 0.0)  # avoid 0 * -inf
        t = alpha * (t + (m_i - m_new) * l_i) + tl.sum(p * shifted, 1)
    l_i = l_i * alpha + row_sum
    if HAS_DIST:  # float offsets relative to start_n: no int tile, little cancellation
        query_rel = (offs_m + key_offset - start_n).to(tl.float32)  # [BLOCK_M]
        key_rel = offs_n0.to(tl.float32)  # [BLOCK_N]
        if CAUSAL and not MASKED:  # every key is at or before the query: |i' - j| = i' - j
            tile_dist = query_rel * row_sum - tl.sum(p * key_rel[None, :], 1)
        else:
            tile_dist = tl.sum(p * tl.abs(query_rel[:, None] - key_rel[None, :]), 1)
        dist = dist * alpha + tile_dist
    if HAS_SUM_SQ:
        sum_sq = sum_sq * alpha * alpha + tl.sum(p * p, 1)
    if HAS_HIST:
        hist = hist * alpha[:, None]
        # the tile's range of signed distances i' - j gives its range of buckets (monotone in |d|)
        nearest = tl.min(offs_m) + key_offset - (start_n + BLOCK_N - 1)
        farthest = tl.max(offs_m) + key_offset - start_n
        low_d = tl.where(nearest > 0, nearest, tl.where(farthest < 0, -farthest, 0))
        high_d = tl.maximum(tl.abs(nearest), tl.abs(farthest))
        low, high = _bucket(low_d, n_buckets), _bucket(high_d, n_buckets)
        distance = tl.abs(offs_m[:, None] + key_offset - offs_n[None, :])  # [BLOCK_M, BLOCK_N]
        columns = tl.arange(0, BUCKETS_PAD)[None, :]  # [1, BUCKETS_PAD]
        if NEAR:  # may span many buckets: one masked sum per bucket, the last takes the rest
            buckets = _bucket(distance, n_buckets)  # [BLOCK_M, BLOCK_N]
            remainder = row_sum
            for b in range(low, high):
                mass = tl.sum(tl.where(buckets == b, p, 0.0), 1)  # [BLOCK_M]
                hist += tl.where(columns == b, mass[:, None], 0.0)
                remainder -= mass
            hist += tl.where(columns == high, remainder[:, None], 0.0)
        else:  # at distance >= BLOCK_M + BLOCK_N: at most two buckets, split at one boundary
            boundary = tl.where(high > low, 1 << tl.maximum(high - 1, 0), 2147483647)
            mass_high = tl.sum(tl.where(distance >= boundary, p, 0.0), 1)  # [BLOCK_M]
            hist += tl.where(columns == low, (row_sum - mass_high)[:, None], 0.0)
            hist += tl.where(columns == high, mass_high[:, None], 0.0)
    if WRITE_OUT:
        v_ptrs = v_base + offs_n[:, None] * stride_vn + offs_d[None, :] * stride_vd
        v = _load_rows(v_ptrs, offs_n < seq_k, d_ok, MASKED, EVEN_D, UPCAST)  # [BLOCK_N, BLOCK_D]
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PRECISION)
    return m_new, l_i, acc, t, dist, sum_sq, hist


@triton.jit
def _range_mass(q, k_base, stride_kn, stride_kd, offs_m, offs_d, d_ok, seq_k, key_length,
                key_offset, qk_scale, m_i, range_start, range_end, window, cap_in, cap_out,
                CAUSAL: tl.constexpr, EVEN_D: tl.constexpr, UPCAST: tl.constexpr,
                DOT_PRECISION: tl.constexpr, BLOCK_R: tl.constexpr, HAS_WINDOW: tl.constexpr,
                SOFTCAP: tl.constexpr):
    """Unnormalised mass sum exp2(s_j - m_i) of the visible keys j in [range_start, range_end),
    recomputed with the final row max (a post-pass: keeps the main loop free of it)."""
    offs_t = tl.arange(0, BLOCK_R)
    mass = tl.zeros_like(m_i)  # [BLOCK_M]
    for start_n in range(range_start, range_end, BLOCK_R):
        offs_n = start_n + offs_t
        k_ptrs = k_base + offs_n[:, None] * stride_kn + offs_d[None, :] * stride_kd
        s, visible = _scores(q, k_ptrs, offs_n, offs_m, d_ok, seq_k, key_length, key_offset,
                             window, cap_in, cap_out, True, CAUSAL, EVEN_D, UPCAST,
                             DOT_PRECISION, HAS_WINDOW, SOFTCAP)
        s = tl.where(offs_n[None, :] < range_end, s, float("-inf"))  # [BLOCK_M, BLOCK_R]
        mass += tl.sum(tl.exp2(s * qk_scale - m_i[:, None]), 1)
    return mass


@triton.jit
def _attention_stats_kernel(
    Q, K, V, Out, KeyLengths, Sinks, Lse, Entropy, MaxProb, Sink, MeanDistance, SumSq, Hist, BlockMass,
    stride_qb, stride_qh, stride_qm, stride_qd, stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd, stride_ob, stride_oh, stride_om, stride_od,
    heads_q, group, seq_q, seq_k, qk_scale, sink_tokens, n_buckets, mass_block, n_mass_blocks,
    window, cap_in, cap_out,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_MB: tl.constexpr, BLOCK_SINK: tl.constexpr, BUCKETS_PAD: tl.constexpr,
    CAUSAL: tl.constexpr, HAS_KEY_LENGTHS: tl.constexpr, WRITE_OUT: tl.constexpr,
    HAS_LSE: tl.constexpr,
    HAS_ENTROPY: tl.constexpr, HAS_MAX_PROB: tl.constexpr, HAS_SINK: tl.constexpr,
    HAS_DIST: tl.constexpr, HAS_SUM_SQ: tl.constexpr, HAS_HIST: tl.constexpr,
    HAS_BLOCK_MASS: tl.constexpr, UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr,
    HAS_WINDOW: tl.constexpr, SOFTCAP: tl.constexpr, HAS_SINKS: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)  # batch * heads_q + head
    batch = pid_bh // heads_q
    head = pid_bh % heads_q
    kv_head = head // group
    EVEN_D: tl.constexpr = HEAD_DIM == BLOCK_D

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # [BLOCK_M] query rows
    offs_n0 = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    rows_ok = offs_m < seq_q
    d_ok = offs_d < HEAD_DIM
    q_ptrs = (Q + batch * stride_qb + head * stride_qh
              + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd)
    q = _load_rows(q_ptrs, rows_ok, d_ok, True, EVEN_D, UPCAST)  # [BLOCK_M, BLOCK_D]
    k_base = K + batch * stride_kb + kv_head * stride_kh
    v_base = V + batch * stride_vb + kv_head * stride_vh

    key_offset = seq_k - seq_q  # query i sits at key position i + key_offset
    key_length = seq_k
    if HAS_KEY_LENGTHS:
        key_length = tl.load(KeyLengths + batch).to(tl.int32)
    key_end = key_length  # keys some row of this block sees
    full_end = key_length  # keys every row of this block sees
    if CAUSAL:
        last_row = tl.minimum(pid_m * BLOCK_M + BLOCK_M, seq_q) - 1
        key_end = tl.minimum(key_end, last_row + key_offset + 1)
        full_end = tl.minimum(full_end, pid_m * BLOCK_M + key_offset + 1)
    full_end = (full_end // BLOCK_N) * BLOCK_N  # whole key blocks that need no mask

    m_i = tl.zeros([BLOCK_M], dtype=tl.float32) - 1.0e30  # finite: alpha never sees inf - inf
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    t = tl.zeros([BLOCK_M], dtype=tl.float32)
    dist = tl.zeros([BLOCK_M], dtype=tl.float32)
    sum_sq = tl.zeros([BLOCK_M], dtype=tl.float32)
    hist = tl.zeros([BLOCK_M, BUCKETS_PAD], dtype=tl.float32)
    far_left = full_end  # key blocks [0, far_left) and [far_right, full_end) are at distance
    far_right = full_end  # >= BLOCK_M + BLOCK_N from every row: they span <= 2 buckets
    if HAS_HIST:
        reach = BLOCK_M + BLOCK_N
        first_pos = pid_m * BLOCK_M + key_offset  # key position of the block's first row
        far_left = tl.minimum(tl.maximum(first_pos - reach + 1, 0) // BLOCK_N * BLOCK_N, full_end)
        right = tl.cdiv(tl.maximum(first_pos + BLOCK_M - 1 + reach, 0), BLOCK_N) * BLOCK_N
        far_right = tl.maximum(tl.minimum(right, full_end), far_left)
    key_start = 0  # first key block some row of this block sees
    if HAS_WINDOW:  # every visited block is masked: [key_start, key_end) is all phase 3
        key_start = tl.maximum(pid_m * BLOCK_M + key_offset - window + 1, 0) // BLOCK_N * BLOCK_N
        full_end = key_start
        far_left = key_start
        far_right = key_start
    # phases: 0 far unmasked, 1 near unmasked, 2 far unmasked, 3 masked (near); without the
    # histogram near and far are the same code, so phases 1 and 2 are not even compiled
    for phase in tl.static_range(4):
        if phase == 0:
            lo, hi = key_start, far_left
        elif phase == 1:
            lo, hi = far_left, far_right
        elif phase == 2:
            lo, hi = far_right, full_end
        else:
            lo, hi = full_end, key_end
        if HAS_HIST or phase == 0 or phase == 3:
            for start_n in range(lo, hi, BLOCK_N):
                m_i, l_i, acc, t, dist, sum_sq, hist = _tile(
                    q, start_n, k_base, v_base, stride_kn, stride_kd, stride_vn, stride_vd,
                    offs_m, offs_n0, offs_d, d_ok, seq_k, key_length, key_offset, qk_scale,
                    n_buckets, window, cap_in, cap_out, m_i, l_i, acc, t, dist, sum_sq, hist,
                    HAS_WINDOW, SOFTCAP, phase == 3,
                    phase == 1 or phase == 3, CAUSAL, EVEN_D, UPCAST, DOT_PRECISION, BLOCK_N,
                    WRITE_OUT, HAS_ENTROPY, HAS_DIST, HAS_SUM_SQ, HAS_HIST, BUCKETS_PAD)

    row = pid_bh * seq_q + offs_m  # flat index into [batch * heads_q, seq_q]
    seen = l_i > 0  # False only for a row that sees no key (window with key_lengths)
    l_safe = tl.where(seen, l_i, 1.0)
    inv_l = tl.where(seen, 1.0 / l_safe, 0.0)  # p_j = 2^(s_j - m_i) inv_l
    lse2 = tl.where(seen, m_i + tl.log2(l_safe), float("-inf"))  # log2 units
    ln2 = 0.6931471805599453
    if HAS_SINKS:  # the sink's 2^z joins the denominator only
        z = tl.load(Sinks + head) * 1.4426950408889634  # log2 units
        top = tl.maximum(lse2, z)  # finite
        lse2 = top + tl.log2(tl.exp2(lse2 - top) + tl.exp2(z - top))
        inv_l = tl.where(seen, tl.exp2(m_i - lse2), 0.0)
    if WRITE_OUT:
        out_ptrs = (Out + batch * stride_ob + head * stride_oh
                    + offs_m[:, None] * stride_om + offs_d[None, :] * stride_od)
        out = acc * inv_l[:, None]  # [BLOCK_M, BLOCK_D]
        tl.store(out_ptrs, out.to(Out.dtype.element_ty), mask=rows_ok[:, None] & d_ok[None, :])
    if HAS_LSE:
        tl.store(Lse + row, lse2 * ln2, mask=rows_ok)
    if HAS_ENTROPY:
        if HAS_SINKS:  # over the real keys; 0 for an empty row (l_i = t = inv_l = 0)
            entropy = inv_l * ln2 * (l_i * tl.where(seen, lse2 - m_i, 0.0) - t)
        else:
            entropy = tl.log(l_safe) - t * ln2 * inv_l  # t is in log2 units; 0 for an empty row
        tl.store(Entropy + row, tl.maximum(entropy, 0.0), mask=rows_ok)
    if HAS_MAX_PROB:
        tl.store(MaxProb + row, inv_l, mask=rows_ok)
    if HAS_SINK:
        sink = _range_mass(q, k_base, stride_kn, stride_kd, offs_m, offs_d, d_ok, seq_k,
                           key_length, key_offset, qk_scale, m_i, 0,
                           tl.minimum(sink_tokens, key_end), window, cap_in, cap_out, CAUSAL,
                           EVEN_D, UPCAST, DOT_PRECISION, BLOCK_SINK, HAS_WINDOW, SOFTCAP)
        tl.store(Sink + row, sink * inv_l, mask=rows_ok)
    if HAS_DIST:
        tl.store(MeanDistance + row, dist * inv_l, mask=rows_ok)
    if HAS_SUM_SQ:
        tl.store(SumSq + row, sum_sq * inv_l * inv_l, mask=rows_ok)
    if HAS_HIST:
        columns = tl.arange(0, BUCKETS_PAD)
        hist_ptrs = Hist + row[:, None] * n_buckets + columns[None, :]  # [BLOCK_M, BUCKETS_PAD]
        tl.store(hist_ptrs, hist * inv_l[:, None],
                 mask=rows_ok[:, None] & (columns[None, :] < n_buckets))
    if HAS_BLOCK_MASS:  # each visible key block, recomputed with the final m_i
        block_ptrs = BlockMass + row * n_mass_blocks  # [BLOCK_M] row starts
        for block in range(key_start // mass_block, tl.cdiv(key_end, mass_block)):
            block_start = block * mass_block
            mass = _range_mass(q, k_base, stride_kn, stride_kd, offs_m, offs_d, d_ok, seq_k,
                               key_length, key_offset, qk_scale, m_i, block_start,
                               tl.minimum(block_start + mass_block, key_end), window, cap_in,
                               cap_out, CAUSAL, EVEN_D, UPCAST, DOT_PRECISION, BLOCK_MB,
                               HAS_WINDOW, SOFTCAP)
            tl.store(block_ptrs + block, mass * inv_l, mask=rows_ok)


# fmt: on
