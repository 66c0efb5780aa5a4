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
    workbench figure run|pattern|stats       export a figure (PNG, SVG, PDF, HTML)
    workbench runs list|show|delete          runs in the store
    workbench app [--host H] [--port P]      serve the dashboard (127.0.0.1:8050)

Exit codes: 0 on success, 2 on bad input with exactly one line on stderr.
Heavy imports (torch, TransformerLens, Dash) happen inside the subcommands that need them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

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
    "figure",
    "runs",
    "app",
]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="workbench", description="Attention Workbench command line.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    json_flag = Parser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="JSON on stdout")
    for name in COMMANDS:
        importlib.import_module(f"workbench.cli.{name.replace('-', '_')}").register(sub, json_flag)
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
        return args.func(args)
    except (UsageError, ValueError) as err:
        print(f"workbench: error: {err}".splitlines()[0], file=sys.stderr)
        return 2


__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]
