"""Benchmark: GCG attacks with attention dissipation, and HeadHunter guidance, on tiny-ioi.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/guidance_attacks.py [--n-attack 10] [--n-dissipate 6]

Prints JSON and writes `benchmarks/results/guidance_attacks.json`. All prompts are held out:
IOI prompts from seed 4242 (the attack settings were tuned on seed 7; the zoo model trained on
its own generator stream), MiniLM sentences from the similarity task's seed 4242.

- `attack_flip`: success rate of the flip attack (tiny-ioi prefers S over IO) within 100 GCG
  steps, 5-token adversarial prefix, top-k 32, batch 64; steps used. Target: >= 70%.
- `attack_flip_dissipate`: flip plus the entropy-dissipation term (weight 6) on the four
  layer-1 heads (the heads that attend sharply from the answer position), 10-token prefix; a
  prompt succeeds only when it is flipped AND the heads' mean entropy at the answer position
  moved at least half-way to uniform (log of the visible keys). `entropy_progress` is
  (after - before) / (uniform - before) of the mean over prompts and heads. Target: >= 0.5.
- `attack_dissipate_only`: the dissipation objective alone (same heads and prefix).
- `attack_minilm`: MiniLM suffix attack (3 tokens, 20 steps): success = cosine of the sentence
  embedding to the original below 0.5.
- `guidance`: HeadHunter (2 rounds, top-1) selecting heads on 32 IOI prompts by the IOI logit
  difference under guidance (w = 1, alpha = 0), scored on 32 held-out prompts against no
  guidance and layer-level guidance (every head of the best layer, chosen on the selection
  split), for every perturbation method. Target: searched heads beat both (identity method)
  by more than 0.1% (ties within float noise do not count).

Timings (`seconds`) are wall-clock on whatever machine runs this; they are noisy on shared CPUs.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch

from analysis.attacks.token_attack import TokenAttack
from analysis.steering.head_hunter import HeadHunter, ioi_objective, split_rows
from workbench import load_model
from workbench.tasks import make_task

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "guidance_attacks.json"
HELD_OUT_SEED = 4242
LAYER1 = ((1, 0), (1, 1), (1, 2), (1, 3))
DISSIPATION_WEIGHT = 6.0  # tuned on 6 seed-7 prompts: 3 -> progress 0.52, 6 -> 0.61


def summarise(result, seconds: float) -> dict:
    prompts = result.prompts
    stats = result.head_stats.groupby(["stage", "layer", "head"])[
        ["entropy", "uniform_entropy", "sink", "max_prob"]
    ]
    per_head = stats.mean().reset_index()
    progress = result.entropy_progress() if len(result.head_stats) else math.nan
    return {
        "n_prompts": len(prompts),
        "success_rate": result.success_rate,
        "steps_used_mean": float(prompts["steps_used"].mean()),
        "steps_used_successes_mean": None if math.isnan(result.mean_steps) else result.mean_steps,
        "steps_used_max": int(prompts["steps_used"].max()),
        "metric_before_mean": float(prompts["metric_before"].mean()),
        "metric_after_mean": float(prompts["metric_after"].mean()),
        "entropy_progress": None if math.isnan(progress) else progress,
        "head_stats": per_head.round(4).to_dict(orient="records"),
        "config": result.config,
        "seconds": round(seconds, 1),
    }


def run_attack(model, prompts, **kwargs) -> dict:
    started = time.perf_counter()
    result = TokenAttack(**kwargs).fit(model, prompts).result_
    return summarise(result, time.perf_counter() - started)


def beats(score: float, *others: float, rel: float = 1e-3) -> bool:
    """`score` exceeds every other score by more than float noise (`rel` of its size)."""
    return all(score - other > rel * abs(score) for other in others)


def guidance_comparison(model) -> dict:
    task = make_task("ioi", model, n=64, seed=HELD_OUT_SEED + 1)
    select, heldout = split_rows(task.n_prompts, seed=0)
    objective = ioi_objective(task)
    methods = {}
    for method in ("identity", "uniform", "mean_query", "temperature", "zero"):
        hunter = HeadHunter(method=method, w=1.0, alpha=0.0, rounds=2, top_k=1).fit(
            model, objective, select=select, heldout=heldout
        )
        held = hunter.result_.comparison["heldout"]
        methods[method] = {
            "heads": [str(h) for h in hunter.heads_],
            "best_layer": hunter.best_layer_,
            "heldout": held,
            "select": hunter.result_.comparison["select"],
            "searched_minus_layer": held["searched_heads"] - held["layer_guidance"],
            "searched_beats_both": beats(
                held["searched_heads"], held["no_guidance"], held["layer_guidance"]
            ),
        }
    return {
        "objective": objective.name,
        "w": 1.0,
        "n_select": len(select),
        "n_heldout": len(heldout),
        "methods": methods,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n-attack", type=int, default=10, help="held-out prompts for the flip attack"
    )
    parser.add_argument(
        "--n-dissipate", type=int, default=6, help="prompts for the dissipation runs"
    )
    parser.add_argument("--n-minilm", type=int, default=4, help="sentences for the MiniLM attack")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load_model("tiny-ioi")
    flip_task = make_task("ioi", model, n=args.n_attack, seed=HELD_OUT_SEED)
    dissipate_task = make_task("ioi", model, n=args.n_dissipate, seed=HELD_OUT_SEED)
    common = {"steps": 100, "top_k": 32, "batch_size": 64, "seed": 0}
    report = {
        "machine": f"{platform.machine()}, torch {torch.__version__}, threads {torch.get_num_threads()}",
        "model": model.name,
        "attack_flip": run_attack(
            model, flip_task, objective="flip", heads=LAYER1, n_adv=5, **common
        ),
        "attack_flip_dissipate": run_attack(
            model,
            dissipate_task,
            objective="flip",
            heads=LAYER1,
            n_adv=10,
            dissipation_weight=DISSIPATION_WEIGHT,
            require_dissipation=True,
            **common,
        ),
        "attack_dissipate_only": run_attack(
            model, dissipate_task, objective="dissipation", heads=LAYER1, n_adv=10, **common
        ),
        "guidance": guidance_comparison(model),
    }
    minilm = load_model("minilm")
    sentences = list(
        make_task("similarity", minilm, n=args.n_minilm, seed=HELD_OUT_SEED).clean_text
    )
    report["attack_minilm"] = run_attack(
        minilm,
        sentences,
        objective="embedding",
        heads=((5, 0), (5, 1)),
        n_adv=3,
        steps=20,
        top_k=32,
        batch_size=64,
        seed=0,
        cosine_threshold=0.5,
    )
    progress = report["attack_flip_dissipate"]["entropy_progress"]
    report["targets"] = {
        "flip_success_rate_at_least_0.7": report["attack_flip"]["success_rate"] >= 0.7,
        "dissipation_entropy_progress_at_least_0.5": progress is not None and progress >= 0.5,
        "searched_heads_beat_no_and_layer_guidance_identity": report["guidance"]["methods"][
            "identity"
        ]["searched_beats_both"],
    }
    text = json.dumps(report, indent=2)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n")


if __name__ == "__main__":
    main()
