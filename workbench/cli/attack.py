"""`workbench attack MODEL`: GCG token attack, per prompt or universal, beside a random baseline.

Runs `analysis.attacks.TokenAttack` on held-out IOI prompts for decoders (`--objective flip`:
make the model prefer S over IO; `raise_loss`: lower p(IO); `dissipation`: attention term
only) with an adversarial prefix of `--n-adv` tokens, or on sentences for encoders
(`--objective embedding`: an adversarial suffix that moves MiniLM's sentence embedding away).
`--heads L1H0,L1H2` (the older `1.0,1.2` is read too) and `--dissipation-weight` add the
attention-dissipation term. Every name of the IOI name list is banned from the span unless
`--allow-names`.

`--universal` optimises ONE span over `--search-prompts` prompts (task seed `--search-seed`)
and reports it on the `--n-prompts` held-out prompts (task seed `--task-seed`).

Every success rate comes with a percentile bootstrap interval over prompts (`--n-boot`
resamples, 95%) and, unless `--baseline-draws 0`, the random baseline: `--baseline-draws`
random spans of the same length and token filter per prompt (`analysis.attacks.baseline`).
`--save` stores the result as a run: kind "attack" (per prompt) or "universal_attack"
(`--universal`: the span, prompt counts and seeds, per-prompt rows, the rates with their
intervals and the baseline; `analysis.attacks.UniversalAttackResult`).
`--executor ray [--address A] [--per-shard N]` attacks the prompts in shards of N on Ray, with
the same results. Bad input (unknown objective, dissipation without heads, counts below their
minimum) exits 2 with one line.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from workbench.cli._common import UsageError, add_save_arguments, emit, save_if_asked, saved_line
from workbench.cli._executor import add_executor_arguments, executor_options

OBJECTIVES = ("flip", "raise_loss", "dissipation", "embedding")
LEVEL = 0.95


def rate_interval(values, *, n_boot: int, seed: int = 0) -> dict[str, Any]:
    """Mean of per-prompt `values` (0/1 successes or rates) with its percentile bootstrap
    interval over prompts (`circuits.bootstrap`), as JSON-ready fields."""
    from circuits.bootstrap import bootstrap_interval

    values = [float(v) for v in values]
    return bootstrap_interval(values, n_boot=n_boot, seed=seed, level=LEVEL).to_dict()


def baseline_summary(frame, *, n_boot: int) -> dict[str, Any]:
    """The random-span baseline table reduced to rates with intervals."""
    return {
        "draws_per_prompt": int(frame["draws"].iloc[0]),
        "success_rate_per_draw": rate_interval(frame["rate"], n_boot=n_boot),
        "any_of_draws_success_rate": rate_interval(frame["any_success"], n_boot=n_boot),
        "metric_mean": float(frame["metric_mean"].mean()),
    }


def _fmt(ci: dict[str, Any]) -> str:
    return f"{ci['estimate']:.2f} [{ci['low']:.2f}, {ci['high']:.2f}]"


def _text(payload: dict[str, Any]) -> str:
    n = payload["n_prompts"]
    if payload["mode"] == "universal":
        lines = [
            f"{payload['model']}: universal {payload['objective']} span {payload['span']!r} "
            f"({payload['steps_used']} steps on {payload['n_search']} search prompts)",
            f"held-out success rate on {n} prompt(s): {_fmt(payload['success'])}",
        ]
    else:
        lines = [
            f"{payload['model']}: {payload['objective']} attack on {n} prompt(s): "
            f"success rate {_fmt(payload['success'])}, mean steps (successes) "
            f"{payload['mean_steps']}"
        ]
        for row in payload["prompts"]:
            lines.append(
                f"  #{row['index']:<3} {'ok ' if row['success'] else 'no '} "
                f"steps {row['steps_used']:>3} metric {row['metric_before']:+.3f} -> "
                f"{row['metric_after']:+.3f}  adv {row['adversarial']!r}"
            )
    if payload.get("baseline"):
        base = payload["baseline"]
        lines.append(
            f"random spans ({base['draws_per_prompt']} per prompt, same length and filter): "
            f"{_fmt(base['success_rate_per_draw'])} per draw, "
            f"{_fmt(base['any_of_draws_success_rate'])} any of the draws"
        )
    if payload.get("entropy_progress") is not None:
        lines.append(
            f"targeted heads' entropy moved {payload['entropy_progress']:.2f} of the way to uniform"
        )
    lines += saved_line(payload)
    return "\n".join(lines)


def _prompts(args: argparse.Namespace, model, *, n: int, seed: int):
    from workbench.tasks import make_task

    if args.objective == "embedding":
        return list(make_task("similarity", model, n=n, seed=seed).clean_text)
    return make_task("ioi", model, n=n, seed=seed)


def _check(args: argparse.Namespace) -> None:
    from analysis.attacks.filters import check_count

    check_count("--n-prompts", args.n_prompts)
    check_count("--search-prompts", args.search_prompts)
    check_count("--baseline-draws", args.baseline_draws, 0)
    check_count("--n-boot", args.n_boot)
    if args.prompt and args.objective != "embedding":
        raise UsageError("--prompt: decoder objectives attack IOI prompts; use --n-prompts")


def run(args: argparse.Namespace) -> int:
    """Run `workbench attack` with parsed `args`; returns the exit code."""
    from analysis.attacks.baseline import random_baseline
    from analysis.attacks.token_attack import TokenAttack
    from analysis.attacks.universal import UniversalAttack
    from workbench import load_model
    from workbench.heads import parse_heads

    _check(args)
    sharding = executor_options(args)
    heads = parse_heads(args.heads) if args.heads else ()
    options = {
        "objective": args.objective,
        "heads": heads,
        "dissipation_weight": args.dissipation_weight,
        "dissipation": args.dissipation,
        "steps": args.steps,
        "n_adv": args.n_adv,
        "top_k": args.top_k,
        "batch_size": args.batch_size,
        "ban_names": not args.allow_names,
        "seed": args.seed,
        "progress": not args.quiet,
    }
    attack = UniversalAttack(**options) if args.universal else TokenAttack(**options)
    model = load_model(args.model)
    held_out = args.prompt or _prompts(args, model, n=args.n_prompts, seed=args.task_seed)
    n_boot = args.n_boot
    payload: dict[str, Any] = {"model": model.name, "objective": args.objective}
    payload["heads"] = [str(h) for h in attack_heads(attack)]
    if args.universal:
        search = _prompts(args, model, n=args.search_prompts, seed=args.search_seed)
        attack.fit(model, search, task_seed=args.search_seed)
        result = attack.evaluate(
            model,
            held_out,
            task_seed=None if args.prompt else args.task_seed,
            baseline_draws=args.baseline_draws,
            n_boot=n_boot,
        )
        payload |= result.summary()  # intervals and baseline computed by the result
    else:
        result = attack.fit(model, held_out, prompts_per_shard=args.per_shard, **sharding).result_
        progress = result.entropy_progress() if heads else math.nan
        payload |= {
            "mode": "per_prompt",
            "config": result.config,
            "n_prompts": len(result.prompts),
            "success_rate": result.success_rate,
            "success": rate_interval(result.prompts["success"], n_boot=n_boot),
            "mean_steps": None if math.isnan(result.mean_steps) else result.mean_steps,
            "entropy_progress": None if math.isnan(progress) else progress,
            "prompts": result.prompts.to_dict(orient="records"),
            "head_stats": result.head_stats.to_dict(orient="records"),
        }
    if args.baseline_draws and not args.universal:
        table = random_baseline(
            model, attack, held_out, n_draws=args.baseline_draws, seed=args.seed
        )
        payload["baseline"] = baseline_summary(table, n_boot=n_boot)
    save_if_asked(args, payload, result)
    emit(payload, as_json=args.json, text=_text)
    return 0


def attack_heads(attack) -> tuple:
    """The targeted heads of a `TokenAttack` or `UniversalAttack`."""
    return getattr(attack, "attack", attack).spec.heads


def register(sub, json_flag) -> None:
    """Add the `attack` subcommand to the `workbench` parser's subparsers `sub`."""
    p = sub.add_parser(
        "attack", parents=[json_flag], help="GCG token attack with attention dissipation"
    )
    p.add_argument("model", help="zoo name, checkpoint folder or hub id")
    p.add_argument(
        "--objective", choices=OBJECTIVES, default="flip", help="what the attack optimises"
    )
    p.add_argument(
        "--heads", default=None, help="targeted heads, e.g. L1H0,L1H2 (statistics, dissipation)"
    )
    p.add_argument(
        "--dissipation-weight", type=float, default=0.0, help="weight of the dissipation term"
    )
    p.add_argument("--dissipation", choices=("entropy", "span"), default="entropy")
    p.add_argument("--n-prompts", type=int, default=8, help="held-out prompts to attack")
    p.add_argument(
        "--task-seed", type=int, default=1000, help="seed of the prompt set (held out from 0)"
    )
    p.add_argument("--prompt", action="append", help="a sentence to attack (encoders; repeatable)")
    p.add_argument(
        "--universal", action="store_true", help="one span for all prompts (GCG multi-prompt)"
    )
    p.add_argument(
        "--search-prompts", type=int, default=16, help="prompts the universal span is fit on"
    )
    p.add_argument(
        "--search-seed", type=int, default=7, help="task seed of the universal search prompts"
    )
    p.add_argument(
        "--allow-names", action="store_true", help="let the span hold names of the IOI list"
    )
    p.add_argument(
        "--baseline-draws", type=int, default=32, help="random spans per prompt (0: none)"
    )
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of intervals")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--n-adv", type=int, default=5, help="adversarial span length in tokens")
    p.add_argument("--top-k", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="seed of the candidate sampling")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_executor_arguments(p, unit="prompts")
    add_save_arguments(p)
    p.set_defaults(func=run)
