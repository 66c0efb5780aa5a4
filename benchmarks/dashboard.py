"""Benchmark: Attention-page callbacks at long prompts (server time and response bytes).

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/dashboard.py [--repeats N]

Prints JSON and writes `benchmarks/results/dashboard.json`.

- Models: `minilm` (6 layers x 12 heads, context 512, so its "1,000-token" case runs at 512
  and says so) and `gpt2-small-shaped`: a RANDOM-weight GPT-2 with GPT-2 small's shape (12
  layers x 12 heads, d_model 768, context 1024), written with `save_pretrained` into a temp
  folder with the tiny-ioi tokenizer (its timings are the model's shape, not its training).
- Callbacks go through the real HTTP path (`/_dash-update-component` via Flask's test client,
  the JSON the browser sends; serialising the returned figures included), one session each.
- `first_view_s`: the first head view on a fresh session (statistics and every pattern
  computed once, then cached server-side).
- `lock_head` (pattern + statistic along the prompt + signed-offset histogram + block-mass
  map) and `hover_preview` (pattern only): `--repeats` calls each; p50/p95/max server time
  and the response size in bytes. Targets (issue 16): lock-head p95 < 0.3 s and < 200 KB per
  response at 1,000 tokens.
- `export_after_warmup`: PNG/SVG/PDF export (`workbench.export.figure_bytes`, one kaleido
  server) of the last pattern figure drawn (12-layer model, 1,000 tokens), `--repeats` each;
  target p95 < 0.5 s.
- `legacy_pattern_figure`: the pattern figure as drawn before issue 16 (per-cell hover
  strings, full n x n), loaded from `git show HEAD:...` when git has it: JSON bytes and
  build+serialise time, for the before/after comparison.

Timings are wall-clock; the machine's load averages at the start and end are recorded beside
them (a shared 2-core machine is noisy and slower than an idle one). Never assert on them in
tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
import uuid
from pathlib import Path

import numpy as np
from attention_stats_model import prompt_of_length  # same folder: run as a script

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
# run as a script, benchmarks/ comes first on sys.path, where benchmarks/circuits.py would
# shadow the `circuits` package the dashboard imports: the repository root goes first instead
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "dashboard.json"
TOKENIZER = ROOT / "workbench" / "zoo" / "checkpoints" / "tiny-ioi"
LENGTHS = (300, 1000)
HEAD_OUTPUTS = [
    f"attention-{name}"
    for name in ("pattern.figure", "along.figure", "distance.figure", "block.figure")
] + ["attention-error.children"]


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(times), "p50_s": statistics.median(times), "p95_s": p95, "max_s": ordered[-1]}


def gpt2_small_shaped(folder: Path) -> Path:
    """A random-weight GPT-2-small-shaped checkpoint (seed 0) with the tiny-ioi tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    vocab = json.loads((TOKENIZER / "config.json").read_text())["vocab_size"]
    config = GPT2Config(
        n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab_size=vocab, bos_token_id=0
    )
    path = folder / "gpt2-small-shaped"
    GPT2LMHeadModel(config).save_pretrained(path, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(TOKENIZER / name, path / name)
    return path


def legacy_figure(n: int) -> dict | None:
    """Bytes and seconds of the pre-issue-16 pattern figure at `n` tokens (random pattern)."""
    try:
        source = subprocess.run(
            ["git", "show", "HEAD:analysis/statistics/attention_pattern.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("legacy_attention_pattern")
    sys.modules[module.__name__] = module  # its dataclass looks its module up
    exec(compile(source, "legacy_attention_pattern", "exec"), module.__dict__)  # noqa: S102
    pattern = np.random.default_rng(0).random((n, n), dtype=np.float32)  # [query, key]
    pattern /= pattern.sum(axis=1, keepdims=True)
    started = time.perf_counter()
    figure = module.pattern_figure(pattern, [f"w{i}" for i in range(n)], title="legacy", query=1)
    size = len(figure.to_json())
    return {"bytes": size, "build_and_serialise_s": time.perf_counter() - started}


def export_times(figure: dict, repeats: int) -> dict:
    """`figure_bytes` p50/p95 per format (one kaleido server, one warm-up export each)."""
    from workbench.export import figure_bytes, start_server

    start_server()
    times: dict[str, dict] = {}
    for fmt in ("png", "svg", "pdf"):
        figure_bytes(figure, fmt)  # warm-up
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            figure_bytes(figure, fmt)
            runs.append(time.perf_counter() - started)
        times[fmt] = summary(runs)
    return times


def bench_case(app, client, model, n_wanted: int, repeats: int) -> dict:
    from workbench.ui.callback_client import post_callback

    n = min(n_wanted, model.n_ctx)
    prompt = prompt_of_length(model, n)
    n = int(model.to_tokens(prompt).shape[1])
    page_state = {
        "attention-query.data": {"model": model.name, "prompt": prompt},
        "session-id.data": uuid.uuid4().hex,
    }

    def head_view(layer: int, head: int, token: int, hover: dict | None = None):
        inputs = {
            "attention-layer.value": layer,
            "attention-head.value": head,
            "attention-token.value": token,
            "attention-stat.value": "entropy",
            "attention-block-size.value": "16",
            "attention-heads.hoverData": hover,
        }
        changed = ["attention-heads.hoverData"] if hover else ["attention-layer.value"]
        started = time.perf_counter()
        answer = post_callback(app, client, HEAD_OUTPUTS, inputs, page_state, changed=changed)
        seconds = time.perf_counter() - started
        error = answer["response"].get("attention-error", {}).get("children")
        if error:
            raise RuntimeError(f"{model.name} at {n} tokens: {error}")
        figures["pattern"] = answer["response"]["attention-pattern"]["figure"]
        return seconds, len(json.dumps(answer))

    figures: dict[str, dict] = {}

    first_s, _ = head_view(0, 0, n // 2)
    kinds: dict[str, dict[str, list]] = {
        "lock_head": {"s": [], "bytes": []},
        "hover_preview": {"s": [], "bytes": []},
    }
    for i in range(repeats):
        layer, head, token = i % model.n_layers, (5 * i) % model.n_heads, (37 * i) % n
        for kind, hover in (
            ("lock_head", None),
            ("hover_preview", {"points": [{"x": (head + 1) % model.n_heads, "y": layer}]}),
        ):
            seconds, size = head_view(layer, head, token, hover)
            kinds[kind]["s"].append(seconds)
            kinds[kind]["bytes"].append(size)
    return figures["pattern"], {
        "model": model.name.rsplit("/", 1)[-1],
        "prompt_tokens": n,
        "requested_tokens": n_wanted,
        "note": "" if n == n_wanted else f"context is {model.n_ctx}: ran at {n} tokens",
        "first_view_s": first_s,
        **{
            kind: {
                **summary(v["s"]),
                "bytes_max": max(v["bytes"]),
                "bytes_p50": int(statistics.median(v["bytes"])),
            }
            for kind, v in kinds.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    from workbench.ui import create_app, state

    folder = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    started, load_at_start = time.perf_counter(), os.getloadavg()
    checkpoint = gpt2_small_shaped(folder)
    app = create_app(preload=["minilm"], store=str(folder / "store"))
    state.configure(model_roots=[folder], result_cache_bytes=1536 * 2**20)
    client = app.server.test_client()
    cases, pattern = [], None
    for name in ("minilm", str(checkpoint)):
        model = state.open_model(name)
        for n in LENGTHS:
            pattern, case = bench_case(app, client, model, n, args.repeats)
            cases.append(case)
            print(json.dumps(case), flush=True)
    export = export_times(pattern, args.repeats)
    at_1000 = [c for c in cases if c["prompt_tokens"] == 1000]
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "omp_threads": os.environ.get("OMP_NUM_THREADS"),
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg(),
        },
        "cases": cases,
        "legacy_pattern_figure": {str(n): legacy_figure(n) for n in LENGTHS},
        "export_after_warmup": {"pattern_1000_tokens_windowed": export},
        "targets": {
            "lock_head_p95_s_at_1000": 0.3,
            "response_bytes_at_1000": 200_000,
            "export_p95_s": 0.5,
        },
        "meets_targets": {
            "lock_head_p95_at_1000": all(c["lock_head"]["p95_s"] < 0.3 for c in at_1000),
            "bytes_at_1000": all(
                c[k]["bytes_max"] < 200_000 for c in at_1000 for k in ("lock_head", "hover_preview")
            ),
            "export_p95": all(t["p95_s"] < 0.5 for t in export.values()),
        },
        "total_s": time.perf_counter() - started,
    }
    shutil.rmtree(folder, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
