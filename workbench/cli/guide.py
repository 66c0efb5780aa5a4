"""`workbench guide MODEL PROMPT --heads L1H0,L1H2`: decode with head-perturbation guidance.

Runs `analysis.guide`: at every step the clean logits are pushed away from those of a
copy of the model whose chosen heads are perturbed (`--method identity|uniform|mean_query|
temperature|zero|mean`, SoftPAG strength `--u`), with scale `--w` on the plausibility set
`p >= alpha * max p`. Greedy by default, `--sample` samples with `--seed`. Prints the
generated text and the per-step logit shifts; `--save` stores the result (kind "guidance").
`--heads` takes heads as `L1H2` (the older `1.2` is read too); the JSON lists them that way.

`--objective NAME` (instead of `--heads`) searches the heads first: HeadHunter with the
registered objective NAME (`analysis.steering.objectives.OBJECTIVES`, e.g. `ioi_top1`,
`induction_copy`, `text_repetition`; `ioi_logit_diff` is inflated by construction and says
so), built with `--objective-option KEY=INT` (repeatable: n, seed, ...), `--rounds` greedy
rounds on half the objective's prompts, scored on the other half; then decodes PROMPT with the
heads it chose. The JSON's `search` holds the held-out means per setting. If the search
chooses no head, the prompt is decoded without guidance (w = 0) and `search.heads` is empty.
Bad input (no heads, u outside [0, 1], unknown method or objective or option, an encoder)
exits 2 with one line.
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


def objective_options(pairs: list[str]) -> dict[str, int]:
    """`--objective-option KEY=INT` pairs as a dict (UsageError naming a malformed one)."""
    options: dict[str, int] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--objective-option: expected KEY=INT, got {pair!r}")
        try:
            options[key.strip()] = int(value)
        except ValueError:
            raise UsageError(
                f"--objective-option: {key.strip()} needs a whole number, got {value!r}"
            ) from None
    return options


def _check_search_args(args: argparse.Namespace) -> dict[str, int]:
    """Validate --heads/--objective/--objective-option/--rounds before loading a model."""
    from analysis.steering.objectives import OBJECTIVES

    if args.heads is not None and args.objective is not None:
        raise UsageError("--heads/--objective: give one of them, not both")
    if args.heads is None and args.objective is None:
        raise UsageError("--heads/--objective: give the heads to perturb or an objective")
    if args.objective is None:
        if args.objective_option:
            raise UsageError("--objective-option: only with --objective")
        return {}
    if args.objective not in OBJECTIVES:
        raise UsageError(
            f"--objective: unknown objective {args.objective!r}; choose from {sorted(OBJECTIVES)}"
        )
    if args.rounds < 1:
        raise UsageError(f"--rounds: must be >= 1, got {args.rounds}")
    options = objective_options(args.objective_option or [])
    allowed = OBJECTIVES[args.objective].options
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise UsageError(
            f"--objective-option: {args.objective} does not take {unknown}; "
            f"it takes {list(allowed)}"
        )
    return options


def _search(model, args: argparse.Namespace, options: dict[str, int]):
    """HeadHunter with the objective named on the command line; (heads, search payload)."""
    from analysis.steering.head_hunter import HeadHunter, split_rows
    from analysis.steering.objectives import make_objective

    objective = make_objective(args.objective, model, **options)
    select, heldout = split_rows(objective.n_prompts, seed=0)
    hunter = HeadHunter(
        method=args.method, u=args.u, w=args.w, alpha=args.search_alpha, rounds=args.rounds
    ).fit(model, objective, select=select, heldout=heldout)
    result = hunter.result_
    return hunter.heads_, {
        "objective": result.objective,
        "inflated_by_construction": result.inflated,
        "heads": [str(h) for h in result.heads],
        "best_layer": result.best_layer,
        "n_search": len(select),
        "n_heldout": len(heldout),
        "heldout": result.comparison["heldout"],
    }


def run(args: argparse.Namespace) -> int:
    """Run `workbench guide` with parsed `args`; returns the exit code."""
    if not 0.0 <= args.u <= 1.0:
        raise UsageError(f"--u: perturbation strength must be in [0, 1], got {args.u}")
    options = _check_search_args(args)
    from analysis.steering.guidance import guide
    from analysis.steering.head_perturbation import HeadPerturbation
    from workbench import load_model
    from workbench.heads import parse_heads

    heads = parse_heads(args.heads) if args.heads is not None else None
    HeadPerturbation(heads=heads or ((0, 0),), method=args.method, u=args.u, tau=args.tau)
    model = load_model(args.model)
    search, w = None, args.w
    if heads is None:
        heads, search = _search(model, args, options)
        if not heads:  # nothing improved the objective: plain decoding, said in the JSON
            heads, w = ((0, 0),), 0.0
    perturbation = HeadPerturbation(heads=heads, method=args.method, u=args.u, tau=args.tau)
    result = guide(
        model,
        args.prompt,
        perturbation,
        w=w,
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
    if search is not None:
        payload["search"] = search
        if not search["heads"]:
            payload["heads"] = []
    config = {k: payload[k] for k in ("heads", "method", "u", "w", "alpha")}
    save_if_asked(args, payload, result, config=config)
    emit(payload, as_json=args.json, text=_text)
    return 0


def register(sub, json_flag) -> None:
    """Add the `guide` subcommand to the `workbench` parser's subparsers `sub`."""
    p = sub.add_parser("guide", parents=[json_flag], help="decode with head-perturbation guidance")
    p.add_argument("model", help="a decoder: zoo name, checkpoint folder or hub id")
    p.add_argument("prompt")
    p.add_argument("--heads", help="heads to perturb, comma-separated (e.g. L1H0,L1H3)")
    p.add_argument(
        "--objective", help="search the heads with this HeadHunter objective (e.g. ioi_top1)"
    )
    p.add_argument(
        "--objective-option",
        action="append",
        metavar="KEY=INT",
        help="option of the objective's builder (repeatable), e.g. n=32",
    )
    p.add_argument("--rounds", type=int, default=2, help="greedy search rounds (default 2)")
    p.add_argument(
        "--search-alpha",
        type=float,
        default=0.0,
        help="plausibility threshold during the search (default 0: every token)",
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
