"""`workbench corpus-stats MODEL --texts PATH_OR_GLOB`: per-head attention statistics over a
corpus, stored as a sharded run (rerunning an interrupted command resumes it).

Documents are the non-empty lines of the matched files (`--unit line`, default) or whole files
(`--unit file`), files in sorted path order. `--executor ray` runs the shards on Ray: a local
Ray on this machine, or the cluster at `--address` / `RAY_ADDRESS`.
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

from workbench.cli._common import UsageError, add_store_argument, emit


def read_texts(pattern: str, unit: str) -> list[str]:
    """The documents in the files matching `pattern` (a path or a glob)."""
    path = Path(pattern).expanduser()
    files = (
        [path] if path.is_file() else sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    )
    files = [f for f in files if f.is_file()]
    if not files:
        raise UsageError(f"--texts: no files match {pattern!r}")
    texts = []
    for file in files:
        content = file.read_text(encoding="utf-8", errors="replace")
        pieces = content.splitlines() if unit == "line" else [content]
        texts.extend(piece.strip() for piece in pieces if piece.strip())
    if not texts:
        raise UsageError(f"--texts: the files matching {pattern!r} hold no text")
    return texts


def _summary(payload: dict) -> str:
    lines = [
        f"run {payload['run_id']}: {payload['documents']} documents, {payload['model']}, "
        f"executor {payload['executor']}",
        "layer head  entropy   sink  max_prob  mean_distance",
    ]
    for row in payload["per_head"]:
        lines.append(
            f"{row['layer']:>5} {row['head']:>4}  {row['entropy_mean']:7.3f} "
            f"{row['sink_mean']:6.3f}  {row['max_prob_mean']:8.3f}  "
            f"{row['mean_distance_mean']:13.3f}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run `workbench corpus-stats` with parsed `args`; returns the exit code."""
    if args.docs_per_shard < 1:
        raise UsageError("--docs-per-shard: expected a positive integer")
    if args.address and args.executor != "ray":
        raise UsageError("--address: only used with --executor ray")
    texts = read_texts(args.texts, args.unit)

    from analysis.statistics.corpus_stats import corpus_stats
    from workbench import load_model
    from workbench.store import RunStore

    store = RunStore(args.store)  # a bad --store fails before the model loads
    model = load_model(args.model)
    result = corpus_stats(
        model,
        texts,
        docs_per_shard=args.docs_per_shard,
        executor=args.executor,
        address=args.address,
        store=store,
        progress=sys.stderr.isatty(),
    )
    payload = {
        "run_id": result.run_id,
        "model": model.name,
        "documents": len(texts),
        "executor": args.executor,
        "per_head": result.per_head.to_dict(orient="records"),
    }
    emit(payload, as_json=args.json, text=_summary)
    return 0


def register(sub, json_flag) -> None:
    """Add the `corpus-stats` subcommand to the `workbench` parser's subparsers `sub`."""
    p = sub.add_parser(
        "corpus-stats", parents=[json_flag], help="per-head attention statistics over a corpus"
    )
    p.add_argument("model", help="zoo name, checkpoint folder or hub id")
    p.add_argument("--texts", required=True, help="a text file, or a glob of them")
    p.add_argument("--unit", choices=("line", "file"), default="line", help="one document per")
    p.add_argument("--docs-per-shard", type=int, default=16, help="documents per shard")
    p.add_argument("--executor", choices=("inprocess", "ray"), default="inprocess")
    p.add_argument("--address", default=None, help="Ray cluster address (default RAY_ADDRESS)")
    add_store_argument(p)
    p.set_defaults(func=run)
