"""`workbench svd MODEL LAYER HEAD`: QK (bias-augmented) and OV singular spectra of one head.

Runs `analysis.anatomy.head_svd.qk_ov_svd` (float64 weights probed from the model's own
modules, norm gain/bias folded, centred on LayerNorm models as TransformerLens' compatibility
mode: docs/anatomy.md) and prints the spectra, effective ranks, the QK spectral norm and token
readouts of the top singular directions; `--save` stores the result (kind "head_svd"). An
out-of-range layer or head, or a family head anatomy does not support, exits 2 with one line
naming it.
"""

from __future__ import annotations

import argparse
from typing import Any

from workbench.cli._common import add_save_arguments, emit, save_if_asked, saved_line
from workbench.heads import Head


def _text(payload: dict[str, Any]) -> str:
    import pandas as pd

    lines = [
        f"{payload['model']} {Head(payload['layer'], payload['head'])} (kv head {payload['kv_head']})",
        f"QK spectral norm sigma_max/sqrt(d_head): {payload['spectral_norm']:.4g}",
        f"QK effective rank: {payload['qk_effective_rank']}",
        f"OV effective rank: {payload['ov_effective_rank']}",
        "QK singular values: " + " ".join(f"{s:.3g}" for s in payload["qk_singular_values"]),
        "OV singular values: " + " ".join(f"{s:.3g}" for s in payload["ov_singular_values"]),
        f"weights: {payload['weights']}",
    ]
    readouts = pd.DataFrame(payload["readouts"])
    if not readouts.empty:
        top = readouts.groupby(["matrix", "side", "component", "sign"], sort=False).token.apply(
            lambda tokens: " ".join(tokens)
        )
        lines.append(top.to_string())
    lines += saved_line(payload)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run `workbench svd` with parsed `args`; returns the exit code."""
    from analysis.anatomy.head_svd import qk_ov_svd
    from workbench import load_model

    model = load_model(args.model)
    result = qk_ov_svd(
        model, args.layer, args.head, n_components=args.components, top_tokens=args.top_tokens
    )
    payload = {**result.summary(), "readouts": result.readouts.to_dict(orient="records")}
    config = {"layer": args.layer, "head": args.head, "components": args.components}
    save_if_asked(args, payload, result, config=config)
    emit(payload, as_json=args.json, text=_text)
    return 0


def register(sub, json_flag) -> None:
    """Add the `svd` subcommand to the `workbench` parser's subparsers `sub`."""
    p = sub.add_parser(
        "svd", parents=[json_flag], help="QK / OV singular spectra and token readouts of a head"
    )
    p.add_argument("model", help="a zoo name, checkpoint folder or hub id")
    p.add_argument("layer", type=int)
    p.add_argument("head", type=int)
    p.add_argument("--components", type=int, default=3, help="directions read out (default 3)")
    p.add_argument("--top-tokens", type=int, default=8, help="tokens per direction and sign")
    add_save_arguments(p)
    p.set_defaults(func=run)
