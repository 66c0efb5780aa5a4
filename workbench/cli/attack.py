"""`workbench attack MODEL`: GCG token attack, optionally dissipating chosen heads' attention.

Runs `analysis.attacks.TokenAttack` on held-out IOI prompts for decoders (`--objective flip`:
make the model prefer S over IO; `raise_loss`: lower p(IO); `dissipation`: attention term
only) with an adversarial prefix of `--n-adv` tokens, or on sentences for encoders
(`--objective embedding`: an adversarial suffix that moves MiniLM's sentence embedding away).
`--heads L1H0,L1H2` (the older `1.0,1.2` is read too) and `--dissipation-weight` add the
attention-dissipation term. Prints the success
rate, steps used and the targeted heads' entropy before/after; `--save` stores the result
(kind "attack"). `--executor ray [--address A] [--per-shard N]` attacks the prompts in shards of
N on Ray, with the same results. Bad input (unknown objective, dissipation without heads) exits 2 with one line.
"""

from __future__ import annotations

import argparse
from typing import Any

from workbench.cli._common import UsageError, add_save_arguments, emit, save_if_asked, saved_line
from workbench.cli._executor import add_executor_arguments, executor_options

OBJECTIVES = ("flip", "raise_loss", "dissipation", "embedding")


def _text(payload: dict[str, Any]) -> str:
    lines = [
        f"{payload['model']}: {payload['objective']} attack on {len(payload['prompts'])} prompt(s): "
        f"success rate {payload['success_rate']:.2f}, mean steps (successes) {payload['mean_steps']}"
    ]
    for row in payload["prompts"]:
        lines.append(
            f"  #{row['index']:<3} {'ok ' if row['success'] else 'no '} steps {row['steps_used']:>3} "
            f"metric {row['metric_before']:+.3f} -> {row['metric_after']:+.3f}  adv {row['adversarial']!r}"
        )
    if payload["entropy_progress"] is not None:
        lines.append(
            f"targeted heads' entropy moved {payload['entropy_progress']:.2f} of the way to uniform"
        )
    lines += saved_line(payload)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run `workbench attack` with parsed `args`; returns the exit code."""
    import math

    from analysis.attacks.token_attack import TokenAttack
    from workbench import load_model
    from workbench.heads import parse_heads
    from workbench.tasks import make_task

    sharding = executor_options(args)
    heads = parse_heads(args.heads) if args.heads else ()
    attack = TokenAttack(
        objective=args.objective,
        heads=heads,
        dissipation_weight=args.dissipation_weight,
        dissipation=args.dissipation,
        steps=args.steps,
        n_adv=args.n_adv,
        top_k=args.top_k,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=not args.quiet,
    )
    model = load_model(args.model)
    if args.objective == "embedding":
        prompts = args.prompt or list(
            make_task("similarity", model, n=args.n_prompts, seed=args.task_seed).clean_text
        )
    else:
        if args.prompt:
            raise UsageError("--prompt: decoder objectives attack IOI prompts; use --n-prompts")
        prompts = make_task("ioi", model, n=args.n_prompts, seed=args.task_seed)
    result = attack.fit(model, prompts, prompts_per_shard=args.per_shard, **sharding).result_
    progress = result.entropy_progress() if heads else math.nan
    payload: dict[str, Any] = {
        "model": result.model_name,
        "objective": result.objective,
        "heads": [str(h) for h in result.heads],
        "config": result.config,
        "success_rate": result.success_rate,
        "mean_steps": None if math.isnan(result.mean_steps) else result.mean_steps,
        "entropy_progress": None if math.isnan(progress) else progress,
        "prompts": result.prompts.to_dict(orient="records"),
        "head_stats": result.head_stats.to_dict(orient="records"),
    }
    save_if_asked(args, payload, result)
    emit(payload, as_json=args.json, text=_text)
    return 0


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
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--n-adv", type=int, default=5, help="adversarial span length in tokens")
    p.add_argument("--top-k", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="seed of the candidate sampling")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_executor_arguments(p, unit="prompts")
    add_save_arguments(p)
    p.set_defaults(func=run)
