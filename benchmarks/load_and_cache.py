"""Benchmark: model load times and full vs names-filtered activation caches.

    .venv/bin/python benchmarks/load_and_cache.py [--threads N]      (or `make bench`)

Prints JSON and writes `benchmarks/results/load_and_cache.json`. For every trained zoo model:

- `cold_load_s`: `workbench.load_model(name)` in a fresh Python process, which includes
  importing torch and TransformerLens (both imported lazily by the first load);
  `cold_load_after_import_s`: the same with TransformerLens already imported;
  `warm_load_s`: a second `load_model` in that process. "Cold" means a fresh process, not a
  cold disk cache: files read by earlier runs are likely in the page cache.
- `transformer_lens_import_s` (top level): `import transformer_lens` alone (torch included), in
  a fresh process.
- `cache.full` / `cache.filtered`: one forward pass on a 128-token prompt with every hook cached
  (`model.bridge.run_with_cache(tokens)`) vs only two `hook_pattern` hooks
  (`model.run_with_cache(tokens, names=[...])`): median wall time of 5 runs after a warm-up,
  the cached tensors' bytes (`cached_bytes` sums every entry; `cached_unique_bytes` counts
  shared storage once: many hooks alias the same tensor), and the process's peak-RSS increase
  over its post-load RSS during the warm-up and those runs (each variant in its own fresh
  process, so this includes one-time first-forward allocations; the peak is reset through
  /proc/self/clear_refs where Linux allows it, else the result is a lower bound).

Every child process runs torch with `--threads` intra-op threads (default 1, set through
OMP_NUM_THREADS): on a 2-core machine shared with another busy process, 2 threads made a tiny
forward pass about 40x slower (thread spinning), which would swamp what is measured here.
Timings are still noisy on shared machines; never assert on them in tests.
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

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results" / "load_and_cache.json"
PROMPT_TOKENS = 128
REPEATS = 5
COLD_LOAD_TARGET_S = 10.0
MARK = "@@RESULT@@ "
SENTENCE = (
    "The quick brown fox jumps over the lazy dog while the old farmer watches from the porch "
    "and drinks his morning coffee. "
)


# ---------------------------------------------------------------------- child processes
def _emit(payload: dict) -> None:
    print(MARK + json.dumps(payload), flush=True)


def child_import_tl() -> None:
    started = time.perf_counter()
    import transformer_lens  # noqa: F401

    _emit({"transformer_lens_import_s": time.perf_counter() - started})


def child_load(name: str, preimport: bool) -> None:
    started = time.perf_counter()
    import workbench

    imported = time.perf_counter()
    if preimport:
        import transformer_lens.model_bridge  # noqa: F401
    t0 = time.perf_counter()
    workbench.load_model(name)
    t1 = time.perf_counter()
    workbench.load_model(name)
    t2 = time.perf_counter()
    _emit(
        {
            "import_workbench_s": imported - started,
            "first_load_s": t1 - t0,
            "second_load_s": t2 - t1,
        }
    )


def prompt_tokens(model):
    """`[1, n]` tokens of natural text (IOI sentences for the decoders), n = PROMPT_TOKENS or
    the model's context if shorter (tiny-induction: 64)."""
    if model.is_causal:
        from workbench.tasks.ioi_prompts import generate_ioi_prompts

        sentences = [f"{p.text} {p.io}." for p in generate_ioi_prompts(40, seed=0)]
    else:
        sentences = [SENTENCE] * 40
    length = min(PROMPT_TOKENS, model.n_ctx)
    tokens = model.bridge.to_tokens(" ".join(sentences), truncate=True)  # [1, pos]
    if tokens.shape[1] < length:
        raise RuntimeError(f"could not build a {length}-token prompt for {model.name}")
    return tokens[:, :length]  # [1, length]


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child_cache(name: str, variant: str) -> None:
    import gc

    import torch

    import workbench

    model = workbench.load_model(name)
    tokens = prompt_tokens(model)  # [1, pos]
    names = sorted({f"blocks.{layer}.attn.hook_pattern" for layer in (0, model.n_layers - 1)})

    def run():
        with torch.no_grad():
            if variant == "full":
                return model.bridge.run_with_cache(tokens)
            return model.run_with_cache(tokens, names=names)

    gc.collect()
    peak_reset = _reset_peak_rss()
    baseline_kib = _rss_kib("VmRSS")  # after loading, before any forward pass
    _, cache = run()  # warm-up (counts towards the peak, not the times)
    tensors = [v for v in (cache[k] for k in cache) if isinstance(v, torch.Tensor)]
    n_bytes = sum(t.numel() * t.element_size() for t in tensors)
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    n_tensors, n_unique = len(tensors), sum(storages.values())
    del cache, tensors, storages, _
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        out, cache = run()
        times.append(time.perf_counter() - started)
        del out, cache
    peak_kib = _rss_kib("VmHWM")
    _emit(
        {
            "names": None if variant == "full" else names,
            "prompt_tokens": int(tokens.shape[1]),
            "torch_threads": torch.get_num_threads(),
            "median_s": statistics.median(times),
            "times_s": [round(t, 5) for t in times],
            "cached_tensors": n_tensors,
            "cached_bytes": n_bytes,
            "cached_unique_bytes": n_unique,
            "peak_rss_delta_bytes": max(0, peak_kib - baseline_kib) * 1024,
            "peak_rss_exact": peak_reset,
        }
    )


# ---------------------------------------------------------------------- parent
def _child(threads: int, *args: str) -> dict:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO_ROOT),
        "OMP_NUM_THREADS": str(threads),
    }
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {args} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1][len(MARK) :])


def machine_info(threads: int) -> dict:
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "torch_threads_default": torch.get_num_threads(),
        "torch_threads_used": threads,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main(threads: int = 1) -> dict:
    from workbench.zoo import ZOO

    result: dict = {
        "benchmark": "load_and_cache",
        "machine": machine_info(threads),
        "prompt_tokens": PROMPT_TOKENS,
        "repeats": REPEATS,
        "targets": {"cold_load_s": COLD_LOAD_TARGET_S},
        "transformer_lens_import_s": round(
            _child(threads, "import_tl")["transformer_lens_import_s"], 3
        ),
        "models": {},
        "skipped": {},
    }
    for name, entry in ZOO.items():
        if not entry.is_available():
            result["skipped"][name] = "not trained"
            continue
        cold = _child(threads, "load", name, "cold")
        after_import = _child(threads, "load", name, "preimport")
        full = _child(threads, "cache", name, "full")
        filtered = _child(threads, "cache", name, "filtered")
        result["models"][name] = {
            "cold_load_s": round(cold["first_load_s"], 3),
            "cold_load_after_import_s": round(after_import["first_load_s"], 3),
            "warm_load_s": round(after_import["second_load_s"], 4),
            "import_workbench_s": round(cold["import_workbench_s"], 3),
            "meets_cold_load_target": cold["first_load_s"] < COLD_LOAD_TARGET_S,
            "cache": {"full": full, "filtered": filtered},
            "filtered_vs_full": {
                "time_ratio": round(filtered["median_s"] / full["median_s"], 3),
                "cached_bytes_ratio": round(filtered["cached_bytes"] / full["cached_bytes"], 4),
            },
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        kind, *rest = sys.argv[2:]
        if kind == "import_tl":
            child_import_tl()
        elif kind == "load":
            child_load(rest[0], preimport=rest[1] == "preimport")
        else:
            child_cache(rest[0], rest[1])
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
        print(json.dumps(main(parser.parse_args().threads), indent=2))
