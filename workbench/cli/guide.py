"""`workbench guide MODEL PROMPT --heads L1H0,L1H2`: decode with head-perturbation guidance.

Runs `analysis.guide`: at every step the clean logits are pushed away from those of a
copy of the model whose chosen heads are perturbed (`--method identity|uniform|mean_query|
temperature|zero|mean`, SoftPAG strength `--u`), with scale `--w` on the plausibility set
`p >= alpha * max p`. Greedy by default, `--sample` samples with `--seed`. Prints the
generated text and the per-step logit shifts; `--save` stores the result (kind "guidance").
`--heads` takes heads as `L1H2` (the older `1.2` is read too); the JSON lists them that way.
Bad input (no heads, u outside [0, 1], unknown method, an encoder) exits 2 with one line.
"""

from __future__ import annotations

import argparse
from typing import Any

from workbench.cli._common import UsageError, add_save_arguments, emit, save_if_asked, saved_line


def _text(payload: dict[str, Any]) -> str:
    lines = [f"{payload['model']}: {payload['prompt']!r} -> {payload['text']!r}"]
    lines.append(f"guidance changed {payload['n_changed']} of {len(payload['steps'])} tokens")
    for step in payload["steps"]:
        mark = "*" if step["changed"] else " "
        lines.append(
            f"{mark} {step['step']:>3} {step['token_str']!r:<16} shift {step['shift_chosen']:+.3f}"
        )
    lines += saved_line(payload)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run `workbench guide` with parsed `args`; returns the exit code."""
    if not 0.0 <= args.u <= 1.0:
        raise UsageError(f"--u: perturbation strength must be in [0, 1], got {args.u}")
    from analysis.steering.guidance import guide
    from analysis.steering.head_perturbation import HeadPerturbation
    from workbench import load_model
    from workbench.heads import parse_heads

    perturbation = HeadPerturbation(
        heads=parse_heads(args.heads), method=args.method, u=args.u, tau=args.tau
    )
    model = load_model(args.model)
    result = guide(
        model,
        args.prompt,
        perturbation,
        w=args.w,
        alpha=args.alpha,
        max_new_tokens=args.max_new_tokens,
        sample=args.sample,
        temperature=args.temperature,
        seed=args.seed,
        progress=not args.quiet,
    )
    payload: dict[str, Any] = {
        "model": result.model_name,
        "prompt": result.prompt,
        "heads": [str(h) for h in result.heads],
        "method": result.method,
        "u": result.u,
        "w": result.w,
        "alpha": result.alpha,
        "text": result.text,
        "n_changed": result.n_changed,
        "steps": result.to_frame().to_dict(orient="records"),
    }
    config = {k: payload[k] for k in ("heads", "method", "u", "w", "alpha")}
    save_if_asked(args, payload, result, config=config)
    emit(payload, as_json=args.json, text=_text)
    return 0


def register(sub, json_flag) -> None:
    """Add the `guide` subcommand to the `workbench` parser's subparsers `sub`."""
    p = sub.add_parser("guide", parents=[json_flag], help="decode with head-perturbation guidance")
    p.add_argument("model", help="a decoder: zoo name, checkpoint folder or hub id")
    p.add_argument("prompt")
    p.add_argument(
        "--heads", required=True, help="heads to perturb, comma-separated (e.g. L1H0,L1H3)"
    )
    p.add_argument(
        "--method", default="identity", help="identity|uniform|mean_query|temperature|zero|mean"
    )
    p.add_argument("--u", type=float, default=1.0, help="SoftPAG strength in [0, 1] (default 1)")
    p.add_argument("--tau", type=float, default=2.0, help="temperature for --method temperature")
    p.add_argument("--w", type=float, default=1.0, help="guidance scale (0 = plain decoding)")
    p.add_argument("--alpha", type=float, default=0.1, help="plausibility threshold (default 0.1)")
    p.add_argument("--max-new-tokens", type=int, default=20)
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_save_arguments(p)
    p.set_defaults(func=run)
