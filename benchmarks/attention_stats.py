"""Benchmark: attention statistics without the n x n pattern (kernels.attention_with_stats).

    .venv/bin/python benchmarks/attention_stats.py                 # CPU section
    .venv/bin/python benchmarks/attention_stats.py --gpu --no-cpu  # GPU section (needs CUDA)
    .venv/bin/python benchmarks/attention_stats.py --compile-sm90  # sm_90 register report, no GPU

Prints JSON and merges it into `benchmarks/results/attention_stats.json` (sections not run this
time are kept from the previous file).

`accuracy`: the max abs error of the chunked path and of the Triton kernel (through the
interpreter) against the float64 reference, per input dtype and statistic, at n=200.

CPU section (`cpu`): the chunked torch path (backend="chunked", chunk_size 256) vs the eager
baseline (the float32 "materialise the pattern, then reduce" path: kernels.reference at float32,
the same code as the float64 ground truth), both computing the output and DEFAULT_STATS, causal,
batch 1, 12 heads, d_head 64, fp32, n in {512, ..., 8192}, one torch thread. Each (backend, n)
runs in a fresh Python process: it builds q/k/v, runs a 64-token warm-up, resets the peak RSS
(/proc/self/clear_refs), records VmRSS, runs the case once and reports VmHWM - VmRSS as
`peak_mib` (the resident-set growth: torch CPU allocations are invisible to tracemalloc), then
times `repeats` more runs (median). Eager cases whose pattern-sized tensors would exceed
--max-eager-gib are skipped and say so (the machine is shared; the OOM killer is not a result).
Timings are noisy on a shared 2-core machine; never assert on them in tests.

`model`: filled by `benchmarks/attention_stats_model.py: run() -> dict` when that file exists.
GPU and sm_90 sections: see benchmarks/attention_stats_gpu.py.
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
RESULTS = REPO_ROOT / "benchmarks" / "results" / "attention_stats.json"
SIZES = (512, 1024, 2048, 4096, 8192)
HEADS, D_HEAD = 12, 64
MARK = "@@RESULT@@ "
TARGET = {"n": 4096, "max_memory_fraction": 1 / 20, "max_time_ratio": 1.0}


def _proc_kib(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith(field + ":"))
    return int(line.split()[1])


def child(backend: str, n: int, repeats: int) -> None:
    """Run one case in this (fresh) process and print its measurements after MARK."""
    import torch

    from kernels import DEFAULT_STATS, attention_with_stats
    from kernels.contract import validate_inputs
    from kernels.reference import reference_attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(1, HEADS, n, D_HEAD) for _ in range(3))  # [batch, head, pos, d_head]
    kwargs = dict(causal=True, stats=DEFAULT_STATS)

    def run(q, k, v):
        if backend == "chunked":
            return attention_with_stats(q, k, v, backend="chunked", chunk_size=256, **kwargs)
        config = validate_inputs(
            q,
            k,
            v,
            sm_scale=None,
            backend="reference",
            key_lengths=None,
            sink_tokens=1,
            mass_block=64,
            write_out=True,
            chunk_size=256,
            **kwargs,
        )
        return reference_attention(q, k, v, config, compute_dtype=torch.float32)

    run(q[:, :, :64], k[:, :, :64], v[:, :, :64])  # warm-up: libraries, allocator
    exact_peak = True
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        exact_peak = False
    baseline_kib = _proc_kib("VmRSS")
    started = time.perf_counter()
    out, stats = run(q, k, v)
    first_s = time.perf_counter() - started
    peak_kib = _proc_kib("VmHWM") - baseline_kib
    del out, stats
    times = [first_s]
    for _ in range(repeats - 1):
        started = time.perf_counter()
        run(q, k, v)
        times.append(time.perf_counter() - started)
    payload = {
        "peak_mib": round(peak_kib / 1024, 1),
        "peak_is_exact": exact_peak,
        "median_s": round(statistics.median(times), 4),
        "times_s": [round(t, 4) for t in times],
        "torch_threads": torch.get_num_threads(),
    }
    print(MARK + json.dumps(payload), flush=True)


def accuracy_child(n: int) -> None:
    """Max abs error vs the float64 reference, per backend, input dtype and statistic (causal,
    GQA 4 q heads / 2 kv heads, d_head 64, all statistics; Triton through the interpreter)."""
    import torch

    from kernels import STAT_NAMES, attention_with_stats

    gen = torch.Generator().manual_seed(0)
    base = [torch.randn(1, heads, n, 64, generator=gen) for heads in (4, 2, 2)]
    table = {}
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        q, k, v = (t.to(dtype) for t in base)  # [batch, head, pos, d_head]
        runs = {
            backend: attention_with_stats(
                q, k, v, causal=True, stats=STAT_NAMES, backend=backend, sink_tokens=4
            )
            for backend in ("reference", "chunked", "triton")
        }
        ref_out, ref_stats = runs.pop("reference")
        for backend, (out, stats) in runs.items():
            errors = {"out": float((out.float() - ref_out.float()).abs().max())}
            for name in STAT_NAMES:
                errors[name] = float((getattr(stats, name) - getattr(ref_stats, name)).abs().max())
            table[f"{backend}/{str(dtype).removeprefix('torch.')}"] = errors
    print(MARK + json.dumps({"n": n, "max_abs_error": table}), flush=True)


def run_child(backend: str, n: int, repeats: int, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO_ROOT)}
    if backend == "accuracy":
        env["TRITON_INTERPRET"] = "1"
    command = [sys.executable, __file__, "--child", backend, str(n), str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-500:]}"}
    return json.loads(lines[-1][len(MARK) :])


def eager_estimate_gib(n: int) -> float:
    """About three live float32 [heads, n, n] tensors at the eager path's peak."""
    return 3 * HEADS * n * n * 4 / 2**30


def cpu_section(sizes, repeats: int, threads: int, max_eager_gib: float) -> dict:
    cases = []
    for n in sizes:
        case = {"n": n, "chunked": run_child("chunked", n, repeats, threads)}
        estimate = eager_estimate_gib(n)
        if estimate > max_eager_gib:
            case["eager"] = {
                "skipped": f"estimated peak {estimate:.1f} GiB > --max-eager-gib {max_eager_gib}"
            }
        else:
            case["eager"] = run_child("eager", n, repeats, threads)
        chunked, eager = case["chunked"], case["eager"]
        if "peak_mib" in chunked and "peak_mib" in eager:
            case["memory_ratio_eager_over_chunked"] = round(
                eager["peak_mib"] / max(chunked["peak_mib"], 0.1), 1
            )
            case["time_ratio_chunked_over_eager"] = round(
                chunked["median_s"] / eager["median_s"], 3
            )
        print(json.dumps(case), file=sys.stderr, flush=True)
        cases.append(case)
    at_target = next((case for case in cases if case["n"] == TARGET["n"]), None)
    verdict = None
    if at_target and "memory_ratio_eager_over_chunked" in at_target:
        verdict = {
            "memory_ok": at_target["memory_ratio_eager_over_chunked"]
            >= 1 / TARGET["max_memory_fraction"],
            "time_ok": at_target["time_ratio_chunked_over_eager"] <= TARGET["max_time_ratio"],
        }
    return {
        "config": {
            "batch": 1,
            "heads": HEADS,
            "d_head": D_HEAD,
            "dtype": "float32",
            "causal": True,
            "stats": "DEFAULT_STATS + out",
            "chunk_size": 256,
            "repeats": repeats,
            "torch_threads": threads,
            "memory": "peak RSS growth (VmHWM - VmRSS) per fresh process",
        },
        "cases": cases,
        "target": {**TARGET, "verdict": verdict},
    }


def model_section() -> dict | None:
    """The whole-model comparison from benchmarks/attention_stats_model.py, if present."""
    path = REPO_ROOT / "benchmarks" / "attention_stats_model.py"
    if not path.exists():
        return None
    sys.path.insert(0, str(path.parent))
    try:
        import attention_stats_model

        return attention_stats_model.run()
    except Exception as error:  # keep the other sections' results
        return {"error": f"{type(error).__name__}: {error}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("BACKEND", "N", "REPEATS"), help="internal")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-eager-gib", type=float, default=6.0)
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU timing section")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the accuracy table")
    parser.add_argument("--gpu", action="store_true", help="run the GPU section (needs CUDA)")
    parser.add_argument("--compile-sm90", action="store_true", help="sm_90 register report")
    parser.add_argument("--no-model", action="store_true", help="skip the whole-model section")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.child:
        backend, n, repeats = args.child
        if backend == "accuracy":
            accuracy_child(int(n))
        else:
            child(backend, int(n), int(repeats))
        return

    sys.path.insert(0, str(REPO_ROOT))
    results = json.loads(args.output.read_text()) if args.output.exists() else {}
    results["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count()}
    if not args.no_accuracy:
        results["accuracy"] = run_child("accuracy", 200, 1, args.threads)
    if not args.no_cpu:
        results["cpu"] = cpu_section(args.sizes, args.repeats, args.threads, args.max_eager_gib)
    if args.gpu or args.compile_sm90:
        sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
        import attention_stats_gpu

        if args.gpu:
            results["gpu"] = attention_stats_gpu.gpu_section()
        if args.compile_sm90:
            results["sm90_compile"] = attention_stats_gpu.sm90_register_report()
    if not args.no_model:
        results["model"] = model_section()
    results.setdefault("model", None)
    text = json.dumps(results, indent=2)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
