"""Circuit methods at the size of real models: GPT-2-small- and Pythia-160m-shaped checkpoints.

Run: `HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/scale.py [--prompts 8 32 128] [--quick]`
(`--prompts-only --prompts 128 --methods eap --update`: one prompt count, kept beside the rest).
Writes benchmarks/results/scale.json; docs/scale.md summarises it.

Both models are random-weight checkpoints built here and saved with `save_pretrained` (the cost
of a method does not depend on the weights): GPT-2 small's shape (12 layers x 12 heads,
d_model 768, MLP 3072) and Pythia-160m's (the same sizes, GPT-NeoX parallel blocks, rotary on a
quarter of each head), both with the zoo's 2,048-token BPE tokenizer (tiny-induction's; tiny-ioi's
has 164 tokens) and loaded by folder through `workbench.load_model`. The task is induction
(`BOS + r + r`, 20 random tokens repeated: 41 positions).

Every measurement runs in a fresh subprocess with one torch thread, so its peak RSS (`ru_maxrss`)
is its own; the RSS after loading the model and building the task is recorded beside it. Per
method: runtime, forward/backward passes (the `Circuit` config's counts) and peak RSS:
- `eap`, `eap-ig` (5 steps, input path): per-port gradient aggregation (`circuits.port_gradients`),
  default minibatches (sized so one minibatch's writer differences stay under 64 MB);
- `eap-before`, `eap-ig-before`: the weight-gradient formulation they replaced
  (`circuits.attribution_reference`) with the old default minibatch (all 8 prompts);
- `atp*`: AtP* (`circuits.atp_star`: QK fix and GradDrop), its memory-sized default minibatch;
- `activation`: node activation patching (resample), every node;
- `path-sampled`: path patching of a random sample of edges, the exhaustive cost extrapolated
  (fixed cost + per-edge cost x edges);
- `acdc-capped`: the first steps of ACDC (one patched forward each, in ACDC's order), its full
  cost extrapolated to one step per edge;
- `tl-attribution-patch`: TransformerLens' `attribution_patch(granularity="edge")` on the same
  prompts, one prompt per call as its API takes them (measured on `--tl-prompts` prompts,
  per-prompt time extrapolated to the full count; its peak does not grow with the prompt
  count since each call takes one prompt).
The machine is shared: the 1-, 5- and 15-minute load averages are recorded before and after
every measurement; wall-clock figures under load are upper bounds of the idle cost, and each
record also carries the process's CPU time (`cpu_s`), much less sensitive to the load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repo's packages, also under a stale editable install
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
CACHE = Path(tempfile.gettempdir()) / "workbench-scale-checkpoints"  # outside the checkout
TOKENIZER = ROOT / "workbench" / "zoo" / "checkpoints" / "tiny-induction"
SHAPES = {
    "gpt2-small": {
        "n_layer": 12,
        "n_head": 12,
        "n_embd": 768,
        "vocab_size": 2048,
        "n_positions": 1024,
    },
    "pythia-160m": {
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "hidden_size": 768,
        "intermediate_size": 3072,
        "vocab_size": 2048,
        "max_position_embeddings": 2048,
        "rotary_pct": 0.25,
        "use_parallel_residual": True,
    },
}


def build_checkpoint(shape: str) -> Path:
    """The random checkpoint of `shape`, built once into the temp folder with `save_pretrained`."""
    import torch
    import transformers

    folder = CACHE / shape
    if (folder / "config.json").exists():
        return folder
    torch.manual_seed(0)
    if shape == "gpt2-small":
        hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**SHAPES[shape]))
    else:
        hf = transformers.GPTNeoXForCausalLM(transformers.GPTNeoXConfig(**SHAPES[shape]))
    hf.eval().save_pretrained(folder)
    for source in TOKENIZER.iterdir():
        if source.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(source, folder)
    return folder


def rss_mb() -> float:
    """Current resident set size in MB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """Peak resident set size of this process so far in MB (Linux: ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------- worker side
def legacy_eap(model, task, ig_steps: int, batch_size: int):
    """EAP/EAP-IG (input path) as `circuits.attribution` computed it before per-port
    aggregation: weight gradients through `EdgePatcher.forward` (the reference form)."""
    import torch

    from circuits.attribution_reference import weight_gradient_scores
    from circuits.edge_patching import EdgePatcher
    from circuits.graph import build_graph
    from circuits.task_batches import task_batches

    patcher = EdgePatcher(model, build_graph(model, readout=task.readout))
    total = torch.zeros(patcher.graph.n_edges, dtype=torch.float64)
    passes = {"n_forward": 0, "n_backward": 0}
    for sub in task_batches(task, batch_size):
        clean = patcher.writer_outputs(sub.clean_tokens)  # [writer, batch, pos, d_model]
        corrupted = patcher.writer_outputs(sub.corrupted_tokens)
        passes["n_forward"] += 2
        for k in range(1, ig_steps + 1):
            alpha = k / ig_steps
            point = clean[0] if k == ig_steps else corrupted[0] + alpha * (clean[0] - corrupted[0])
            total += weight_gradient_scores(
                patcher,
                sub.clean_tokens,
                sub.metric,
                deltas=clean - corrupted,
                input_override=point,
            )
            passes["n_forward"] += 1
            passes["n_backward"] += 1
    return total / (task.n_prompts * ig_steps), passes


def tl_attribution(model, task, n_prompts: int):
    """TransformerLens' edge attribution patching, one prompt per call."""
    from transformer_lens.tools.analysis.attribution_patching import (
        EdgeAttributionConfig,
        attribution_patch,
    )

    from circuits.task_batches import task_slice

    for i in range(n_prompts):
        sub = task_slice(task, i, i + 1)
        attribution_patch(
            model.bridge,
            sub.clean_tokens,
            sub.corrupted_tokens,
            lambda logits, sub=sub: sub.metric(logits).sum(),
            EdgeAttributionConfig(granularity="edge"),
        )
    return {"n_forward": 2 * n_prompts, "n_backward": n_prompts}


def acdc_steps(model, task, steps: int) -> dict:
    """ACDC's first `steps` steps (removing edges in its order; threshold 0.01, KL)."""
    import torch

    from circuits.acdc import _distance
    from circuits.edge_patching import EdgePatcher
    from circuits.graph import build_graph

    graph = build_graph(model, readout=task.readout)
    patcher = EdgePatcher(model, graph)
    start = time.perf_counter()
    source = patcher.writer_outputs(task.corrupted_tokens)
    measure = _distance(task, "kl", task.run(model, task.clean_tokens))
    setup = time.perf_counter() - start
    removed = torch.zeros(graph.n_edges)
    port_rank = {p.name: i for i, p in enumerate(graph.ports)}
    order = sorted(range(graph.n_edges), key=lambda e: -port_rank[graph.edges[e][1]])
    current, start = 0.0, time.perf_counter()
    with torch.no_grad():
        for e in order[:steps]:
            removed[e] = 1.0
            trial = measure(patcher.forward(task.clean_tokens, removed, source))
            if trial - current < 0.01:
                current = trial
            else:
                removed[e] = 0.0
    per_step = (time.perf_counter() - start) / steps
    return {
        "steps_run": steps,
        "setup_s": setup,
        "per_step_s": per_step,
        "extrapolated_s": setup + per_step * graph.n_edges,
        "extrapolated_n_forward": 2 + graph.n_edges,
    }


def worker(args) -> dict:
    """One measurement in this (fresh) process; returns the record."""
    import torch

    torch.set_num_threads(1)
    from circuits import activation_patching, eap, eap_ig, path_patching
    from circuits.graph import build_graph
    from workbench import load_model
    from workbench.tasks import make_task

    model = load_model(str(build_checkpoint(args.shape)))
    task = make_task("induction", model, n=args.n, seed=0)
    graph = build_graph(model, readout=task.readout)
    record = {
        "shape": args.shape,
        "method": args.method,
        "n_prompts": args.n,
        "batch_size": args.batch_size,
        "n_edges": graph.n_edges,
        "n_positions": int(task.clean_tokens.shape[1]),
        "rss_after_load_mb": round(rss_mb(), 1),
        "load_before": os.getloadavg(),
    }
    start, cpu = time.perf_counter(), time.process_time()
    bs = args.batch_size or None  # 0: the method's default (EAP: sized by memory)
    if args.method not in ("eap", "eap-ig", "atp*"):
        bs = bs or args.n
    if args.method in ("eap", "eap-ig"):
        fn = eap if args.method == "eap" else eap_ig
        options = {} if args.method == "eap" else {"ig_steps": 5}
        circuit = fn(model, task, batch_size=bs, **options)
        passes = {k: circuit.config[k] for k in ("n_forward", "n_backward")}
        bs = circuit.config["batch_size"]
    elif args.method == "atp*":
        from circuits.atp_star import atp_star

        circuit = atp_star(model, task, batch_size=bs)
        passes = {k: circuit.config.get(k) for k in ("n_forward", "n_backward")}
        bs = circuit.config["batch_size"]
    elif args.method in ("eap-before", "eap-ig-before"):
        _, passes = legacy_eap(model, task, 1 if args.method == "eap-before" else 5, bs)
    elif args.method == "activation":
        circuit = activation_patching(model, task, batch_size=bs)
        passes = {k: circuit.config.get(k) for k in ("n_forward", "n_backward")}
    elif args.method == "path-sampled":
        sample = random.Random(0).sample(graph.edge_labels, args.sample_edges)
        t0 = time.perf_counter()
        path_patching(model, task, edges=sample[:1], batch_size=bs)
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        circuit = path_patching(model, task, edges=sample, batch_size=bs)
        many = time.perf_counter() - t0
        per_edge = (many - one) / (len(sample) - 1)
        record["sample_edges"] = len(sample)
        record["per_edge_s"] = per_edge
        record["extrapolated_s"] = (one - per_edge) + per_edge * graph.n_edges
        passes = {k: circuit.config.get(k) for k in ("n_forward", "n_backward")}
    elif args.method == "acdc-capped":
        record.update(acdc_steps(model, task, args.acdc_steps))
        passes = {"n_forward": 2 + args.acdc_steps, "n_backward": 0}
    elif args.method == "tl-attribution-patch":
        passes = tl_attribution(model, task, args.n)
    else:
        raise ValueError(f"method: unknown {args.method!r}")
    record["runtime_s"] = round(time.perf_counter() - start, 3)
    record["cpu_s"] = round(time.process_time() - cpu, 3)  # this process's CPU time
    record["batch_size"] = bs
    record.update(passes)
    record["peak_rss_mb"] = round(peak_mb(), 1)
    record["load_after"] = os.getloadavg()
    return record


# ---------------------------------------------------------------------- driver side
def measure(shape: str, method: str, n: int, batch_size: int, extra: list[str], timeout: int):
    """Run one measurement in a fresh subprocess (one thread); its JSON record or an error."""
    command = [sys.executable, __file__, "--worker", method, "--shape", shape, "--n", str(n)]
    command += ["--batch-size", str(batch_size), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"shape": shape, "method": method, "n_prompts": n, "error": f"over {timeout} s"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"shape": shape, "method": method, "n_prompts": n, "error": tail[0]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def plan(args) -> list[tuple[str, str, int, int]]:
    """(shape, method, prompts, batch size; 0 = the method's default) in the order they run:
    the before/after and TransformerLens comparisons first, larger prompt counts last."""
    if args.prompts_only:
        return [("gpt2-small", m, n, 0) for n in args.prompts for m in args.methods]
    runs = [("gpt2-small", m, 8, 0) for m in ("eap", "eap-ig")]
    runs += [("gpt2-small", m, 8, 8) for m in ("eap-before", "eap-ig-before")]
    runs += [("gpt2-small", "tl-attribution-patch", args.tl_prompts, 1)]
    runs += [("gpt2-small", "eap", args.tl_prompts, 0)]
    if not args.quick:
        runs += [("pythia-160m", m, 8, 0) for m in ("eap", "eap-ig")]
        runs += [("pythia-160m", "eap-before", 8, 8)]
        for m in ("path-sampled", "acdc-capped", "activation"):
            runs.append(("gpt2-small", m, 8, 8))
    for n in args.prompts:
        if n != 8:
            runs += [("gpt2-small", m, n, 0) for m in args.methods]
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, nargs="+", default=[8])
    parser.add_argument("--prompts-only", action="store_true", help="only the --prompts runs")
    parser.add_argument(
        "--methods", nargs="+", default=["eap", "eap-ig"], choices=["eap", "eap-ig", "atp*"]
    )
    parser.add_argument(
        "--quick", action="store_true", help="GPT-2 small: before/after and TL only"
    )
    parser.add_argument("--tl-prompts", type=int, default=2)
    parser.add_argument("--sample-edges", type=int, default=12)
    parser.add_argument("--acdc-steps", type=int, default=12)
    parser.add_argument("--timeout", type=int, default=420)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--update", action="store_true", help="keep --out's other records")
    # worker mode (internal)
    parser.add_argument("--worker", default=None)
    parser.add_argument("--shape", default="gpt2-small", choices=sorted(SHAPES))
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=0, help="0: the method's default")
    args = parser.parse_args()
    if args.worker:
        args.method = args.worker
        print(json.dumps(worker(args)))
        return
    for shape in SHAPES:
        build_checkpoint(shape)
    extra = ["--sample-edges", str(args.sample_edges), "--acdc-steps", str(args.acdc_steps)]
    records = []
    if args.update and args.out.exists():  # replace the re-measured records, keep the rest
        records = json.loads(args.out.read_text())["records"]
    for shape, method, n, bs in plan(args):
        key = (shape, method, n)
        records = [r for r in records if (r["shape"], r["method"], r["n_prompts"]) != key]
        record = measure(shape, method, n, bs, extra, args.timeout)
        print(json.dumps(record), flush=True)
        records.append(record)
        write(args.out, records)  # after every measurement: a partial run keeps its figures


def write(path: Path, records: list[dict]) -> None:
    out = {
        "benchmark": "scale",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": 1,
            "shared": "2 cores shared with other engineers' jobs; see the load averages",
            "load_at_end": os.getloadavg(),
        },
        "shapes": SHAPES,
        "task": "induction, seq_len 20 (41 positions)",
        "records": records,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
