"""`workbench entropy-bound MODEL`: measured attention entropy against sigma-Reparam's bound.

Runs `analysis.training_dynamics.entropy_bound` (Zhai et al. 2023) on the model and, unless
`--no-history`, every training snapshot under `<checkpoint>/history/`: per head and prompt the
mean entropy, the bound in its three sigma forms (paper, logits, row) and the smallest margin
`entropy - bound`. `--text` (repeatable) replaces the default prompts. `--save` stores the
result (kind "entropy_bound").
"""

from __future__ import annotations

import argparse
from typing import Any

from workbench.cli._common import add_save_arguments, report_result, saved_line


def _text(payload: dict[str, Any]) -> str:
    import pandas as pd

    frame = pd.DataFrame(payload["heads"])
    keep = ["checkpoint", "layer", "head", "entropy", "bound_paper", "bound_logits", "bound_row"]
    margins = ", ".join(f"{k} {v:.4f}" for k, v in payload["min_margin"].items())
    lines = [
        f"{payload['model']}: {payload['query_rows_checked']} query rows checked over "
        f"{len(payload['checkpoints'])} checkpoint(s); bound holds: {payload['holds']}",
        f"min margin (entropy - bound): {margins}",
        frame[keep].to_string(index=False, float_format="%.3f"),
    ]
    lines += [f"note: {n}" for n in payload["notes"]]
    lines += saved_line(payload)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run `workbench entropy-bound` with parsed `args`; returns the exit code."""
    from analysis.training_dynamics import entropy_bound
    from workbench import load_model

    model = load_model(args.model)
    result = entropy_bound(model, texts=args.text, history=not args.no_history)
    return report_result(args, result, _text)


def register(sub, json_flag) -> None:
    """Add the `entropy-bound` subcommand to the `workbench` parser's subparsers `sub`."""
    p = sub.add_parser(
        "entropy-bound",
        parents=[json_flag],
        help="attention entropy vs sigma-Reparam's lower bound, per head and checkpoint",
    )
    p.add_argument("model", help="a zoo name, checkpoint folder or hub id")
    p.add_argument("--text", action="append", default=None, help="prompt (repeat)")
    p.add_argument("--no-history", action="store_true", help="only the final weights")
    add_save_arguments(p)
    p.set_defaults(func=run)
