"""`workbench heads MODEL`: head taxonomy (behaviour scores, labels) and clustering.

Runs `analysis.head_taxonomy`: previous-token, duplicate-token and induction scores on
repeated random tokens, sink / local / uniform on natural text (`--text`, repeatable; default
IOI-template English), a label per head and a KMeans or agglomerative clustering with its
silhouette score. `--save` stores the result (kind "head_taxonomy").
"""

from __future__ import annotations

import argparse
from typing import Any

from workbench.cli._common import add_save_arguments, report_result, saved_line


def _text(payload: dict[str, Any]) -> str:
    import pandas as pd

    frame = pd.DataFrame(payload["heads"]).drop(columns=["pc1", "pc2"])
    silhouette = payload["silhouette"]
    lines = [
        f"{payload['model']}: {len(frame)} heads, silhouette "
        + ("n/a" if silhouette is None else f"{silhouette:.3f}"),
        frame.to_string(index=False, float_format="%.3f"),
    ]
    lines += saved_line(payload)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run `workbench heads` with parsed `args`; returns the exit code."""
    from analysis.anatomy.taxonomy import head_taxonomy
    from workbench import load_model

    model = load_model(args.model)
    result = head_taxonomy(
        model,
        texts=args.text,
        method=args.method,
        n_clusters=args.clusters,
        threshold=args.threshold,
        seed=args.seed,
    )
    return report_result(args, result, _text)


def register(sub, json_flag) -> None:
    """Add the `heads` subcommand to the `workbench` parser's subparsers `sub`."""
    p = sub.add_parser(
        "heads",
        parents=[json_flag],
        help="head taxonomy (previous/induction/sink/...) and clusters",
    )
    p.add_argument("model", help="a zoo name, checkpoint folder or hub id")
    p.add_argument("--text", action="append", default=None, help="natural-text prompt (repeat)")
    p.add_argument("--method", default="kmeans", help="kmeans | agglomerative (default kmeans)")
    p.add_argument("--clusters", type=int, default=4, help="number of clusters (default 4)")
    p.add_argument("--threshold", type=float, default=0.4, help="score needed for a label")
    p.add_argument("--seed", type=int, default=0)
    add_save_arguments(p)
    p.set_defaults(func=run)
