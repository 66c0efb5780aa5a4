"""Shared pieces of the command line: one-line errors, output, argument checks.

`check_output_path` vets an output file (`--out`, `figure -o`) before any work is done: its
folder must exist and be writable, the path must not be a folder, nor lie under /proc, /sys or
/dev. `non_negative_int` / `positive_int` are argparse types with one-line errors.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

_SPECIAL_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))


class UsageError(Exception):
    """Bad input from the command line: reported as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (argparse prints the usage block by default)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {low}, got {text!r}"
            ) from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    parse.__doc__ = f"argparse type: `text` as an integer >= {low} (one-line error otherwise)."
    return parse


non_negative_int = _int_at_least(0)
positive_int = _int_at_least(1)


def check_output_path(path: str, option: str) -> Path:
    """`path` as a Path once it is a file the command can write; UsageError naming `option`.

    Checked before computing, so a bad path fails at once rather than after the whole run.
    """
    if not path or not path.strip():
        raise UsageError(f"{option}: empty output path")
    if path.endswith(("/", os.sep)):
        raise UsageError(f"{option}: {path} names a folder; give a file name")
    out = Path(path).expanduser()
    try:
        resolved = out.resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop
        raise UsageError(f"{option}: cannot resolve {path} ({err})") from err
    for candidate in (out.absolute(), resolved):
        if any(candidate == root or root in candidate.parents for root in _SPECIAL_ROOTS):
            raise UsageError(f"{option}: {path} is under /proc, /sys or /dev; choose a file")
    if resolved.is_dir():
        raise UsageError(f"{option}: {path} is a folder; give a file name")
    folder = resolved.parent
    if not folder.exists():
        raise UsageError(f"{option}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise UsageError(f"{option}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option}: cannot write to the folder {folder} (permission denied)")
    if resolved.exists() and not os.access(resolved, os.W_OK):
        raise UsageError(f"{option}: cannot overwrite {path} (permission denied)")
    return out


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
    args: argparse.Namespace, payload: dict, result: Any, *, config: dict | None = None
) -> None:
    """With `--save`, store `result` as a run (of `result.kind`) and add its `run_id` to
    `payload`, in the store `main` opened before computing (or a fresh one). `config`
    defaults to the result's own `config`."""
    if not args.save:
        return
    from workbench.store import RunStore

    store = getattr(args, "opened_store", None) or RunStore(args.store)
    payload["run_id"] = store.save(result, config=config)


def report_result(args: argparse.Namespace, result: Any, text: Callable[[Any], str]) -> int:
    """The usual end of a subcommand: the result's `summary()`, stored with `--save`, printed
    as JSON or `text`; exit code 0."""
    payload = result.summary()
    save_if_asked(args, payload, result)
    emit(payload, as_json=args.json, text=text)
    return 0


def saved_line(payload: dict) -> list[str]:
    """The text-mode line naming the stored run, when there is one."""
    return [f"saved as run {payload['run_id']}"] if "run_id" in payload else []
