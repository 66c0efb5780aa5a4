"""`workbench stats MODEL PROMPT [PROMPT...]`: per-head attention statistics of prompts.

Runs `analysis.attention_stats` (one statistics-attention forward pass per batch, no n x n
pattern) and prints the per-head aggregates; `--per-query` adds the long per-query table,
`--save` stores the result in the run store (kind "attention_stats") and adds its run id.
Bad input (unknown statistic or backend, empty or too long prompt) exits 2 with one line.
"""

from __future__ import annotations

import argparse
from typing import Any

from workbench.cli._common import UsageError, add_save_arguments, emit, save_if_asked, saved_line


def _stats_argument(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError("--stats: give comma-separated statistic names")
    return names


def _text(payload: dict[str, Any]) -> str:
    import pandas as pd

    lines = [f"{payload['model']}: {len(payload['prompts'])} prompt(s), per-head means"]
    lines.append(pd.DataFrame(payload["per_head"]).to_string(index=False, float_format="%.4g"))
    if "per_query" in payload:
        lines.append(pd.DataFrame(payload["per_query"]).to_string(index=False, float_format="%.4g"))
    lines += saved_line(payload)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run `workbench stats` with parsed `args`; returns the exit code."""
    stats = _stats_argument(args.stats)
    from analysis.statistics.attention_stats import attention_stats
    from workbench import load_model

    model = load_model(args.model)
    result = attention_stats(
        model,
        args.prompts,
        backend=args.backend,
        stats=stats,
        batch_size=args.batch_size,
        sink_tokens=args.sink_tokens,
    )
    payload: dict[str, Any] = {
        "model": result.model_name,
        "prompts": result.prompts,
        "tokens": result.tokens,
        "config": result.config,
        "per_head": result.per_head().to_dict(orient="records"),
    }
    if args.per_query:
        payload["per_query"] = result.to_frame().to_dict(orient="records")
    save_if_asked(args, payload, result)
    emit(payload, as_json=args.json, text=_text)
    return 0


def register(sub, json_flag) -> None:
    """Add the `stats` subcommand to the `workbench` parser's subparsers `sub`."""
    p = sub.add_parser(
        "stats",
        parents=[json_flag],
        help="per-head attention statistics (entropy, sink, distance, ...) of prompts",
    )
    p.add_argument("model", help="a zoo name, checkpoint folder or hub id")
    p.add_argument("prompts", nargs="+", metavar="PROMPT", help="one or more prompts")
    p.add_argument(
        "--backend", default="auto", help="auto | triton | chunked | reference (default auto)"
    )
    p.add_argument(
        "--stats",
        default=None,
        help="comma-separated statistics (default: every scalar plus distance_hist)",
    )
    p.add_argument("--per-query", action="store_true", help="also print the per-query table")
    p.add_argument("--batch-size", type=int, default=8, help="prompts per forward pass")
    p.add_argument("--sink-tokens", type=int, default=1, help="sink = mass on the first N keys")
    add_save_arguments(p)
    p.set_defaults(func=run)
