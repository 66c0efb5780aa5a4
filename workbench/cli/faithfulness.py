"""`workbench faithfulness MODEL TASK --circuit circuit.json`: how much of the task a saved
circuit recovers (faithfulness) and carries (completeness)."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli._common import UsageError, emit


def _text(payload: dict) -> str:
    return (
        f"{payload['n_edges']} edges ({payload['edge_share']:.0%} of the graph): "
        f"faithfulness {payload['faithfulness']:.3f}, completeness {payload['completeness']:.3f} "
        f"(clean {payload['clean_metric']:.3f}, corrupted {payload['corrupted_metric']:.3f})"
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
    model = load_model(args.model)
    task = make_task(args.task, model, n=args.n, seed=args.seed)
    payload = {"model": model.name, "task": task.name, "method": circuit.method}
    found = faithfulness(model, task, circuit).to_dict()
    payload |= {k: v for k, v in found.items() if k not in ("model_name", "task", "method")}
    payload["completeness"] = completeness(model, task, circuit).completeness
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
    p.set_defaults(func=run)
