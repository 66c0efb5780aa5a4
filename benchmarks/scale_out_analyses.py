"""Scale-out benchmark for the sharded analyses: exhaustive per-edge patching (edge shards) and
GCG attacks (prompt shards), in process vs on Ray with 2 workers. Prints JSON and writes
benchmarks/results/scale_out_analyses.json.

Run: `OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/scale_out_analyses.py`
(needs the ray extra). Ray runs embedded (`ray.init()` on this machine, bound to 127.0.0.1,
usage stats off) and is shut down at the end.

Measured side by side in one process on tiny-ioi:
- exhaustive patching (110 edges, `--prompts` IOI prompts): in process unsharded, in process in
  `--edge-shards` shards (the cost of recomputing the base runs per shard), Ray warm (actors
  already hold the model) in the same shards; plus Ray's cold start (init, actors loading the
  model, first run);
- a flip attack on `--attack-prompts` prompts: in process vs Ray warm, one prompt per shard;
- whether every sharded / Ray result equals the unsharded in-process one exactly.
Caveat: on a 2-core machine shared with other work, two Ray workers compete with the driver and
with each other, so Ray may well lose here; the figures say what the machinery costs.
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

import torch  # noqa: E402
from scale_out import best_of  # noqa: E402

from analysis.attacks.token_attack import TokenAttack  # noqa: E402
from circuits import exhaustive_patching  # noqa: E402
from workbench import load_model  # noqa: E402
from workbench.executors import InProcessExecutor, RayExecutor  # noqa: E402
from workbench.tasks import make_task  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "scale_out_analyses.json"
ATTACK = {"objective": "flip", "heads": ((1, 0), (1, 2)), "steps": 10, "batch_size": 32, "seed": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--edge-shards", type=int, default=4)
    parser.add_argument("--attack-prompts", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    model = load_model("tiny-ioi")
    task = make_task("ioi", model, n=args.prompts, seed=0)
    per_shard = -(-110 // args.edge_shards)
    sharding = {"edges_per_shard": per_shard}
    plain_s, plain = best_of(args.repeats, lambda: exhaustive_patching(model, task))
    local_s, local = best_of(
        args.repeats,
        lambda: exhaustive_patching(model, task, executor=InProcessExecutor(), **sharding),
    )
    attack_task = make_task("ioi", model, n=args.attack_prompts, seed=1000)
    attack_plain_s, attack_plain = best_of(
        1, lambda: TokenAttack(**ATTACK).fit(model, attack_task).result_
    )
    with RayExecutor(num_workers=2) as ray_executor:
        started = time.perf_counter()
        cold = exhaustive_patching(model, task, executor=ray_executor, **sharding)
        cold_s = time.perf_counter() - started
        warm_s, warm = best_of(
            args.repeats,
            lambda: exhaustive_patching(model, task, executor=ray_executor, **sharding),
        )
        attack_ray_s, attack_ray = best_of(
            1,
            lambda: (
                TokenAttack(**ATTACK)
                .fit(model, attack_task, executor=ray_executor, prompts_per_shard=1)
                .result_
            ),
        )
        workers = len(ray_executor.workers())
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m_at_start": os.getloadavg()[0],
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "model": "tiny-ioi",
        "ray_workers": workers,
        "exhaustive_patching": {
            "prompts": args.prompts,
            "edges": 110,
            "shards": local.config["n_shards"],
            "inprocess_unsharded_s": round(plain_s, 3),
            "inprocess_sharded_s": round(local_s, 3),
            "ray_cold_start_and_run_s": round(cold_s, 3),
            "ray_warm_s": round(warm_s, 3),
            "ray_warm_speedup_vs_inprocess": round(plain_s / warm_s, 3),
            "forward_passes": {
                "unsharded": plain.config["n_forward"],
                "sharded": local.config["n_forward"],
            },
            "results_identical": all(
                torch.equal(c.scores, plain.scores) for c in (local, cold, warm)
            ),
        },
        "attack": {
            "prompts": args.attack_prompts,
            "shards": args.attack_prompts,
            **ATTACK,
            "heads": [list(h) for h in ATTACK["heads"]],
            "inprocess_s": round(attack_plain_s, 3),
            "ray_warm_s": round(attack_ray_s, 3),
            "ray_speedup_vs_inprocess": round(attack_plain_s / attack_ray_s, 3),
            "results_identical": attack_ray.prompts.equals(attack_plain.prompts)
            and attack_ray.head_stats.equals(attack_plain.head_stats),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
