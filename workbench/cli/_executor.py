"""`--executor` / `--address` for subcommands whose analysis accepts `executor=`.

`add_executor_arguments(parser, unit=...)` adds `--executor {inprocess,ray}`, `--address` and
`--per-shard N` (items per shard; `unit` names them in the help). `executor_options(args)` checks
them (exit 2 on `--address` without `--executor ray` or a non-positive `--per-shard`) and
returns the keyword arguments for the analysis. Ray is imported only when a run uses it.
"""

from __future__ import annotations

import argparse

from workbench.cli._common import UsageError


def add_executor_arguments(parser: argparse.ArgumentParser, *, unit: str) -> None:
    """Add `--executor`, `--address` and `--per-shard` (the number of `unit` per shard)."""
    parser.add_argument(
        "--executor",
        choices=("inprocess", "ray"),
        default="inprocess",
        help="where the shards run: this process (default) or Ray",
    )
    parser.add_argument("--address", default=None, help="Ray cluster address (default RAY_ADDRESS)")
    parser.add_argument(
        "--per-shard", type=int, default=None, help=f"{unit} per shard (default: one shard)"
    )


def executor_options(args: argparse.Namespace) -> dict:
    """{"executor", "address"} from the parsed arguments, after checking them."""
    if args.address and args.executor != "ray":
        raise UsageError("--address: only used with --executor ray")
    if args.per_shard is not None and args.per_shard < 1:
        raise UsageError(f"--per-shard: expected a positive integer, got {args.per_shard}")
    return {"executor": args.executor, "address": args.address}
