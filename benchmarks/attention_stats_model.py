"""Benchmark: whole-model `attention_stats` vs `run_with_cache` on every layer's `hook_pattern`.

    .venv/bin/python benchmarks/attention_stats_model.py [--model minilm] [--lengths 64,128,256,512]

Prints JSON and writes `benchmarks/results/attention_stats_model.json`. For each prompt length,
side by side in one run:

- `attention_stats`: `analysis.attention_stats(model, [prompt], stats=STATS)`: one forward pass
  with the statistics attention installed in every layer (chunked torch backend on CPU), stopped
  after the last layer's attention (no logits).
- `patterns`: `model.run_with_cache(prompt, names=<every layer's hook_pattern>)` (the eager
  forward materialises each layer's [head, query, key] pattern, and the cache keeps all of them;
  `cached_pattern_mib` is their size), then the same statistics computed from the cached patterns
  in float32 torch. This is the whole normal forward, MiniLM's 30k-vocab MLM head included
  (~6 GFLOP and 60 MiB of logits at n=512), which is part of what the statistics path saves.

Both compute STATS (entropy, max_prob, sink, mean_distance, sum_sq, distance_hist; lse is left
out because MiniLM's bridge has no pre-softmax scores hook). `time_s` is the median wall time of
`--repeats` runs after a warm-up; `peak_mib` is the process's peak-RSS increase over its RSS just
before one run (Linux VmHWM, reset through /proc/self/clear_refs). Each variant runs in its own
child process with one torch thread and glibc's mmap threshold fixed at 128 KiB, so large
tensors are fresh mappings that show in the RSS peak rather than reused heap. `max_diff`
checks that both variants agree: the largest |a - b| / max(1, |b|) over every statistic at the
first length and a sample of entropies at the others. Timings on a shared machine are noisy; never assert on them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from load_and_cache import _reset_peak_rss, _rss_kib  # same folder: run as a script

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results" / "attention_stats_model.json"
STATS = ("entropy", "max_prob", "sink", "mean_distance", "sum_sq", "distance_hist")
MARK = "@@RESULT@@ "
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "while",
    "the",
    "old",
    "farmer",
    "watches",
    "from",
    "the",
    "porch",
    "and",
    "drinks",
    "his",
    "morning",
    "coffee",
    "before",
    "the",
    "long",
    "day",
    "of",
    "work",
    "in",
    "the",
    "fields",
    "begins",
]


# ---------------------------------------------------------------------- child process
def prompt_of_length(model, n_tokens: int) -> str:
    """A prompt of `n_tokens` tokens (special tokens included) for `model`, or the longest
    one below it when no word count hits it exactly."""
    best, words = WORDS[0], max(1, n_tokens - 2)
    for _ in range(64):
        text = " ".join(WORDS[i % len(WORDS)] for i in range(words))
        try:
            length = model.to_tokens(text).shape[1]
        except ValueError:  # longer than the context
            length = n_tokens + 1
        if length == n_tokens:
            return text
        if length < n_tokens:
            best, words = text, words + 1
        else:
            words -= 1
            if words < 1 or best == " ".join(WORDS[i % len(WORDS)] for i in range(words)):
                return best
    return best


def stats_from_patterns(patterns: list, n_buckets: int) -> dict:
    """STATS of every layer from cached `[1, head, query, key]` patterns (float32 torch)."""
    import torch

    n = patterns[0].shape[-1]
    positions = torch.arange(n)
    distance = (positions[:, None] - positions[None, :]).abs()  # [query, key]
    bucket = torch.where(distance == 0, 0, torch.frexp(distance.float())[1])  # [query, key]
    one_hot = torch.nn.functional.one_hot(bucket.long(), n_buckets).float()  # [q, k, bucket]
    out = {name: [] for name in STATS}
    for pattern in patterns:
        p = pattern[0]  # [head, query, key]
        out["entropy"].append(-torch.special.xlogy(p, p).sum(-1))
        out["max_prob"].append(p.amax(-1))
        out["sink"].append(p[..., 0])
        out["mean_distance"].append((p * distance).sum(-1))
        out["sum_sq"].append((p * p).sum(-1))
        out["distance_hist"].append(torch.einsum("hqk,qkb->hqb", p, one_hot))
    return {name: torch.stack(values) for name, values in out.items()}  # [layer, head, query..]


def child(model_name: str, variant: str, lengths: list[int], repeats: int) -> None:
    import torch

    from analysis.statistics.attention_stats import attention_stats
    from kernels import distance_buckets
    from workbench import load_model

    model = load_model(model_name)
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.n_layers)]
    cached_bytes = [0]  # bytes of the patterns the last `patterns` run cached

    def once(prompt: str) -> dict:
        if variant == "attention_stats":
            result = attention_stats(model, [prompt], stats=STATS)
            return {name: getattr(result, name)[0] for name in STATS}
        with torch.no_grad():
            _, cache = model.run_with_cache(prompt, names=names)
        n = cache[names[0]].shape[-1]
        cached_bytes[0] = sum(cache[name].nbytes for name in names)
        return stats_from_patterns([cache[name] for name in names], distance_buckets(n))

    rows = []
    for n in lengths:
        prompt = prompt_of_length(model, n)
        once(prompt)  # warm-up
        resettable = _reset_peak_rss()
        before = _rss_kib("VmRSS")
        values = once(prompt)
        peak = _rss_kib("VmHWM") - before
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            once(prompt)
            times.append(time.perf_counter() - start)
        rows.append(
            {
                "n": n,
                "time_s": statistics.median(times),
                "times_s": [round(t, 5) for t in times],
                "peak_mib": round(peak / 1024, 2),
                "peak_is_exact": resettable,
                "cached_pattern_mib": round(cached_bytes[0] / 2**20, 2),
                "entropy_sample": values["entropy"].flatten()[:: max(1, n // 4)].tolist(),
                "values": {k: v.flatten().tolist() for k, v in values.items() if k != "entropy"}
                if n == lengths[0]
                else None,
            }
        )
    print(MARK + json.dumps({"rows": rows, "torch_threads": torch.get_num_threads()}), flush=True)


# ---------------------------------------------------------------------- parent
def _run_child(model: str, variant: str, lengths: list[int], repeats: int) -> dict:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "MALLOC_MMAP_THRESHOLD_": "131072",
        "TRANSFORMERS_VERBOSITY": "error",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    command = [sys.executable, __file__, "--child", variant, "--model", model]
    command += ["--lengths", ",".join(map(str, lengths)), "--repeats", str(repeats)]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    raise RuntimeError(f"{variant} child failed:\n{proc.stderr[-3000:]}")


def run(
    model: str = "minilm", lengths: tuple[int, ...] = (64, 128, 256, 512), repeats: int = 3
) -> dict:
    """Both variants at every length, side by side; returns the JSON-ready summary."""
    ours = _run_child(model, "attention_stats", list(lengths), repeats)
    eager = _run_child(model, "patterns", list(lengths), repeats)
    rows = []
    for a, b in zip(ours["rows"], eager["rows"], strict=True):
        pairs = list(zip(a["entropy_sample"], b["entropy_sample"], strict=True))
        for name in a["values"] or {}:
            pairs += list(zip(a["values"][name], b["values"][name], strict=True))
        diffs = [abs(x - y) / max(1.0, abs(y)) for x, y in pairs]  # relative above 1
        rows.append(
            {
                "n": a["n"],
                "attention_stats": {k: a[k] for k in ("time_s", "times_s", "peak_mib")},
                "patterns": {
                    k: b[k] for k in ("time_s", "times_s", "peak_mib", "cached_pattern_mib")
                },
                "time_ratio_patterns_over_stats": round(b["time_s"] / a["time_s"], 3),
                "peak_ratio_patterns_over_stats": round(
                    b["peak_mib"] / max(a["peak_mib"], 0.01), 2
                ),
                "max_diff": max(diffs),
                "peak_is_exact": a["peak_is_exact"] and b["peak_is_exact"],
            }
        )
    return {
        "benchmark": "attention_stats_model",
        "model": model,
        "stats": list(STATS),
        "backend": "auto (chunked on CPU)",
        "repeats": repeats,
        "torch_threads": ours["torch_threads"],
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--lengths", default="64,128,256,512")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=["attention_stats", "patterns"], default=None)
    args = parser.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]
    if args.child:
        sys.path.insert(0, str(REPO_ROOT))
        child(args.model, args.child, lengths, args.repeats)
        return
    result = run(args.model, tuple(lengths), args.repeats)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
