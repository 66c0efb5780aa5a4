"""Shared pieces of the command line: one-line errors, output, argument checks."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any, NoReturn


class UsageError(Exception):
    """Bad input from the command line: reported as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (argparse prints the usage block by default)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def emit(payload: Any, *, as_json: bool, text: Callable[[Any], str]) -> None:
    """Print `payload` as JSON (`--json`) or as human-readable text."""
    print(json.dumps(payload, indent=2, default=str) if as_json else text(payload))


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    """The `--store` option shared by every command that reads or writes runs."""
    parser.add_argument(
        "--store",
        default=None,
        help="store folder (default: $WORKBENCH_STORE or the user data directory)",
    )


def add_save_arguments(parser: argparse.ArgumentParser) -> None:
    """`--save` (store the result as a run) and `--store`, for commands that produce a result."""
    parser.add_argument("--save", action="store_true", help="store the result in the run store")
    add_store_argument(parser)


def save_if_asked(
    args: argparse.Namespace, payload: dict, result: Any, *, kind: str, config: dict | None = None
) -> None:
    """With `--save`, store `result` as a run of `kind` and add its `run_id` to `payload`.
    `config` defaults to the result's own `config`."""
    if not args.save:
        return
    from workbench.store import RunStore

    payload["run_id"] = RunStore(args.store).save(
        result,
        kind=kind,
        model=result.model_name,
        config=result.config if config is None else config,
    )


def saved_line(payload: dict) -> list[str]:
    """The text-mode line naming the stored run, when there is one."""
    return [f"saved as run {payload['run_id']}"] if "run_id" in payload else []
