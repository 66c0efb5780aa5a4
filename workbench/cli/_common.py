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
