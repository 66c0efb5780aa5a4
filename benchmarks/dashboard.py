"""Benchmark: Attention-page callback latency on minilm (128-token prompt) and figure export.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/dashboard.py [--repeats N]

Prints JSON and writes `benchmarks/results/dashboard.json`.

- Callbacks go through the real HTTP path (`/_dash-update-component` via Flask's test client,
  the same JSON the browser sends, serialisation of the returned figures included), one
  browser session, on `minilm` (6 layers x 12 heads) with a prompt of exactly 128 tokens.
- `first_view_s`: the page's first two callbacks on a fresh session (attention statistics and
  every pattern computed once, then cached server-side for the session).
- `interactions`: then `--repeats` rounds of the page's interactive callbacks: lock another
  head (pattern, statistic along the prompt, distance histogram, block-mass map), hover-preview
  a head (pattern only), switch statistic (layer x head heatmap). p50/p95/max per kind and
  over all; the target is p95 < 1 s.
- `export`: `workbench.export.figure_bytes` of the 128 x 128 pattern figure and of the
  layer x head heatmap as PNG, SVG and PDF through the one kaleido server, after one warm-up
  export per format; the target is < 0.5 s.

Timings are wall-clock on a shared machine (noisy); never assert on them in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from attention_stats_model import prompt_of_length  # same folder: run as a script

os.environ.setdefault("HF_HUB_OFFLINE", "1")
RESULTS = Path(__file__).resolve().parent / "results" / "dashboard.json"
STATS = ["entropy", "sink", "max_prob", "mean_distance", "effective_keys"]


def prompt_of(model, n_tokens: int) -> str:
    """A prompt of exactly `n_tokens` tokens (special tokens included) for `model`."""
    text = prompt_of_length(model, n_tokens)
    if model.to_tokens(text).shape[1] != n_tokens:
        raise RuntimeError(f"could not build a {n_tokens}-token prompt")
    return text


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(times), "p50_s": statistics.median(times), "p95_s": p95, "max_s": ordered[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=12)
    args = parser.parse_args()

    from workbench.export import figure_bytes, start_server
    from workbench.ui import create_app, state
    from workbench.ui.callback_client import post_callback

    app = create_app(preload=["minilm"], store=tempfile.mkdtemp(prefix="bench-store-"))
    client = app.server.test_client()
    model = state.get_model("minilm")
    prompt = prompt_of(model, 128)
    session = uuid.uuid4().hex
    page_state = {
        "attention-query.data": {"model": "minilm", "prompt": prompt},
        "session-id.data": session,
    }
    head_outputs = [
        f"attention-{name}"
        for name in ("pattern.figure", "along.figure", "distance.figure", "block.figure")
    ] + ["attention-error.children"]

    def heads_view(stat: str) -> dict:
        return post_callback(
            app,
            client,
            ["attention-heads.figure", "attention-error.children"],
            {"attention-stat.value": stat, "attention-block-size.value": "16"},
            page_state,
        )

    def head_view(layer: int, head: int, hover: dict | None = None) -> dict:
        inputs = {
            "attention-layer.value": layer,
            "attention-head.value": head,
            "attention-token.value": 64,
            "attention-stat.value": "entropy",
            "attention-block-size.value": "16",
            "attention-heads.hoverData": hover,
        }
        changed = ["attention-heads.hoverData"] if hover else ["attention-layer.value"]
        return post_callback(app, client, head_outputs, inputs, page_state, changed=changed)

    def timed(call, *call_args, **call_kwargs) -> tuple[float, dict]:
        started = time.perf_counter()
        answer = call(*call_args, **call_kwargs)
        return time.perf_counter() - started, answer

    first_heads, answer = timed(heads_view, "entropy")
    assert answer["response"]["attention-error"]["children"] is None, answer
    heatmap = answer["response"]["attention-heads"]["figure"]
    first_head, answer = timed(head_view, 0, 0)
    pattern = answer["response"]["attention-pattern"]["figure"]

    kinds: dict[str, list[float]] = {"lock_head": [], "hover_preview": [], "statistic": []}
    for i in range(args.repeats):
        layer, head = i % model.n_layers, (5 * i) % model.n_heads
        kinds["lock_head"].append(timed(head_view, layer, head)[0])
        hover = {"points": [{"x": (head + 1) % model.n_heads, "y": layer, "curveNumber": 0}]}
        kinds["hover_preview"].append(timed(head_view, layer, head, hover)[0])
        kinds["statistic"].append(timed(heads_view, STATS[i % len(STATS)])[0])

    start_server()
    export: dict[str, dict] = {}
    for name, figure in (("pattern_128x128", pattern), ("layer_head_heatmap", heatmap)):
        export[name] = {}
        for fmt in ("png", "svg", "pdf"):
            figure_bytes(figure, fmt)  # warm-up
            times = []
            for _ in range(max(3, args.repeats // 2)):
                started = time.perf_counter()
                figure_bytes(figure, fmt)
                times.append(time.perf_counter() - started)
            export[name][fmt] = summary(times)

    every = [t for values in kinds.values() for t in values]
    result = {
        "model": "minilm",
        "prompt_tokens": 128,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        "first_view_s": {"heads_heatmap": first_heads, "head_views": first_head},
        "interactions": {kind: summary(values) for kind, values in kinds.items()},
        "interactions_all": summary(every),
        "export_after_warmup": export,
        "targets": {"interaction_p95_s": 1.0, "export_s": 0.5},
        "meets_targets": {
            "interaction_p95": summary(every)["p95_s"] < 1.0,
            "export_p95": {
                name: all(e["p95_s"] < 0.5 for e in formats.values())
                for name, formats in export.items()
            },
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
