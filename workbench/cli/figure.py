"""`workbench figure`: write a figure to -o FILE.{png,svg,pdf,html}.

    workbench figure run RUN_ID [--kind K] -o fig.svg          a stored run's `result.plot(K)`
    workbench figure pattern MODEL PROMPT --layer L --head H -o fig.png
                                                               one head's attention pattern
    workbench figure stats MODEL PROMPT [--kind KIND (HeadStats.plot_kinds)]
                     [--stat entropy] [--layer L --head H] -o fig.pdf
                                                               attention statistics (analysis)

`run --kind K` must be one of the stored result type's `plot_kinds` (found from the run's
kind through `workbench.results.result_kinds`); without it the type's default plot is drawn.

Images go through `workbench.export` (one kaleido server, MathJax off). The output path is
the user's own choice on the command line; before anything is computed it is checked: a known
suffix, an existing writable folder, not a folder itself, not under /proc, /sys or /dev.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli._common import (
    UsageError,
    add_store_argument,
    check_output_path,
    emit,
    positive_int,
)

_FORMATS = ("png", "svg", "pdf", "html")


class _StatsPlotKinds:
    """`HeadStats.plot_kinds` for `--kind`, imported only when argparse checks or lists one
    (so building the parser does not import the analyses)."""

    @staticmethod
    def _kinds() -> tuple[str, ...]:
        from analysis.statistics.head_stats import HeadStats

        return HeadStats.plot_kinds

    def __contains__(self, kind: object) -> bool:
        return kind in self._kinds()

    def __iter__(self):
        return iter(self._kinds())


def _output(path: str) -> Path:
    if Path(path).suffix.lower().lstrip(".") not in _FORMATS:
        raise UsageError(f"-o: {path!r} must end in one of .png, .svg, .pdf, .html")
    return check_output_path(path, "-o")


def _figure(args: argparse.Namespace):
    if args.source == "run":
        import analysis  # noqa: F401 - importing the packages registers every result type
        import circuits  # noqa: F401
        from workbench.results import result_kinds
        from workbench.store import RunStore

        store = RunStore(args.store)
        result = store.load_result(args.run_id)
        if not args.kind:
            return result.plot()
        kind = store.get_run(args.run_id).kind  # canonical: older kind names are mapped
        kinds = result_kinds().get(kind, type(result)).plot_kinds
        if kinds and args.kind not in kinds:
            raise UsageError(
                f"--kind: {args.kind!r} is not a plot kind of {kind} runs; "
                f"choose from {', '.join(kinds)}"
            )
        return result.plot(args.kind)
    from workbench import load_model

    model = load_model(args.model)
    if args.source == "pattern":
        from analysis.statistics.attention_pattern import attention_pattern, pattern_figure
        from workbench.heads import Head

        found = attention_pattern(model, args.prompt, args.layer, args.head)
        title = f"{model.name} {Head(found.layer, found.head)}"
        return pattern_figure(found.pattern, found.tokens, title=title)
    from analysis.statistics.attention_stats import attention_stats

    extra = ["block_mass"] if args.kind == "block_mass" else []
    from kernels import DEFAULT_STATS

    stats = attention_stats(
        model, [args.prompt], stats=[*DEFAULT_STATS, *extra], mass_block=args.mass_block
    )
    if args.kind == "heatmap":
        return stats.plot("heatmap", stat=args.stat)
    if args.layer is None or args.head is None:
        raise UsageError(f"--layer and --head: needed for --kind {args.kind}")
    kwargs = {"stat": args.stat} if args.kind == "query" else {}
    return stats.plot(args.kind, layer=args.layer, head=args.head, **kwargs)


def run(args: argparse.Namespace) -> int:
    """Run `workbench figure` with parsed `args`; returns the exit code."""
    out = _output(args.output)
    fig = _figure(args)
    from workbench.export import export

    path = export(fig, out, width=args.width, height=args.height)
    payload = {"path": str(path), "format": path.suffix.lstrip("."), "bytes": path.stat().st_size}
    emit(payload, as_json=args.json, text=lambda p: f"wrote {p['path']} ({p['bytes']} bytes)")
    return 0


def register(sub, json_flag) -> None:
    """Add the `figure` subcommand to the `workbench` parser's subparsers `sub`."""
    figure = sub.add_parser("figure", help="export a figure to PNG/SVG/PDF/HTML")
    kinds = figure.add_subparsers(dest="source", required=True, parser_class=type(figure))
    size = argparse.ArgumentParser(add_help=False)
    size.add_argument("-o", "--output", required=True, help="file.png|svg|pdf|html")
    size.add_argument("--width", type=positive_int, default=None, help="pixels (default: 900)")
    size.add_argument("--height", type=positive_int, default=None, help="pixels (default: 600)")

    run_p = kinds.add_parser("run", parents=[json_flag, size], help="a stored run's figure")
    run_p.add_argument("run_id")
    run_p.add_argument(
        "--kind", default=None, help="plot kind: one of the stored result type's plot_kinds"
    )
    add_store_argument(run_p)

    pattern = kinds.add_parser("pattern", parents=[json_flag, size], help="one head's pattern")
    pattern.add_argument("model")
    pattern.add_argument("prompt")
    pattern.add_argument("--layer", type=int, required=True)
    pattern.add_argument("--head", type=int, required=True)

    stats = kinds.add_parser("stats", parents=[json_flag, size], help="attention statistics")
    stats.add_argument("model")
    stats.add_argument("prompt")
    stats.add_argument(
        "--kind",
        default="heatmap",
        choices=_StatsPlotKinds(),
        metavar="KIND",  # a metavar keeps argparse from listing (importing) the kinds up front
        help="HeadStats plot kind: %(choices)s (default %(default)s)",
    )
    stats.add_argument("--stat", default="entropy", help="statistic for heatmap/query")
    stats.add_argument("--layer", type=int, default=None, help="for query/distance/block_mass")
    stats.add_argument("--head", type=int, default=None, help="for query/distance/block_mass")
    stats.add_argument(
        "--mass-block", type=positive_int, default=8, help="key-block width (block_mass)"
    )
    figure.set_defaults(func=run)
