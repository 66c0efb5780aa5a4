"""`workbench training MODEL`: the loss-plateau view over a zoo model's training snapshots.

Runs `analysis.training_dynamics.loss_plateau` (Gopalani & Hu 2025): per checkpoint under
`<checkpoint>/history/` and the final weights, the held-out loss, the repetition rate of greedy
outputs (with the data's own rate as baseline), the mean pairwise cosine of hidden states per
layer (representation collapse) and the mean attention distance to the final checkpoint's maps.
`--prompt` (repeatable) replaces the model's default held-out data. `--save` stores the result
(kind "loss_plateau").
"""

from __future__ import annotations

import argparse
from typing import Any

from workbench.cli._common import (
    add_save_arguments,
    positive_int,
    report_result,
    saved_line,
)


def _text(payload: dict[str, Any]) -> str:
    lines = [f"{payload['model']}: loss plateau view ({payload['config']['data']})"]
    lines.append("step      loss  repetition  data  cosine/layer          attn-distance")
    for row in payload["checkpoints"]:
        cosines = " ".join(f"{c:.3f}" for c in row["cosine_by_layer"])
        lines.append(
            f"{row['step']:>6} {row['loss']:>8.3f} {row['repetition']:>11.3f} "
            f"{row['data_repetition']:>5.2f}  {cosines:<20}  {row['attention_distance_mean']:.3f}"
        )
    lines += [f"note: {n}" for n in payload["notes"]]
    lines += saved_line(payload)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run `workbench training` with parsed `args`; returns the exit code."""
    from analysis.training_dynamics import loss_plateau
    from workbench import load_model

    if args.new_tokens < 2:
        raise ValueError(f"--new-tokens: expected an integer >= 2, got {args.new_tokens}")
    model = load_model(args.model)
    result = loss_plateau(model, prompts=args.prompt, n=args.n, new_tokens=args.new_tokens)
    return report_result(args, result, _text)


def register(sub, json_flag) -> None:
    """Add the `training` subcommand to the `workbench` parser's subparsers `sub`."""
    p = sub.add_parser(
        "training",
        parents=[json_flag],
        help="loss-plateau view across training snapshots (repetition, collapse, attention)",
    )
    p.add_argument("model", help="a zoo decoder with a training history (tiny-ioi, ...)")
    p.add_argument("--prompt", action="append", default=None, help="evaluation prompt (repeat)")
    p.add_argument("--n", type=positive_int, default=16, help="default prompts (default 16)")
    p.add_argument(
        "--new-tokens", type=positive_int, default=8, help="greedy tokens per prompt (default 8)"
    )
    add_save_arguments(p)
    p.set_defaults(func=run)
