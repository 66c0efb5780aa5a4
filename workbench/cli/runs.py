"""`workbench runs list|show|delete|repair|clean`: the runs in the results store.

Opening the store checks its index: when it was damaged or incomplete and had to be rebuilt
from the runs' own files, one line on stderr says so (the command still runs)."""

from __future__ import annotations

import argparse
import sys

from workbench.cli._common import UsageError, add_store_argument, emit


def _store(args: argparse.Namespace):
    from workbench.store import RunStore

    store = RunStore(args.store)
    if store.repaired:
        print(f"workbench: note: {store.repaired}", file=sys.stderr)
    return store


def _run_dict(info) -> dict:
    from dataclasses import asdict

    return asdict(info)


def _repair_text(report: dict) -> str:
    lines = [report["message"]]
    lines += [f"indexed {run_id}" for run_id in report["indexed"]]
    lines += [f"skipped {line}" for line in report["skipped"]]
    return "\n".join(lines)


def _grace(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise UsageError(f"--grace: expected seconds >= 0, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    """Run `workbench runs` with parsed `args`; returns the exit code."""
    store = _store(args)
    if args.runs_command == "list":
        runs = [_run_dict(r) for r in store.list_runs(include_incomplete=args.all)]
        emit(
            runs,
            as_json=args.json,
            text=lambda rs: (
                "\n".join(
                    f"{r['run_id']}  {r['status']:<10} {r['kind']:<12} {r['model']}" for r in rs
                )
                or "no runs"
            ),
        )
    elif args.runs_command == "show":
        emit(
            _run_dict(store.get_run(args.run_id)),
            as_json=args.json,
            text=lambda r: "\n".join(f"{k}: {v}" for k, v in r.items()),
        )
    elif args.runs_command == "repair":
        emit(store.repair().to_dict(), as_json=args.json, text=_repair_text)
    elif args.runs_command == "clean":
        removed = sorted(
            set(store.cleaned) | set(store.clean(args.grace, resumable=args.resumable))
        )
        emit(
            {"removed": removed},
            as_json=args.json,
            text=lambda d: (
                f"removed {len(d['removed'])} abandoned run folder(s): {', '.join(d['removed'])}"
                if d["removed"]
                else "nothing to clean"
            ),
        )
    else:
        store.delete_run(args.run_id)
        emit({"deleted": args.run_id}, as_json=args.json, text=lambda d: f"deleted {d['deleted']}")
    return 0


def register(sub, json_flag) -> None:
    """Add the `runs` subcommand to the `workbench` parser's subparsers `sub`."""
    runs = sub.add_parser("runs", help="runs in the results store")
    add_store_argument(runs)
    runs_sub = runs.add_subparsers(dest="runs_command", required=True, parser_class=type(runs))
    runs_sub.add_parser("list", parents=[json_flag], help="list runs").add_argument(
        "--all", action="store_true", help="include incomplete runs"
    )
    for name in ("show", "delete"):
        runs_sub.add_parser(name, parents=[json_flag], help=f"{name} one run").add_argument(
            "run_id"
        )
    runs_sub.add_parser(
        "repair", parents=[json_flag], help="check the run index and rebuild it from the runs"
    )
    clean = runs_sub.add_parser(
        "clean", parents=[json_flag], help="remove abandoned staging (killed or failed writers)"
    )
    clean.add_argument(
        "--grace",
        type=_grace,
        default=3600.0,
        help="only folders unchanged for this many seconds (default 3600; 0: all abandoned now)",
    )
    clean.add_argument(
        "--resumable",
        action="store_true",
        help="also remove interrupted sharded runs that a rerun could resume",
    )
    runs.set_defaults(func=run)
