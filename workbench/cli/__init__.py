"""The `workbench` command line.

Every subcommand lives in its own module in this package and exposes
`register(subparsers, parent)`, where `parent` is an argparse parser carrying the shared
`--json` flag. `COMMANDS` lists the modules in help order; add a module there to add a command.

    workbench models [NAME]                  the zoo (or one loaded model's dimensions)
    workbench stats MODEL PROMPT...          per-head attention statistics
    workbench corpus-stats MODEL --texts G   the same over a corpus (--executor ray)
    workbench svd MODEL LAYER HEAD           QK / OV spectra and token readouts
    workbench decompose MODEL PROMPT L H Q K one attention score in singular components
    workbench heads MODEL                    head taxonomy and clusters
    workbench circuit MODEL TASK --method M  trace a circuit
    workbench faithfulness MODEL TASK ...    evaluate a saved circuit
    workbench guide MODEL PROMPT --heads H   head-perturbation guided decoding
    workbench attack MODEL --objective O     token attacks (with attention dissipation)
    workbench entropy-bound MODEL            entropy vs sigma-Reparam's bound, per checkpoint
    workbench training MODEL                 loss-plateau view across training snapshots
    workbench figure run|pattern|stats       export a figure (PNG, SVG, PDF, HTML)
    workbench runs list|show|delete          runs in the store
    workbench app [--host H] [--port P]      serve the dashboard (127.0.0.1:8050)

Exit codes: 0 on success; 2 on bad input (a bad argument, model folder, prompt, path or store),
with exactly one line on stderr, `workbench: error: ...`; 1 on an unexpected failure (a bug),
also one line, `workbench: internal error: ... (run with --debug for the traceback)`.
`--debug` (anywhere before a `--`) prints the traceback above that line. The line is made
printable: control characters and undecodable argv bytes (lone surrogates) are escaped.
Output files (`--out`, `figure -o`) and `--save`'s store are checked before any computing.
Heavy imports (torch, TransformerLens, Dash) happen inside the subcommands that need them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from workbench.cli._common import Parser, UsageError

COMMANDS = [
    "models",
    "stats",
    "corpus-stats",
    "svd",
    "decompose",
    "heads",
    "circuit",
    "faithfulness",
    "guide",
    "attack",
    "entropy-bound",
    "training",
    "figure",
    "runs",
    "app",
]


def build_parser() -> argparse.ArgumentParser:
    """The `workbench` argument parser with every subcommand registered."""
    parser = Parser(prog="workbench", description="Attention Workbench command line.")
    parser.add_argument(
        "--debug", action="store_true", help="print the traceback of an error (anywhere)"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    json_flag = Parser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="JSON on stdout")
    for name in COMMANDS:
        importlib.import_module(f"workbench.cli.{name.replace('-', '_')}").register(sub, json_flag)
    return parser


def _quiet_libraries() -> None:
    """No download/loading progress bars from HuggingFace libraries on the command line (also
    when `main` runs in a process that imported transformers already: stderr stays one line)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Failures that are the input's fault: one line, exit 2."""
    expected: list[type[BaseException]] = [UsageError, ValueError, OSError, NotImplementedError]
    if "safetensors" in sys.modules:
        from safetensors import SafetensorError

        expected.append(SafetensorError)
    return tuple(expected)


def error_text(err: BaseException) -> str:
    """One printable line describing `err` (first non-empty line; control characters and lone
    surrogates escaped, so printing it can never fail)."""
    if isinstance(err, OSError) and err.strerror and err.filename is not None:
        text = f"{err.filename}: {err.strerror}"
    elif len(err.args) == 1 and isinstance(err.args[0], str):
        text = err.args[0]  # not str(err): a KeyError subclass would add quotes
    else:
        text = str(err)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else type(err).__name__
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
        for c in line
    )


def _split_debug(argv: list[str]) -> tuple[list[str], bool]:
    """argv without `--debug` (anywhere before a `--`), and whether it was there."""
    end = argv.index("--") if "--" in argv else len(argv)
    kept = [a for a in argv[:end] if a != "--debug"] + argv[end:]
    return kept, len(kept) != len(argv)


def _check_store(args: argparse.Namespace) -> None:
    """With `--save`, open the store before computing: a bad `--store` fails at once. The
    opened store is kept on `args.opened_store` for `save_if_asked` (opened once, not twice)."""
    if getattr(args, "save", False):
        from workbench.store import RunStore

        args.opened_store = RunStore(args.store)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `workbench` console script: 0 ok, 2 bad input, 1 internal error."""
    _quiet_libraries()
    argv, debug = _split_debug(list(sys.argv[1:] if argv is None else argv))
    try:
        args = build_parser().parse_args(argv)
        _check_store(args)
        return args.func(args)
    except KeyboardInterrupt:
        print("workbench: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the one place every failure becomes one line
        if debug:
            traceback.print_exc()
        if isinstance(err, _expected_errors()):
            print(f"workbench: error: {error_text(err)}", file=sys.stderr)
            return 2
        print(
            f"workbench: internal error: {type(err).__name__}: {error_text(err)} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


__all__ = ["COMMANDS", "UsageError", "build_parser", "error_text", "main"]
