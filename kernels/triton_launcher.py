"""Host launcher of the Triton statistics kernel (kernels/triton_kernel.py).

Allocates only the requested outputs, turns the configuration into the kernel's constexpr
switches and picks tile sizes. Works on CUDA tensors, or on CPU tensors through the Triton
interpreter when TRITON_INTERPRET=1 was set before triton was imported.

Caveats: tile sizes are fixed heuristics for Hopper-class GPUs (no autotuning; measure with
benchmarks/attention_stats.py --gpu). Under the interpreter the tiles are 64 x 64 and fp16/bf16
inputs are upcast to fp32 for tl.dot.
"""

from __future__ import annotations

import os

import torch
import triton

from kernels.contract import SCALAR_STATS, AttentionConfig, AttentionStats, distance_buckets
from kernels.triton_kernel import _attention_stats_kernel

LOG2E = 1.4426950408889634
KERNEL_OUTPUTS = (*SCALAR_STATS, "distance_hist", "block_mass")  # the kernel's pointer order


def launch_config(d_head: int, interpret: bool, tile_stats: bool) -> tuple[int, int, int, int]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages). Chosen from sm_90 register counts read off
    the compiled cubin without a GPU (see docs/kernels.md): with d_head 128 and BLOCK_N 64 the
    per-tile statistics (entropy, mean_distance, sum_sq, distance_hist) spill, with BLOCK_N 32
    they do not. Not yet timed on a GPU: benchmarks/attention_stats.py --gpu sweeps these."""
    if interpret:  # fewer, larger tiles: the interpreter's cost is per tile
        return 64, 64, 4, 1
    if d_head <= 64:
        return 128, 64, 8, 3
    return (128, 32, 8, 3) if tile_stats else (128, 64, 8, 3)


TILE_STATS = ("entropy", "mean_distance", "sum_sq", "distance_hist")  # work inside the key loop


def kernel_arguments(q, k, v, config: AttentionConfig, interpret: bool, tiles=None):
    """(out, fields, grid, args, meta) for `_attention_stats_kernel[grid](*args, **meta)`;
    `tiles` overrides launch_config's (BLOCK_M, BLOCK_N, num_warps, num_stages)."""
    batch, heads_q, seq_q, d_head = q.shape
    heads_kv, seq_k = k.shape[1], k.shape[2]
    tile_stats = any(config.wants(name) for name in TILE_STATS)
    block_m, block_n, num_warps, num_stages = tiles or launch_config(d_head, interpret, tile_stats)
    n_buckets = distance_buckets(seq_k)
    n_mass_blocks = -(-seq_k // config.mass_block)
    wants = config.wants
    fields = {
        name: q.new_empty(batch, heads_q, seq_q, dtype=torch.float32)
        for name in config.stats
        if name in SCALAR_STATS
    }  # each [batch, heads_q, query]
    if wants("distance_hist"):
        fields["distance_hist"] = q.new_empty(batch, heads_q, seq_q, n_buckets, dtype=torch.float32)
    if wants("block_mass"):  # the kernel writes only the key blocks some row can see
        fields["block_mass"] = q.new_zeros(
            batch, heads_q, seq_q, n_mass_blocks, dtype=torch.float32
        )
    out = torch.empty_like(q) if config.write_out else None
    dummy = q.new_empty(1, dtype=torch.float32)  # for pointers a switched-off branch never reads
    out_arg = out if out is not None else q
    args = (
        q,
        k,
        v,
        out_arg,
        config.key_lengths if config.key_lengths is not None else dummy,
        config.sinks if config.sinks is not None else dummy,
        *(fields.get(name, dummy) for name in KERNEL_OUTPUTS),
        *q.stride(),
        *k.stride(),
        *v.stride(),
        *out_arg.stride(),
        heads_q,
        heads_q // heads_kv,
        seq_q,
        seq_k,
        config.sm_scale * LOG2E,
        config.sink_tokens,
        n_buckets,
        config.mass_block,
        n_mass_blocks,
        config.window or 0,
        config.sm_scale / config.softcap if config.softcap else 1.0,  # cap_in
        config.softcap / config.sm_scale if config.softcap else 1.0,  # cap_out
    )
    meta = dict(
        HEAD_DIM=d_head,
        BLOCK_D=max(16, triton.next_power_of_2(d_head)),
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_MB=max(16, min(block_n, triton.next_power_of_2(config.mass_block))),
        BLOCK_SINK=max(16, min(block_n, triton.next_power_of_2(config.sink_tokens))),
        BUCKETS_PAD=triton.next_power_of_2(n_buckets) if wants("distance_hist") else 1,
        CAUSAL=config.causal,
        HAS_KEY_LENGTHS=config.key_lengths is not None,
        WRITE_OUT=config.write_out,
        HAS_LSE=wants("lse"),
        HAS_ENTROPY=wants("entropy"),
        HAS_MAX_PROB=wants("max_prob"),
        HAS_SINK=wants("sink"),
        HAS_DIST=wants("mean_distance"),
        HAS_SUM_SQ=wants("sum_sq"),
        HAS_HIST=wants("distance_hist"),
        HAS_BLOCK_MASS=wants("block_mass"),
        UPCAST=interpret and q.dtype != torch.float32,
        DOT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
        HAS_WINDOW=config.window is not None,
        SOFTCAP=config.softcap is not None,
        HAS_SINKS=config.sinks is not None,
        num_warps=num_warps,
        num_stages=num_stages,
    )
    grid = (triton.cdiv(seq_q, block_m), batch * heads_q)
    return out, fields, grid, args, meta


def triton_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: AttentionConfig,
    tiles: tuple[int, int, int, int] | None = None,
) -> tuple[torch.Tensor | None, AttentionStats]:
    """Run the kernel on checked input (CUDA tensors, or CPU tensors under the interpreter).
    `tiles` (BLOCK_M, BLOCK_N, num_warps, num_stages) is for benchmark sweeps."""
    interpret = os.environ.get("TRITON_INTERPRET") == "1"
    out, fields, grid, args, meta = kernel_arguments(q, k, v, config, interpret, tiles)
    _attention_stats_kernel[grid](*args, **meta)
    stats = AttentionStats(**fields, sink_tokens=config.sink_tokens, mass_block=config.mass_block)
    return out, stats
