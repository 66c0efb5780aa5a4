"""`workbench runs list|show|delete`: the runs in the results store."""

from __future__ import annotations

import argparse

from workbench.cli._common import add_store_argument, emit


def _store(args: argparse.Namespace):
    from workbench.store import RunStore

    return RunStore(args.store)


def _run_dict(info) -> dict:
    from dataclasses import asdict

    return asdict(info)


def run(args: argparse.Namespace) -> int:
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
    else:
        store.delete_run(args.run_id)
        emit({"deleted": args.run_id}, as_json=args.json, text=lambda d: f"deleted {d['deleted']}")
    return 0


def register(sub, json_flag) -> None:
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
    runs.set_defaults(func=run)
