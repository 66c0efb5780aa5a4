"""`workbench circuit MODEL TASK --method M`: trace a task's circuit and print its top edges.

`--method path|exhaustive` accept `--executor ray [--address A]` and `--per-shard N` (edges
per shard): the per-edge patching runs sharded on Ray with the same scores. `--out` is checked
(its folder exists and is writable) before tracing; `--show`, `--top-n` take counts >= 0.
`--target-faithfulness F` adds `smallest_faithful` (`circuits.smallest_faithful_circuit`) with
its faithfulness interval, `faithfulness_ci` `[low, high]` (percentile bootstrap over prompts,
`--n-boot` resamples drawn with `--boot-seed`). `--corruption s2|s1s2|abc` picks the IOI
corruption (ioi only; the JSON names it). `--method atp*` traces with AtP* (quote the `*` in a
shell).
"""

from __future__ import annotations

import argparse
import math

from workbench.cli._common import (
    UsageError,
    check_output_path,
    emit,
    non_negative_int,
    positive_int,
)
from workbench.cli._executor import add_executor_arguments, executor_options
from workbench.cli.faithfulness import (
    add_bootstrap_arguments,
    add_task_option_arguments,
    json_interval,
    task_options,
)

CLI_METHODS = ("activation", "path", "eap", "eap-ig", "atp*", "acdc", "svd", "exhaustive")
SHARDED_METHODS = ("path", "exhaustive")


def _text(payload: dict) -> str:
    lines = [
        f"{payload['method']} circuit of {payload['model']} on {payload['task']}: "
        f"{payload['n_edges']} of {payload['n_edges_total']} edges"
    ]
    lines += [f"  {row['edge']:<24} {row['score']:+.4f}" for row in payload["top_edges"]]
    if payload.get("smallest_faithful"):
        best = payload["smallest_faithful"]
        lines.append(
            f"smallest connected circuit for faithfulness {best['target']}: {best['n_edges']} "
            f"edges, faithfulness {best['faithfulness']:.3f}"
            + (
                f" [{best['faithfulness_ci'][0]:.3f}, {best['faithfulness_ci'][1]:.3f}]"
                if best.get("faithfulness_ci")
                else ""
            )
            + ("" if best["reached"] else " (target not reached)")
        )
    if payload.get("out"):
        lines.append(f"written to {payload['out']}")
    return "\n".join(lines)


def _options(args: argparse.Namespace) -> dict:
    options: dict = {"progress": False}
    if args.method == "eap-ig":
        options["ig_steps"] = args.ig_steps
    if args.method == "acdc" and args.threshold is not None:
        options["threshold"] = args.threshold
    if args.method == "activation":
        options["ablation"] = args.ablation
    sharding = executor_options(args)
    if args.method in SHARDED_METHODS:
        options.update(sharding, edges_per_shard=args.per_shard)
    elif args.executor != "inprocess" or args.per_shard is not None:
        raise UsageError(
            f"--executor/--per-shard: only for --method {' or '.join(SHARDED_METHODS)}"
        )
    return options


def run(args: argparse.Namespace) -> int:
    """Run `workbench circuit` with parsed `args`; returns the exit code."""
    from circuits import trace
    from workbench import load_model
    from workbench.tasks import TASKS, make_task

    if args.task not in TASKS:
        raise UsageError(f"task: unknown task {args.task!r}; choose from {sorted(TASKS)}")
    out = check_output_path(args.out, "--out") if args.out is not None else None
    target = args.target_faithfulness
    if target is not None and not (math.isfinite(target) and 0 < target <= 1):
        raise UsageError(f"--target-faithfulness: need a number in (0, 1], got {target}")
    options = _options(args)
    corruption = task_options(args)
    model = load_model(args.model)
    task = make_task(args.task, model, n=args.n, seed=args.seed, **corruption)
    circuit = trace(model, task, method=args.method, top_n=args.top_n, **options)
    if out is not None:
        out.write_text(circuit.to_json())
    frame = circuit.to_frame().sort_values("rank")
    shown = frame[frame.in_circuit].head(args.show)
    payload = {
        "model": circuit.model_name,
        "task": circuit.task,
        "method": circuit.method,
        **corruption,
        "n_edges": circuit.n_edges,
        "n_edges_total": len(circuit.edges),
        "top_edges": [{"edge": r.edge, "score": float(r.score)} for r in shown.itertuples()],
        "config": circuit.config,
        "out": args.out,
    }
    if args.target_faithfulness is not None:  # smallest connected prune reaching the target
        from circuits import smallest_faithful_circuit

        found = smallest_faithful_circuit(
            model,
            task,
            circuit,
            target=args.target_faithfulness,
            n_boot=args.n_boot,
            seed=args.boot_seed,
        ).to_dict()
        found["faithfulness_ci"] = json_interval(found["faithfulness_ci"])
        payload["smallest_faithful"] = found
    emit(payload, as_json=args.json, text=_text)
    return 0


def register(sub, json_flag) -> None:
    """Add the `circuit` subcommand to the `workbench` parser's subparsers `sub`."""
    p = sub.add_parser("circuit", parents=[json_flag], help="trace a task's circuit")
    p.add_argument("model", help="zoo name or checkpoint folder")
    p.add_argument("task", help="ioi, induction or similarity")
    p.add_argument(
        "--method",
        choices=CLI_METHODS,
        default="eap-ig",
        help="tracing method (atp*: AtP* edge scores, circuits.atp_star)",
    )
    p.add_argument(
        "--top-n", type=non_negative_int, default=None, help="keep the N highest-|score| edges"
    )
    p.add_argument("--out", default=None, help="write the circuit's JSON here")
    p.add_argument("--n", type=positive_int, default=None, help="number of prompts (task default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ig-steps", type=positive_int, default=5, help="EAP-IG integration steps")
    p.add_argument("--threshold", type=float, default=None, help="ACDC threshold")
    p.add_argument(
        "--target-faithfulness",
        type=float,
        default=None,
        help="also report the smallest connected prune reaching this faithfulness, in (0, 1]",
    )
    p.add_argument("--ablation", choices=("resample", "mean", "zero"), default="resample")
    add_task_option_arguments(p)
    add_bootstrap_arguments(p)
    p.add_argument("--show", type=non_negative_int, default=10, help="edges listed (default 10)")
    add_executor_arguments(p, unit="edges (path, exhaustive)")
    p.set_defaults(func=run)
