"""The `workbench` command line.

Subcommands (each with `--json` for machine-readable output on stdout):

    workbench models [NAME] [--json]         the zoo (or one loaded model's dimensions)
    workbench runs list [--all] [--json]     runs in the store
    workbench runs show RUN_ID [--json]      one run's metadata and tables
    workbench runs delete RUN_ID             remove a run
    workbench app [--host H] [--port P]      serve the dashboard (127.0.0.1:8050)

Exit codes: 0 on success, 2 on bad input with exactly one line on stderr.
Heavy imports (torch, TransformerLens, Dash) happen inside the subcommands that need them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn


class UsageError(Exception):
    """Bad input from the command line: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (argparse prints the usage block by default)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _emit(payload: Any, *, as_json: bool, text: Callable[[Any], str]) -> None:
    print(json.dumps(payload, indent=2, default=str) if as_json else text(payload))


# ---------------------------------------------------------------------- models
def _zoo_summary() -> list[dict]:
    from transformers import AutoConfig

    from workbench.zoo import ZOO, scalar_metrics

    rows = []
    for entry in ZOO.values():
        row = {
            "name": entry.name,
            "kind": entry.kind,
            "description": entry.description,
            "available": entry.is_available(),
            "path": str(entry.path()),
        }
        if row["available"]:
            cfg = AutoConfig.from_pretrained(str(entry.path()))
            row.update(
                n_layers=cfg.num_hidden_layers,
                n_heads=cfg.num_attention_heads,
                d_model=cfg.hidden_size,
                d_head=cfg.hidden_size // cfg.num_attention_heads,
                n_ctx=cfg.max_position_embeddings,
            )
        row["metrics"] = scalar_metrics(entry.card().get("metrics", {}))
        rows.append(row)
    return rows


def _models_text(rows: list[dict] | dict) -> str:
    if isinstance(rows, dict):
        return "\n".join(f"{k}: {v}" for k, v in rows.items())
    lines = []
    for r in rows:
        dims = (
            f"{r['n_layers']} layers x {r['n_heads']} heads, d_model {r['d_model']}"
            if r["available"]
            else "not trained"
        )
        lines.append(f"{r['name']:<16} {r['kind']:<8} {dims}  {r['description']}")
    return "\n".join(lines)


def cmd_models(args: argparse.Namespace) -> int:
    if args.name:
        from workbench import load_model

        payload: Any = load_model(args.name).describe()
    else:
        payload = _zoo_summary()
    _emit(payload, as_json=args.json, text=_models_text)
    return 0


# ---------------------------------------------------------------------- runs
def _store(args: argparse.Namespace):
    from workbench.store import RunStore

    return RunStore(args.store)


def _run_dict(info) -> dict:
    from dataclasses import asdict

    return asdict(info)


def cmd_runs(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.runs_command == "list":
        runs = [_run_dict(r) for r in store.list_runs(include_incomplete=args.all)]
        _emit(
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
        _emit(
            _run_dict(store.get_run(args.run_id)),
            as_json=args.json,
            text=lambda r: "\n".join(f"{k}: {v}" for k, v in r.items()),
        )
    else:
        store.delete_run(args.run_id)
        _emit({"deleted": args.run_id}, as_json=args.json, text=lambda d: f"deleted {d['deleted']}")
    return 0


# ---------------------------------------------------------------------- app
def cmd_app(args: argparse.Namespace) -> int:
    from workbench.ui import serve

    serve(host=args.host, port=args.port)
    return 0


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="workbench", description="Attention Workbench command line.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    models = sub.add_parser("models", help="list the zoo, or describe one model")
    models.add_argument("name", nargs="?", help="a zoo name, checkpoint folder or hub id")
    models.add_argument("--json", action="store_true", help="JSON on stdout")
    models.set_defaults(func=cmd_models)

    runs = sub.add_parser("runs", help="runs in the results store")
    runs.add_argument(
        "--store",
        default=None,
        help="store folder (default: $WORKBENCH_STORE or the user data directory)",
    )
    runs_sub = runs.add_subparsers(dest="runs_command", required=True, parser_class=_Parser)
    runs_list = runs_sub.add_parser("list", help="list runs")
    runs_list.add_argument("--all", action="store_true", help="include incomplete runs")
    for name in ("show", "delete"):
        p = runs_sub.add_parser(name, help=f"{name} one run")
        p.add_argument("run_id")
    for p in runs_sub.choices.values():
        p.add_argument("--json", action="store_true", help="JSON on stdout")
    runs.set_defaults(func=cmd_runs)

    app = sub.add_parser("app", help="serve the dashboard")
    app.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    app.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    app.set_defaults(func=cmd_app)
    return parser


def _quiet_libraries() -> None:
    """No download/loading progress bars from HuggingFace libraries on the command line."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `workbench` console script."""
    _quiet_libraries()
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "port", 1) is not None and not 0 < getattr(args, "port", 1) < 65536:
            raise UsageError(f"--port: {args.port} is not a valid port (1-65535)")
        return args.func(args)
    except (UsageError, ValueError) as err:
        print(f"workbench: error: {err}".splitlines()[0], file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
