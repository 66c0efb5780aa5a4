"""The statistics contract shared by every backend, and the input validation they all use.

`AttentionStats` is what `attention_with_stats` returns beside the output; `validate_inputs`
turns the user's arguments into an `AttentionConfig` (or raises `ValueError` naming the
offending argument) before any backend runs, so the three backends see identical, checked input.

Caveats:
- Distances are measured in key coordinates: query i sits at i' = i + (seq_k - seq_q). With
  non-causal attention and seq_q > seq_k, i' can be negative and |i' - j| can exceed seq_k - 1;
  such distances fall into the last histogram bucket (`distance_buckets(seq_k) - 1`), so every
  histogram row still sums to 1.
- Validation reads q/k/v once (the NaN/inf check and max |q|, max |k|) and synchronises with the
  device twice (that check, the key_lengths range check). q/k whose scores could exceed
  `SCORE_LIMIT` (1e29) are refused with a ValueError naming the overflow: float32 softmax
  statistics of such scores would be NaN or wrong, and a wrong number is worse than a refusal.
- Sliding window (`window=w`, causal only, as in transformers' `sliding_window_causal_mask_function`):
  query i (key position i') sees key j iff i' - w < j <= i'. Statistics are over the visible keys
  only (`sink` is the mass on the first `sink_tokens` keys that are still visible, else 0).
  With key_lengths a padded query can see no key at all: its output is 0, lse -inf and every
  other statistic 0 (its histogram rows sum to 0, not 1).
- Soft-capping (`softcap=c`, as Gemma-2's `attn_logit_softcapping`): the scaled score s becomes
  c tanh(s / c) before masking and softmax; every statistic (entropy H = lse - sum p s included)
  uses the capped score.
- Attention sinks (`sinks=` [heads_q] learned logits, gpt-oss's `s_aux`): one extra logit per
  head in every row's softmax denominator (not scaled, not capped, never masked). `lse` includes
  it; every other statistic is over the real keys with their real probabilities, which sum to
  1 - p_sink (as in transformers' `output_attentions`): entropy = -sum_j p_j log p_j over real
  keys, histogram rows sum to 1 - p_sink.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch

STAT_NAMES = (
    "lse",
    "entropy",
    "max_prob",
    "sink",
    "mean_distance",
    "sum_sq",
    "distance_hist",
    "block_mass",
)
DEFAULT_STATS = STAT_NAMES[:-1]
SCALAR_STATS = STAT_NAMES[:6]  # one float per query row
BACKENDS = ("auto", "triton", "chunked", "augmented", "reference")
SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Scores (raw q.k and scaled) must stay far below float32's 3.4e38: the Triton kernel starts its
# running max at -1e30 (log2 units) and the online softmax multiplies score gaps by row sums.
SCORE_LIMIT = 1e29


def distance_buckets(seq_k: int) -> int:
    """Number of log2 distance buckets for `seq_k` keys: bucket 0 is distance 0, bucket b >= 1
    holds distances in [2^(b-1), 2^b), the last one also everything beyond."""
    if seq_k < 1:
        raise ValueError(f"seq_k: must be >= 1, got {seq_k}")
    return (seq_k - 1).bit_length() + 1


def distance_bucket_index(distance: torch.Tensor, n_buckets: int) -> torch.Tensor:
    """Bucket of each non-negative integer distance: 0 for 0, else floor(log2(d)) + 1, clamped to
    the last bucket. Exact (uses the float exponent, not a rounded log)."""
    _, exponent = torch.frexp(distance.to(torch.float64))  # d = mantissa * 2^exponent, 0.5 <= m < 1
    bucket = torch.where(distance == 0, torch.zeros_like(exponent), exponent)  # floor(log2 d) + 1
    return bucket.clamp(max=n_buckets - 1).long()


@dataclass(frozen=True)
class AttentionStats:
    """Per-query attention statistics (float32, on the input's device; None when not requested).

    Scalar fields are [batch, heads_q, seq_q]; `distance_hist` is
    [batch, heads_q, seq_q, distance_buckets(seq_k)]; `block_mass` is
    [batch, heads_q, seq_q, ceil(seq_k / mass_block)]. Both histograms' rows sum to 1.
    """

    lse: torch.Tensor | None = None
    entropy: torch.Tensor | None = None
    max_prob: torch.Tensor | None = None
    sink: torch.Tensor | None = None
    mean_distance: torch.Tensor | None = None
    sum_sq: torch.Tensor | None = None
    distance_hist: torch.Tensor | None = None
    block_mass: torch.Tensor | None = None
    sink_tokens: int = 1
    mass_block: int = 64

    def requested(self) -> tuple[str, ...]:
        """Names of the statistics this object holds, in STAT_NAMES order."""
        return tuple(name for name in STAT_NAMES if getattr(self, name) is not None)


@dataclass(frozen=True)
class AttentionConfig:
    """Checked arguments handed to a backend."""

    causal: bool
    sm_scale: float
    backend: str  # resolved: "triton" | "chunked" | "augmented" | "reference"
    stats: tuple[str, ...]  # requested names, in STAT_NAMES order
    key_lengths: torch.Tensor | None  # int64 [batch] on q's device
    sink_tokens: int
    mass_block: int
    write_out: bool
    chunk_size: int
    window: int | None = None  # causal sliding window: i' - window < j <= i'
    softcap: float | None = None  # scores s -> softcap * tanh(s / softcap)
    sinks: torch.Tensor | None = None  # float32 [heads_q] sink logits on q's device

    def wants(self, name: str) -> bool:
        """Whether the statistic `name` was asked for."""
        return name in self.stats


def _check_tensors(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[float, float]:
    """Shapes, dtypes, devices and finiteness of q/k/v -> (max |q|, max |k|)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(
                f"{name}: expected 4-D [batch, heads, seq, d_head], got shape {tuple(t.shape)}"
            )
        if t.dtype not in SUPPORTED_DTYPES:
            raise ValueError(f"{name}: unsupported dtype {t.dtype} (use float32/float16/bfloat16)")
    for name, t in (("k", k), ("v", v)):
        if t.dtype != q.dtype:
            raise ValueError(f"{name}: dtype {t.dtype} does not match q's {q.dtype}")
        if t.device != q.device:
            raise ValueError(f"{name}: device {t.device} does not match q's {q.device}")
    if k.shape != v.shape:
        raise ValueError(f"v: shape {tuple(v.shape)} does not match k's {tuple(k.shape)}")
    if k.shape[0] != q.shape[0]:
        raise ValueError(f"k: batch {k.shape[0]} does not match q's batch {q.shape[0]}")
    if k.shape[3] != q.shape[3]:
        raise ValueError(f"k: d_head {k.shape[3]} does not match q's d_head {q.shape[3]}")
    heads_q, heads_kv = q.shape[1], k.shape[1]
    if heads_kv == 0 or heads_q % heads_kv != 0:
        raise ValueError(f"k: heads_q={heads_q} is not a multiple of heads_kv={heads_kv}")
    for name, t in (("q", q), ("k", k)):
        if t.shape[0] == 0 or t.shape[2] == 0 or t.shape[3] == 0:
            raise ValueError(f"{name}: empty batch, sequence or d_head in shape {tuple(t.shape)}")
    finite = [torch.isfinite(t).all() for t in (q, k, v)]
    peaks = [t.detach().amax() for t in (q, k)] + [-t.detach().amin() for t in (q, k)]
    checks = torch.stack([*finite, *peaks]).float().tolist()  # one device sync, not seven
    bad = [name for name, ok in zip("qkv", checks[:3], strict=True) if not ok]
    if bad:
        raise ValueError(f"{bad[0]}: contains NaN or inf")
    return max(checks[3], checks[5], 0.0), max(checks[4], checks[6], 0.0)


def _check_score_range(q: torch.Tensor, k: torch.Tensor, peaks: tuple, sm_scale: float) -> None:
    """Refuse q/k whose scores could overflow the float32 softmax (a NaN or a wrong entropy).

    Cheap bound first (|q_i . k_j| <= d_head max|q| max|k|); only when it exceeds SCORE_LIMIT
    the exact Cauchy-Schwarz bound max||q_i|| max||k_j|| (float64 norms) decides.
    """
    factor = max(sm_scale, 1.0)  # raw q.k (Triton) and scaled scores must both stay in range
    if q.shape[3] * peaks[0] * peaks[1] * factor <= SCORE_LIMIT:
        return
    norms = [
        torch.linalg.vector_norm(t.detach(), dim=-1, dtype=torch.float64).amax() for t in (q, k)
    ]  # [] each
    bound = float(norms[0] * norms[1]) * factor
    if bound > SCORE_LIMIT:
        raise ValueError(
            f"q, k: attention scores overflow float32 (max||q_i|| * max||k_j|| * max(sm_scale, 1) = "
            f"{bound:.3g} > {SCORE_LIMIT:.0e}); scale q or k down"
        )


def _check_stats(stats: Iterable[str] | None) -> tuple[str, ...]:
    if stats is None:
        return DEFAULT_STATS
    if isinstance(stats, str):
        raise ValueError(f"stats: expected an iterable of names, got the string {stats!r}")
    wanted = list(stats)
    unknown = [name for name in wanted if name not in STAT_NAMES]
    if unknown:
        raise ValueError(f"stats: unknown statistic(s) {unknown}; known: {list(STAT_NAMES)}")
    return tuple(name for name in STAT_NAMES if name in wanted)


def _check_key_lengths(key_lengths, batch: int, seq_k: int, device) -> torch.Tensor | None:
    if key_lengths is None:
        return None
    if not isinstance(key_lengths, torch.Tensor):
        key_lengths = torch.as_tensor(key_lengths)
    if key_lengths.dtype.is_floating_point or key_lengths.dtype == torch.bool:
        raise ValueError(f"key_lengths: expected an integer tensor, got {key_lengths.dtype}")
    if tuple(key_lengths.shape) != (batch,):
        raise ValueError(
            f"key_lengths: expected shape ({batch},) (one length per batch row), "
            f"got {tuple(key_lengths.shape)}"
        )
    low, high = int(key_lengths.min()), int(key_lengths.max())
    if low < 1 or high > seq_k:
        raise ValueError(f"key_lengths: values must lie in 1..{seq_k} (seq_k), got {low}..{high}")
    return key_lengths.to(device=device, dtype=torch.int64)


def _resolve_backend(backend: str, device: torch.device) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend: unknown {backend!r}; choose one of {list(BACKENDS)}")
    if backend == "auto":
        return "triton" if device.type == "cuda" else "chunked"
    if backend == "augmented" and device.type != "cpu":
        raise ValueError("backend: 'augmented' uses torch's CPU flash kernel; needs CPU tensors")
    if backend == "triton" and device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(
            "backend: 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 set before triton is "
            "imported); use backend='chunked' on CPU"
        )
    return backend


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    return value


def _check_window(window, causal: bool) -> int | None:
    if window is None:
        return None
    window = _check_positive_int("window", window)
    if not causal:
        raise ValueError(
            "window: a sliding window needs causal=True (bidirectional windows are not supported)"
        )
    return window


def _check_softcap(softcap) -> float | None:
    if softcap is None:
        return None
    if isinstance(softcap, bool) or not isinstance(softcap, int | float):
        raise ValueError(f"softcap: expected a float, got {softcap!r}")
    if not math.isfinite(softcap) or softcap <= 0:
        raise ValueError(f"softcap: must be finite and > 0, got {softcap}")
    return float(softcap)


def cap_scores(scores: torch.Tensor, softcap: float | None) -> torch.Tensor:
    """Soft-capped scaled scores softcap * tanh(scores / softcap) (as transformers' eager
    attention computes them), or `scores` itself when softcap is None."""
    if softcap is None:
        return scores
    return torch.tanh(scores / softcap) * softcap


def _check_sinks(sinks, heads_q: int, device) -> torch.Tensor | None:
    if sinks is None:
        return None
    if not isinstance(sinks, torch.Tensor) or not sinks.dtype.is_floating_point:
        got = sinks.dtype if isinstance(sinks, torch.Tensor) else type(sinks).__name__
        raise ValueError(f"sinks: expected a float tensor of {heads_q} logits, got {got}")
    if tuple(sinks.shape) != (heads_q,):
        raise ValueError(
            f"sinks: expected shape ({heads_q},) (one logit per query head), "
            f"got {tuple(sinks.shape)}"
        )
    if not bool(torch.isfinite(sinks).all()):
        raise ValueError("sinks: contains NaN or inf")
    return sinks.detach().to(device=device, dtype=torch.float32).contiguous()


def validate_inputs(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    sm_scale: float | None,
    backend: str,
    stats: Iterable[str] | None,
    key_lengths: torch.Tensor | None,
    sink_tokens: int,
    mass_block: int,
    write_out: bool,
    chunk_size: int,
    window: int | None = None,
    softcap: float | None = None,
    sinks: torch.Tensor | None = None,
) -> AttentionConfig:
    """Check every argument of `attention_with_stats`; raise ValueError naming the bad one."""
    peaks = _check_tensors(q, k, v)
    if not isinstance(causal, bool):
        raise ValueError(f"causal: expected a bool, got {causal!r}")
    if not isinstance(write_out, bool):
        raise ValueError(f"write_out: expected a bool, got {write_out!r}")
    seq_q, seq_k = q.shape[2], k.shape[2]
    if causal and seq_q > seq_k:
        raise ValueError(
            f"q: causal attention with seq_q={seq_q} > seq_k={seq_k} leaves the first "
            f"{seq_q - seq_k} queries with no visible key (the mask is bottom-right aligned)"
        )
    if sm_scale is None:
        sm_scale = 1.0 / math.sqrt(q.shape[3])
    if isinstance(sm_scale, bool) or not isinstance(sm_scale, int | float):
        raise ValueError(f"sm_scale: expected a float, got {sm_scale!r}")
    if not math.isfinite(sm_scale) or sm_scale <= 0:
        raise ValueError(f"sm_scale: must be finite and > 0, got {sm_scale}")
    _check_score_range(q, k, peaks, float(sm_scale))
    return AttentionConfig(
        causal=causal,
        sm_scale=float(sm_scale),
        backend=_resolve_backend(backend, q.device),
        stats=_check_stats(stats),
        key_lengths=_check_key_lengths(key_lengths, q.shape[0], seq_k, q.device),
        sink_tokens=_check_positive_int("sink_tokens", sink_tokens),
        mass_block=_check_positive_int("mass_block", mass_block),
        write_out=write_out,
        chunk_size=_check_positive_int("chunk_size", chunk_size),
        window=_check_window(window, causal),
        softcap=_check_softcap(softcap),
        sinks=_check_sinks(sinks, q.shape[1], q.device),
    )


def visible_keys(
    query_index: torch.Tensor,
    key_index: torch.Tensor,
    *,
    seq_q: int,
    seq_k: int,
    causal: bool,
    key_lengths: torch.Tensor | None,
    window: int | None = None,
) -> torch.Tensor:
    """Bool mask [batch or 1, 1, len(query_index), len(key_index)]: may query i see key j?

    Causal is bottom-right aligned (j <= i' = i + seq_k - seq_q); window keeps j > i' - window;
    key_lengths masks j >= length[b].
    """
    query_pos = query_index[:, None] + (seq_k - seq_q)  # [query, 1] in key coordinates
    mask = torch.ones(
        len(query_index), len(key_index), dtype=torch.bool, device=key_index.device
    )  # [query, key]
    if causal:
        mask = key_index[None, :] <= query_pos  # [query, key]
    if window is not None:
        mask = mask & (key_index[None, :] > query_pos - window)  # [query, key]
    mask = mask[None, None]  # [1, 1, query, key]
    if key_lengths is not None:
        in_length = key_index[None, :] < key_lengths[:, None]  # [batch, key]
        mask = mask & in_length[:, None, None, :]  # [batch, 1, query, key]
    return mask
