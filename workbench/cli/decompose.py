"""`workbench decompose MODEL PROMPT LAYER HEAD QUERY KEY`: sparse attention decomposition.

Runs `analysis.decompose_score`: the raw score of (QUERY -> KEY) split into
d_head singular terms, the fewest reaching `--share` of it, the reconstruction error against the
model's own q.k, and (`--upstream N`, default 5, 0 to skip) the N earlier sources writing most
along the selected components on each side. `--save` stores the decomposition (kind
"score_decomposition"). Out-of-range layer/head/position exits 2 with one line naming it.
"""

from __future__ import annotations

import argparse
from typing import Any

from workbench.cli._common import UsageError, add_save_arguments, emit, save_if_asked, saved_line
from workbench.heads import Head


def _text(payload: dict[str, Any]) -> str:
    lines = [
        f"{payload['model']} {Head(payload['layer'], payload['head'])}: "
        f"{payload['query_token']!r}@{payload['query']} -> {payload['key_token']!r}@{payload['key']}",
        f"score {payload['score']:.6g} (model {payload['model_score']:.6g}, "
        f"relative error {payload['relative_error']:.1e}), pattern {payload['pattern']:.3f}"
        + (" (firing)" if payload["firing"] else ""),
        f"{payload['sparsity']} of {len(payload['terms'])} components reach "
        f"{payload['share']:.0%}: {payload['selected']}",
        "terms: " + " ".join(f"{t:.3g}" for t in payload["terms"]),
    ]
    for side in ("query", "key"):
        rows = payload.get("upstream", {}).get(side, [])
        if rows:
            parts = ", ".join(f"{r['source']} {r['contribution']:.3g}" for r in rows)
            lines.append(f"upstream ({side} side): {parts}")
    lines += saved_line(payload)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run `workbench decompose` with parsed `args`; returns the exit code."""
    if args.upstream < 0:
        raise UsageError(f"--upstream: expected a count >= 0, got {args.upstream}")
    from analysis.anatomy.score_decomposition import decompose_score, upstream_contributions
    from workbench import load_model

    model = load_model(args.model)
    result = decompose_score(
        model, args.prompt, args.layer, args.head, args.query, args.key, share=args.share
    )
    payload: dict[str, Any] = {**result.summary(), "str_tokens": result.str_tokens}
    if args.upstream:
        upstream = upstream_contributions(model, result)
        payload["upstream"] = {
            side: upstream.top(side, args.upstream, kind=None).to_dict(orient="records")
            for side in ("query", "key")
        }
    config = {k: getattr(args, k) for k in ("prompt", "layer", "head", "query", "key", "share")}
    save_if_asked(args, payload, result, config=config)
    emit(payload, as_json=args.json, text=_text)
    return 0


def register(sub, json_flag) -> None:
    """Add the `decompose` subcommand to the `workbench` parser's subparsers `sub`."""
    p = sub.add_parser(
        "decompose",
        parents=[json_flag],
        help="split one attention score into singular components (sparse decomposition)",
    )
    p.add_argument("model", help="a zoo name, checkpoint folder or hub id")
    p.add_argument("prompt")
    p.add_argument("layer", type=int)
    p.add_argument("head", type=int)
    p.add_argument("query", type=int, help="query token position (0 = first token, BOS included)")
    p.add_argument("key", type=int, help="key token position")
    p.add_argument("--share", type=float, default=0.7, help="share of the score to reach")
    p.add_argument("--upstream", type=int, default=5, help="top upstream sources per side")
    add_save_arguments(p)
    p.set_defaults(func=run)
