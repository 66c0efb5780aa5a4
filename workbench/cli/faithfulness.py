"""`workbench faithfulness MODEL TASK --circuit circuit.json`: how much of the task a saved
circuit recovers (faithfulness) and carries (completeness), each with a percentile bootstrap
interval over prompts (`--n-boot` resamples, default 200, 0 for none; `--boot-seed`).

The JSON holds `faithfulness_ci` / `completeness_ci` as `[low, high]` (null without an
interval, or when a resample had no clean-corrupted gap), `ci_level`, `n_boot`,
`bootstrap_seed` and `n_prompts`. `--corruption s2|s1s2|abc` picks the IOI corruption
(`workbench.tasks.ioi_prompts`; ioi only).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from workbench.cli._common import UsageError, emit, non_negative_int

CLI_CORRUPTIONS = ("s2", "s1s2", "abc")
CORRUPTION_HELP = "IOI corruption: s2 (default), s1s2 or abc (ioi only)"


def json_interval(ci: Any) -> list[float] | None:
    """A bootstrap interval for JSON: `[low, high]`, or None when absent or not finite."""
    if ci is None or not all(math.isfinite(v) for v in ci):
        return None
    return [float(ci[0]), float(ci[1])]


def _ci(payload: dict, key: str) -> str:
    ci = payload.get(f"{key}_ci")
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def _text(payload: dict) -> str:
    return (
        f"{payload['n_edges']} edges ({payload['edge_share']:.0%} of the graph): "
        f"faithfulness {payload['faithfulness']:.3f}{_ci(payload, 'faithfulness')}, "
        f"completeness {payload['completeness']:.3f}{_ci(payload, 'completeness')} "
        f"(clean {payload['clean_metric']:.3f}, corrupted {payload['corrupted_metric']:.3f}"
        + (
            f"; {payload['ci_level']:.0%} bootstrap over {payload['n_prompts']} prompts, "
            f"B={payload['n_boot']}"
            if payload.get("n_boot")
            else ""
        )
        + ")"
    )


def task_options(args: argparse.Namespace) -> dict:
    """`make_task` options from the command line (`--corruption`, ioi only)."""
    if args.corruption is None:
        return {}
    if args.task != "ioi":
        raise UsageError(f"--corruption: only for the ioi task, not {args.task!r}")
    return {"corruption": args.corruption}


def add_task_option_arguments(p: argparse.ArgumentParser) -> None:
    """`--corruption`: `workbench.tasks.ioi_prompts.CORRUPTIONS`, spelt out so that building
    the parser imports no torch (a test keeps the two equal)."""
    p.add_argument("--corruption", choices=CLI_CORRUPTIONS, default=None, help=CORRUPTION_HELP)


def add_bootstrap_arguments(p: argparse.ArgumentParser) -> None:
    """`--n-boot` and `--boot-seed`."""
    p.add_argument(
        "--n-boot",
        type=non_negative_int,
        default=200,
        help="bootstrap resamples over prompts for the intervals (default 200; 0: none)",
    )
    p.add_argument(
        "--boot-seed", type=non_negative_int, default=0, help="bootstrap seed (default 0)"
    )


def run(args: argparse.Namespace) -> int:
    """Run `workbench faithfulness` with parsed `args`; returns the exit code."""
    from circuits import Circuit, completeness, faithfulness
    from workbench import load_model
    from workbench.tasks import make_task

    path = Path(args.circuit)
    if not path.is_file():
        raise UsageError(f"--circuit: no such file {args.circuit}")
    try:
        circuit = Circuit.from_json(path.read_text())
    except (ValueError, TypeError, KeyError) as err:
        raise UsageError(f"--circuit: {args.circuit} is not a circuit JSON ({err})") from err
    options = task_options(args)
    model = load_model(args.model)
    task = make_task(args.task, model, n=args.n, seed=args.seed, **options)
    boot = {"n_boot": args.n_boot, "seed": args.boot_seed}
    payload = {"model": model.name, "task": task.name, "method": circuit.method, **options}
    found = faithfulness(model, task, circuit, **boot).to_dict()
    payload |= {k: v for k, v in found.items() if k not in ("model_name", "task", "method")}
    payload["faithfulness_ci"] = json_interval(found["faithfulness_ci"])
    kept = completeness(model, task, circuit, **boot)
    payload["completeness"] = kept.completeness
    payload["completeness_ci"] = json_interval(kept.completeness_ci)
    emit(payload, as_json=args.json, text=_text)
    return 0


def register(sub, json_flag) -> None:
    """Add the `faithfulness` subcommand to the `workbench` parser's subparsers `sub`."""
    p = sub.add_parser("faithfulness", parents=[json_flag], help="evaluate a saved circuit")
    p.add_argument("model", help="zoo name or checkpoint folder")
    p.add_argument("task", help="ioi, induction or similarity")
    p.add_argument("--circuit", required=True, help="circuit JSON from `workbench circuit --out`")
    p.add_argument("--n", type=int, default=None, help="number of prompts (task default)")
    p.add_argument("--seed", type=int, default=0)
    add_task_option_arguments(p)
    add_bootstrap_arguments(p)
    p.set_defaults(func=run)
