"""Scale-out benchmark: corpus statistics in process vs on Ray with 2 workers, and Ray's
per-shard overhead. Prints JSON and writes benchmarks/results/scale_out.json.

Run: `HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/scale_out.py [--docs N]` (needs the ray
extra). Ray runs embedded (`ray.init()` on this machine, bound to 127.0.0.1, usage stats off)
and is shut down at the end.

Measured side by side in one process on the same documents (IOI prompts on tiny-ioi):
- in-process sweep (best of `--repeats`);
- Ray cold start: `ray.init()` plus two actors loading the model, plus the first sweep;
- Ray warm sweep (actors already hold the model; best of `--repeats`);
- per-shard overhead: a no-op shard function over many shards, Ray minus in process, per shard.
Caveat: on a 2-core machine shared with other work, two Ray workers compete with the driver
and with each other, so Ray may well lose here; the figures say what the machinery costs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repo's packages, also under a stale editable install
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from analysis.statistics.corpus_stats import corpus_stats  # noqa: E402
from workbench import load_model  # noqa: E402
from workbench.executors import RayExecutor, make_shards, run_sharded  # noqa: E402
from workbench.tasks.ioi_prompts import generate_ioi_prompts  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "scale_out.json"


def noop_shard(model, shard) -> pd.DataFrame:
    """A shard function that does no model work: isolates the executor's own cost."""
    return pd.DataFrame({"start": [shard.start], "n": [len(shard.items)]})


def best_of(repeats: int, fn) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - started)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=384)
    parser.add_argument("--docs-per-shard", type=int, default=16)
    parser.add_argument("--noop-shards", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    model = load_model("tiny-ioi")
    texts = [p.text for p in generate_ioi_prompts(args.docs, seed=0)]
    sweep = {"docs_per_shard": args.docs_per_shard}
    inprocess_s, expected = best_of(args.repeats, lambda: corpus_stats(model, texts, **sweep))

    noop = make_shards(list(range(args.noop_shards)), size=1, key="noop")
    inprocess_noop_s, _ = best_of(args.repeats, lambda: run_sharded(noop_shard, noop, model=model))

    with RayExecutor(num_workers=2) as ray_executor:
        started = time.perf_counter()
        got = corpus_stats(model, texts, executor=ray_executor, **sweep)
        cold_s = time.perf_counter() - started
        warm_s, got_warm = best_of(
            args.repeats, lambda: corpus_stats(model, texts, executor=ray_executor, **sweep)
        )
        ray_noop_s, _ = best_of(
            args.repeats,
            lambda: run_sharded(noop_shard, noop, model=model, executor=ray_executor),
        )
        workers = len(ray_executor.workers())
    identical = all(
        r.per_head.equals(expected.per_head)
        and torch.equal(r.distance_hist, expected.distance_hist)
        for r in (got, got_warm)
    )
    n_shards = -(-args.docs // args.docs_per_shard)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m_at_start": os.getloadavg()[0],
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "model": "tiny-ioi",
        "documents": args.docs,
        "shards": n_shards,
        "ray_workers": workers,
        "inprocess_sweep_s": round(inprocess_s, 3),
        "ray_cold_start_and_sweep_s": round(cold_s, 3),
        "ray_warm_sweep_s": round(warm_s, 3),
        "ray_warm_speedup_vs_inprocess": round(inprocess_s / warm_s, 3),
        "documents_per_s": {
            "inprocess": round(args.docs / inprocess_s, 1),
            "ray_warm": round(args.docs / warm_s, 1),
        },
        "noop_shards": args.noop_shards,
        "ray_overhead_per_shard_ms": round(
            1e3 * (ray_noop_s - inprocess_noop_s) / args.noop_shards, 3
        ),
        "inprocess_overhead_per_shard_ms": round(1e3 * inprocess_noop_s / args.noop_shards, 3),
        "results_identical": identical,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
