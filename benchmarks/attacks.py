"""Benchmark: GCG token attacks, per prompt and universal, beside random spans, with intervals.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/attacks.py

Prints JSON and writes `benchmarks/results/attacks.json`. (The attack part of
`benchmarks/guidance_attacks.py` is the older, smaller run; its guidance part is untouched.)

Splits: the universal spans are optimised on SEARCH prompts (IOI task seed 7, similarity seed 7)
and every reported rate is on HELD-OUT prompts (IOI seed 4242, similarity seed 4242), which
the search never sees. Per-prompt attacks run on the held-out prompts themselves (there is
nothing to hold out: each prompt gets its own span).

Every success rate has a 95% percentile bootstrap interval over prompts (`circuits.bootstrap`,
`sizes.n_boot` resamples, seed 0; `{estimate, low, high}`) and sits next to the random baseline: `sizes.baseline_draws` random
spans per prompt of the same length, position and token filter (`analysis.attacks.baseline`);
`per_draw` is the chance that one random span succeeds, `any_of_draws` a random search with that
many tries. `attack_minus_baseline` is the paired per-prompt difference (success - per-draw rate)
with its interval. Names of the IOI name list are banned from every span unless a section says
`ban_names: false`.

Sections (sizes in `sizes`):
- `tiny_ioi.flip_per_prompt`: flip attack (prefer S over IO) on each held-out prompt.
- `tiny_ioi.flip_universal`: one prefix for all prompts.
- `tiny_ioi.flip_per_prompt_names_allowed`: the per-prompt attack with names allowed, on the
  first `sizes.n_names_allowed` held-out prompts, with its own baseline (names allowed too).
- `tiny_ioi.dissipation`: universal prefixes with the flip objective plus each attention term of
  the workbench (`entropy`, `span`), and the flip objective alone, on the layer-1 heads: targeted
  heads' entropy before/after (paired difference with interval), the logit difference, flip
  rate. `hydra_paper_loss` records that the "Fool the Hydra" loss is NOT implemented (its
  equation was not available to this build).
- `minilm.embedding_universal` / `minilm.embedding_per_prompt`: MiniLM suffix attack, success =
  cosine of the sentence embedding to the original below 0.5. The similarity task repeats
  sentences, so the held-out sentences are the first distinct ones of seed 4242 that are not
  search sentences; the IOI held-out and search prompts share no prompt.

Timings (`seconds`) are wall-clock on whatever machine runs this, noisy on shared CPUs;
`cpu_seconds_total` is the process's CPU time (one thread), the figure to size runs by.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# `python benchmarks/attacks.py` puts benchmarks/ first on sys.path, where
# benchmarks/circuits.py would shadow the `circuits` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from analysis.attacks.baseline import random_baseline  # noqa: E402
from analysis.attacks.token_attack import TokenAttack  # noqa: E402
from analysis.attacks.universal import UniversalAttack  # noqa: E402
from circuits.bootstrap import bootstrap_interval  # noqa: E402
from workbench import load_model  # noqa: E402
from workbench.tasks import make_task  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "attacks.json"
SEARCH_SEED, HELD_OUT_SEED = 7, 4242
LAYER1 = ((1, 0), (1, 1), (1, 2), (1, 3))
SIZES = {
    "n_held_out": 100,
    "n_search": 32,
    "n_search_dissipation": 16,
    "n_names_allowed": 40,
    "n_adv": 5,
    "steps_per_prompt": 20,
    "steps_universal": 20,
    "steps_dissipation": 15,
    "top_k": 32,
    "batch_size": 64,
    "baseline_draws": 32,
    "n_boot": 1000,
    "dissipation_weight": 6.0,
    "minilm_n_held_out": 100,
    "minilm_n_search": 16,
    "minilm_n_per_prompt": 16,
    "minilm_n_adv": 3,
    "minilm_steps": 8,
    "minilm_batch_size": 32,
    "minilm_baseline_draws": 8,
}
HYDRA = {
    "implemented": False,
    "reason": (
        "the attention-dissipation loss of 'Fool the Hydra' (arXiv 2312.00173) is defined in "
        "the paper body, which was not available offline to this build (only the abstract: "
        "'we also maximize the transformer-specific loss by dissipating its attention blocks'); "
        "no formula is guessed. The 'entropy' and 'span' terms below are the workbench's own."
    ),
}


def ci(values) -> dict:
    """Mean with its 95% percentile bootstrap interval over prompts."""
    values = [float(v) for v in values]
    interval = bootstrap_interval(values, n_boot=SIZES["n_boot"], seed=0)
    return {"estimate": interval.estimate, "low": interval.low, "high": interval.high}


def baseline_block(table, rows=None) -> dict:
    table = table if rows is None else table[table["index"].isin(rows)]
    return {
        "draws_per_prompt": int(table["draws"].iloc[0]),
        "per_draw": ci(table["rate"]),
        "any_of_draws": ci(table["any_success"]),
        "metric_mean": float(table["metric_mean"].mean()),
        **entropy_block(table),
    }


def entropy_block(table) -> dict:
    """Targeted heads' mean entropy under random spans (empty when the attack has no heads)."""
    if table["entropy_mean"].isna().all():
        return {}
    return {
        "entropy_before": ci(table["entropy_before"]),
        "entropy_mean": ci(table["entropy_mean"]),
        "entropy_change": ci(table["entropy_mean"] - table["entropy_before"]),
    }


def paired(frame, table) -> dict:
    """Per-prompt success minus the prompt's per-draw baseline rate (aligned on index)."""
    rate = table.set_index("index")["rate"]
    return ci([float(row.success) - float(rate[row.index]) for row in frame.itertuples()])


def per_prompt(model, prompts, table, **kwargs) -> dict:
    started = time.perf_counter()
    result = TokenAttack(**kwargs).fit(model, prompts).result_
    frame = result.prompts
    return {
        "n_prompts": len(frame),
        "success": ci(frame["success"]),
        "baseline": baseline_block(table, set(frame["index"])),
        "attack_minus_baseline": paired(frame, table),
        "steps_used_mean": float(frame["steps_used"].mean()),
        "metric_before": ci(frame["metric_before"]),
        "metric_after": ci(frame["metric_after"]),
        "examples": frame["adversarial"].head(5).tolist(),
        "config": result.config,
        "seconds": round(time.perf_counter() - started, 1),
    }


def universal(model, search, held_out, table, **kwargs) -> dict:
    started = time.perf_counter()
    attack = UniversalAttack(**kwargs).fit(model, search)
    frame = attack.evaluate(model, held_out, baseline_draws=0).to_frame()  # own baseline below
    block = {
        "span": attack.text_,
        "steps_used": attack.steps_used_,
        "n_search": len(attack.search_),
        "search_success_rate": float(attack.search_["success"].mean()),
        "n_prompts": len(frame),
        "success": ci(frame["success"]),
        "success_with_initial_span": ci(frame["success_before"]),
        "baseline": baseline_block(table),
        "attack_minus_baseline": paired(frame, table),
        "metric_before": ci(frame["metric_before"]),
        "metric_after": ci(frame["metric_after"]),
        "retokenises_rate": float(frame["retokenises"].mean()),
        "curve": [round(v, 4) for v in attack.curve_],
        "seconds": round(time.perf_counter() - started, 1),
    }
    if not np.isnan(frame["entropy_before"]).all():
        block["entropy_before"] = ci(frame["entropy_before"])
        block["entropy_after"] = ci(frame["entropy_after"])
        block["entropy_change"] = ci(frame["entropy_after"] - frame["entropy_before"])
        block["uniform_entropy_mean"] = float(frame["uniform_entropy"].mean())
    return block


def tiny_ioi() -> dict:
    s = SIZES
    model = load_model("tiny-ioi")
    held = make_task("ioi", model, n=s["n_held_out"], seed=HELD_OUT_SEED)
    search = make_task("ioi", model, n=s["n_search"], seed=SEARCH_SEED)
    common = {"n_adv": s["n_adv"], "top_k": s["top_k"], "batch_size": s["batch_size"], "seed": 0}
    flip = TokenAttack(objective="flip", heads=LAYER1, **common)  # heads: entropy columns
    started = time.perf_counter()
    table = random_baseline(model, flip, held, n_draws=s["baseline_draws"], seed=0)
    report = {"baseline_seconds": round(time.perf_counter() - started, 1)}
    report["flip_per_prompt"] = per_prompt(
        model, held, table, objective="flip", steps=s["steps_per_prompt"], **common
    )
    report["flip_universal"] = universal(
        model, search, held, table, objective="flip", steps=s["steps_universal"], **common
    )
    rows = list(range(s["n_names_allowed"]))
    allowed_attack = TokenAttack(objective="flip", ban_names=False, **common)
    open_table = random_baseline(
        model, allowed_attack, held, rows=rows, n_draws=s["baseline_draws"], seed=0
    )
    started = time.perf_counter()
    result = TokenAttack(
        objective="flip", ban_names=False, steps=s["steps_per_prompt"], **common
    ).fit(model, held, rows=rows)
    frame = result.result_.prompts
    report["flip_per_prompt_names_allowed"] = {
        "ban_names": False,
        "n_prompts": len(frame),
        "success": ci(frame["success"]),
        "baseline": baseline_block(open_table),
        "attack_minus_baseline": paired(frame, open_table),
        "steps_used_mean": float(frame["steps_used"].mean()),
        "examples": frame["adversarial"].head(5).tolist(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    small = make_task("ioi", model, n=s["n_search_dissipation"], seed=SEARCH_SEED)
    dissipation = {"heads": [f"L{h}H{k}" for h, k in LAYER1], "hydra_paper_loss": HYDRA}
    heads = {"heads": LAYER1, "steps": s["steps_dissipation"], **common}
    for label, extra in (
        ("flip_only", {}),
        ("flip_plus_workbench_entropy_term", {"dissipation": "entropy"}),
        ("flip_plus_workbench_span_term", {"dissipation": "span"}),
    ):
        weight = s["dissipation_weight"] if extra else 0.0
        dissipation[label] = universal(
            model, small, held, table, objective="flip", dissipation_weight=weight, **extra, **heads
        )
    report["dissipation"] = dissipation
    return report


def minilm() -> dict:
    s = SIZES
    model = load_model("minilm")
    search_task = make_task("similarity", model, n=s["minilm_n_search"], seed=SEARCH_SEED)
    search = list(dict.fromkeys(search_task.clean_text))  # distinct search sentences
    # the similarity task repeats sentences: keep distinct held-out sentences not in the search
    drawn = make_task("similarity", model, n=2 * s["minilm_n_held_out"], seed=HELD_OUT_SEED)
    distinct = dict.fromkeys(t for t in drawn.clean_text if t not in set(search))
    held = list(distinct)[: s["minilm_n_held_out"]]
    if len(held) < s["minilm_n_held_out"]:
        raise ValueError(f"minilm: only {len(held)} distinct held-out sentences")
    common = {
        "objective": "embedding",
        "heads": ((5, 0), (5, 1)),
        "n_adv": s["minilm_n_adv"],
        "top_k": s["top_k"],
        "batch_size": s["minilm_batch_size"],
        "seed": 0,
        "cosine_threshold": 0.5,
    }
    started = time.perf_counter()
    table = random_baseline(
        model, TokenAttack(**common), held, n_draws=s["minilm_baseline_draws"], seed=0
    )
    report = {"baseline_seconds": round(time.perf_counter() - started, 1)}
    report["embedding_universal"] = universal(
        model, search, held, table, steps=s["minilm_steps"], **common
    )
    report["embedding_per_prompt"] = per_prompt(
        model, held[: s["minilm_n_per_prompt"]], table, steps=s["minilm_steps"], **common
    )
    return report


def main() -> None:
    torch.manual_seed(0)
    started, cpu = time.perf_counter(), time.process_time()
    report = {
        "machine": f"{platform.machine()}, torch {torch.__version__}, threads {torch.get_num_threads()}",
        "splits": {"search_seed": SEARCH_SEED, "held_out_seed": HELD_OUT_SEED},
        "sizes": SIZES,
        "tiny_ioi": tiny_ioi(),
        "minilm": minilm(),
    }
    report["seconds_total"] = round(time.perf_counter() - started, 1)
    report["cpu_seconds_total"] = round(time.process_time() - cpu, 1)
    text = json.dumps(report, indent=2)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n")


if __name__ == "__main__":
    main()
