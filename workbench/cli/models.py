"""`workbench models [NAME]`: list the zoo, or describe one loaded model."""

from __future__ import annotations

import argparse
from typing import Any

from workbench.cli._common import emit


def _zoo_summary() -> list[dict]:
    from transformers import AutoConfig

    from workbench.zoo import ZOO, scalar_metrics

    rows = []
    for entry in ZOO.values():
        row = {
            "name": entry.name,
            "kind": entry.kind,
            "description": entry.description,
            "available": entry.is_available(),
            "path": str(entry.path()),
        }
        if row["available"]:
            cfg = AutoConfig.from_pretrained(str(entry.path()))
            row.update(
                n_layers=cfg.num_hidden_layers,
                n_heads=cfg.num_attention_heads,
                d_model=cfg.hidden_size,
                d_head=getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads,
                n_ctx=cfg.max_position_embeddings,
            )
        row["metrics"] = scalar_metrics(entry.card().get("metrics", {}))
        rows.append(row)
    return rows


def _models_text(rows: list[dict] | dict) -> str:
    if isinstance(rows, dict):
        return "\n".join(f"{k}: {v}" for k, v in rows.items())
    lines = []
    for r in rows:
        dims = (
            f"{r['n_layers']} layers x {r['n_heads']} heads, d_model {r['d_model']}"
            if r["available"]
            else "not trained"
        )
        lines.append(f"{r['name']:<16} {r['kind']:<8} {dims}  {r['description']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run `workbench models` with parsed `args`; returns the exit code."""
    if args.name:
        from workbench import load_model

        payload: Any = load_model(args.name).describe()
    else:
        payload = _zoo_summary()
    emit(payload, as_json=args.json, text=_models_text)
    return 0


def register(sub, json_flag) -> None:
    """Add the `models` subcommand to the `workbench` parser's subparsers `sub`."""
    models = sub.add_parser(
        "models", parents=[json_flag], help="list the zoo, or describe one model"
    )
    models.add_argument("name", nargs="?", help="a zoo name, checkpoint folder or hub id")
    models.set_defaults(func=run)
