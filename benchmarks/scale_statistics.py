"""Attention statistics vs pattern capture at 128-4,096 tokens on a GPT-2-small-shaped model.

Run: `HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/scale_statistics.py [--lengths 128 512 ...]`
Writes benchmarks/results/scale_statistics.json; docs/scale.md summarises it.

The model is `benchmarks/scale.py`'s random GPT-2-small shape (12 layers x 12 heads, d_model 768,
vocabulary 2,048, tiny-induction's tokenizer) with `n_positions` raised to 4,096, built here with
`save_pretrained` into its own temp folder and loaded by folder. Per prompt length, three
variants, each in a fresh subprocess with one torch thread (peak RSS from `ru_maxrss` is its own):
- `attention_stats`: `analysis.attention_stats(model, [prompt], stats=("entropy",))`, the
  chunked CPU kernel path, which never builds an n x n pattern;
- `patterns`: `model.run_with_cache(tokens, names=<every layer's hook_pattern>)`, then the same
  entropy from the cached `[head, query, key]` patterns (float32 `-sum xlogy(p, p)`);
- `sdpa`: a plain transformers forward with `attn_implementation="sdpa"` (no statistics): the floor.
Each child loads the model, warms up on 16 tokens, then times one run (wall and CPU seconds).
The entropies of `attention_stats` and `patterns` are compared (max |a - b|). The machine is
shared (2 cores, several engineers' jobs): load averages are recorded around every run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scale.py, run as a script

import scale  # noqa: E402  (benchmarks/scale.py: shape, tokenizer folder, RSS helpers)

RESULTS = scale.ROOT / "benchmarks" / "results" / "scale_statistics.json"
FOLDER = scale.CACHE / "gpt2-small-4096"
SHAPE = {**scale.SHAPES["gpt2-small"], "n_positions": 4096}
MARK = "@@RESULT@@ "
VARIANTS = ("attention_stats", "patterns", "sdpa")


def build_checkpoint() -> Path:
    """The GPT-2-small-shaped random checkpoint with a 4,096-token context (built once)."""
    import torch
    import transformers

    if (FOLDER / "config.json").exists():
        return FOLDER
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**SHAPE))
    hf.eval().save_pretrained(FOLDER)
    for source in scale.TOKENIZER.iterdir():
        if source.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(source, FOLDER)
    return FOLDER


def prompt_of_length(model, n_tokens: int) -> str:
    """A prompt of exactly `n_tokens` tokens (BOS included) for `model`: binary search on the
    number of words; raises when no word count hits it."""
    words = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "again"]

    def text(k: int) -> str:
        return " ".join(words[i % len(words)] for i in range(k))

    low, high = 1, 2 * n_tokens
    while low <= high:
        mid = (low + high) // 2
        try:
            length = model.to_tokens(text(mid)).shape[1]
        except ValueError:  # longer than the context
            length = n_tokens + 1
        if length == n_tokens:
            return text(mid)
        low, high = (mid + 1, high) if length < n_tokens else (low, mid - 1)
    raise ValueError(f"no prompt of exactly {n_tokens} tokens")


# ---------------------------------------------------------------------- worker side
def child(variant: str, n_tokens: int, out: Path) -> dict:
    import torch

    torch.set_num_threads(1)
    from analysis import attention_stats
    from workbench import load_model

    wb = load_model(str(FOLDER))
    prompt, short = prompt_of_length(wb, n_tokens), prompt_of_length(wb, 16)
    tokens, short_ids = wb.to_tokens(prompt), wb.to_tokens(short)  # [1, pos], [1, 16]
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(wb.n_layers)]
    if variant == "sdpa":
        import transformers

        hf = transformers.GPT2LMHeadModel.from_pretrained(FOLDER, attn_implementation="sdpa")
        hf.eval()
        del wb

    def once(ids: torch.Tensor, text: str) -> torch.Tensor | None:
        with torch.no_grad():
            if variant == "attention_stats":
                return attention_stats(wb, [text], stats=("entropy",)).entropy[0]  # [l, h, q]
            if variant == "patterns":
                _, cache = wb.run_with_cache(ids, names=names)
                return torch.stack(
                    [-torch.special.xlogy(cache[n][0], cache[n][0]).sum(-1) for n in names]
                )  # [layer, head, query]
            hf(ids)
            return None

    once(short_ids, short)  # warm-up: pages the weights in, first-call setup
    rss_ready = scale.rss_mb()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, start = usage.ru_utime + usage.ru_stime, time.perf_counter()
    entropy = once(tokens, prompt)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    if entropy is not None:
        torch.save(entropy.float(), out)
    return {
        "variant": variant,
        "n_tokens": int(tokens.shape[1]),
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime - cpu0, 3),
        "rss_ready_mb": round(rss_ready),
        "peak_rss_mb": round(scale.peak_mb()),
        "torch_threads": torch.get_num_threads(),
    }


# ---------------------------------------------------------------------- parent
def available_mb() -> float:
    """MemAvailable from /proc/meminfo in MB."""
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) / 1024


def run_child(variant: str, n_tokens: int, out: Path, timeout: float) -> dict:
    """One variant at one length in a fresh one-thread subprocess, with the load around it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env["TRANSFORMERS_VERBOSITY"] = "error"
    command = [sys.executable, __file__, "--child", variant, str(n_tokens), str(out)]
    cached = SHAPE["n_layer"] * SHAPE["n_head"] * n_tokens**2 * 4 / 2**20  # MB of patterns
    if variant == "patterns" and 1.3 * cached > 0.8 * available_mb():
        return {"variant": variant, "n_tokens": n_tokens, "skipped": f"{cached:.0f} MB cache"}
    load_before = os.getloadavg()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"variant": variant, "n_tokens": n_tokens, "skipped": f"over {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            record = json.loads(line[len(MARK) :])
            record["load_before"] = [round(x, 2) for x in load_before]
            record["load_after"] = [round(x, 2) for x in os.getloadavg()]
            return record
    raise RuntimeError(f"{variant} at {n_tokens} failed:\n{proc.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 1024, 2048, 4096])
    parser.add_argument("--timeout", type=float, default=300, help="seconds per child")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, n, out = args.child
        print(MARK + json.dumps(child(variant, int(n), Path(out))), flush=True)
        return

    import torch

    build_checkpoint()
    rows, notes, started = [], [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.lengths:
            row = {"n_tokens": n}
            for variant in VARIANTS:
                record = run_child(variant, n, Path(tmp) / f"{variant}-{n}.pt", args.timeout)
                row[variant] = record
                print(json.dumps(record), flush=True)
            files = [Path(tmp) / f"{v}-{n}.pt" for v in ("attention_stats", "patterns")]
            if all(f.exists() for f in files):
                a, b = (torch.load(f) for f in files)  # [layer, head, query] each
                row["entropy_max_abs_diff"] = float((a - b).abs().max())
            rows.append(row)
            slowest = max(
                r.get("wall_s", float("inf")) for r in row.values() if isinstance(r, dict)
            )
            if slowest > 180 and n != args.lengths[-1]:
                notes.append(f"stopped after {n} tokens: one case took {slowest:.0f} s (> 180 s)")
                break
    result = {
        "benchmark": "scale_statistics",
        "model": {"folder": str(FOLDER), "config": SHAPE},
        "statistics": ["entropy"],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine_shared": "2 cores shared with other engineers' jobs: wall times are upper "
        "bounds of the idle cost; cpu_s is less sensitive to the load",
        "total_run_s": round(time.perf_counter() - started, 1),
        "notes": notes,
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
