"""Benchmark: every circuit method against exhaustive per-edge patching.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/circuits.py [--quick] [--n-ioi N]
        [--n-induction N] [--repeats R] [--scaling-n N] [--scaling-sample K]
        [--parts tiny-ioi tiny-induction scaling] [--out PART.json] [--merge PART.json ...]

Prints JSON and writes `benchmarks/results/circuits.json` (not with `--quick`); `config` records
the sizes used. For tiny-ioi (IOI, default 64 prompts) and tiny-induction (induction, default
32 prompts): the exhaustive reference (one patched forward pass per
edge), then each method's runtime, forward/backward pass counts (one per minibatch pass),
ROC AUC of |score| against the reference circuit (edges whose exact effect is at least 1% of
the clean-corrupted gap), the Pearson correlation of its scores with the exact effects, the
faithfulness of its top-10% and top-20% circuits *pruned connected* (`Circuit.prune(top_n=k)`,
at most k edges, all on input -> output paths; `_connected` in the key) and the smallest
connected circuit with faithfulness >= 0.8 (`circuits.smallest_faithful_circuit`: edges, share
of the graph, faithfulness and its bootstrap interval). `auc_by_reference_share` repeats the
AUC against references cut at 0.5%, 1%, 2% and 5% of the gap.

`atp_star_nodes` is AtP*'s own node table (the paper's node level: each head's q, k, v over
all positions and each MLP; `circuits.atp_star_nodes`) against exact node patching
(`circuits.atp_star.node_patching_reference`), for plain AtP, AtP + QK fix, AtP + GradDrop and
AtP*: Spearman correlation of |estimate| with |exact effect| and the summed absolute error.
The `atp*` rows of the edge table are its edge-level variant (QK fix and GradDrop per edge). `targets` checks the issue's goals (EAP-IG
AUC >= 0.9; EAP-IG >= 20x faster than exhaustive; some circuit with <= 20% of the edges
recovering >= 80% of the gap). The speedup is measured separately, best of 3 interleaved runs
(`speedup_timing`); per-method `runtime_s` are single runs. `scaling` repeats the comparison on
MiniLM (7,588 edges), extrapolating exhaustive patching from a random sample of edges.

Scores against circuits known without patching (the planted models' true edges and
tiny-induction's induction circuit from head scores), with bootstrap intervals:
`benchmarks/circuits_planted.py`. This script's reference is the second view: single-edge
effects.

Caveats: wall times on a shared 2-core machine are noisy; ratios are measured side by side in
one process. `path` patching of every edge *is* the exhaustive reference (same code), so it
is not run twice.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# `python benchmarks/circuits.py` puts benchmarks/ first on sys.path, where this very file
# would shadow the `circuits` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import circuits  # noqa: E402
from circuits.atp_star import atp_star_nodes, node_patching_reference  # noqa: E402
from workbench import load_model  # noqa: E402
from workbench.tasks import make_task  # noqa: E402

CASES = [("tiny-ioi", "ioi", 64), ("tiny-induction", "induction", 32)]
METHODS = [
    ("activation", {"ablation": "resample"}),
    ("activation", {"ablation": "mean"}),
    ("eap", {}),
    ("eap-ig", {"ig_steps": 5}),
    ("eap-ig", {"ig_steps": 20}),
    ("eap-ig", {"ig_steps": 5, "ig_path": "edges"}),
    ("acdc", {"distance": "metric", "threshold": 0.05}),
    ("acdc", {"distance": "metric", "threshold": 0.2}),
    ("acdc", {"distance": "metric", "threshold": 0.5}),
    ("acdc", {"distance": "kl", "threshold": 0.01}),
    ("svd", {}),
    ("atp*", {}),
    ("atp*", {"grad_drop": False}),
]
ATP_VARIANTS = {  # label -> (qk_fix, grad_drop)
    "atp": (False, False),
    "atp+qk": (True, False),
    "atp+gd": (False, True),
    "atp*": (True, True),
}
SHARES = (0.005, 0.01, 0.02, 0.05)  # reference circuits: exact effect >= share * |gap|


def _faithfulness_at(model, task, circuit, share: float) -> float:
    """Faithfulness of the connected prune to at most `share` of the edges."""
    k = max(1, round(share * len(circuit.edges)))
    return circuits.faithfulness(model, task, circuit.prune(top_n=k)).faithfulness


def _smallest(model, task, circuit) -> dict:
    small = circuits.smallest_faithful_circuit(model, task, circuit, target=0.8)
    return {
        "reached": small.reached,
        "n_edges": small.n_edges,
        "edge_share": small.edge_share,
        "faithfulness": small.faithfulness,
        "faithfulness_ci_95": list(small.faithfulness_ci or ()),
    }


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation (average ranks for ties)."""

    def ranks(x: torch.Tensor) -> torch.Tensor:
        order = x.argsort()
        r = torch.empty_like(x)
        r[order] = torch.arange(len(x), dtype=x.dtype)
        for value in x.unique():  # ties share their mean rank
            tied = x == value
            r[tied] = r[tied].mean()
        return r

    return torch.corrcoef(torch.stack([ranks(a), ranks(b)]))[0, 1].item()


def bench_atp_nodes(model, task) -> dict:
    """AtP variants at node level against exact node patching (see module docstring)."""
    start = time.perf_counter()
    exact = node_patching_reference(model, task).set_index("node").score
    exact_s = time.perf_counter() - start
    target = torch.tensor(exact.to_numpy()).abs()
    rows = {}
    for label, (qk_fix, grad_drop) in ATP_VARIANTS.items():
        start = time.perf_counter()
        est = atp_star_nodes(model, task, qk_fix=qk_fix, grad_drop=grad_drop).set_index("node")
        values = torch.tensor(est.score.loc[exact.index].to_numpy()).abs()
        rows[label] = {
            "runtime_s": time.perf_counter() - start,
            "spearman_abs_vs_exact": _spearman(values, target),
            "sum_abs_error": (values - target).abs().sum().item(),
            "top5_overlap": len(
                set(values.topk(5).indices.tolist()) & set(target.topk(5).indices.tolist())
            )
            / 5,
        }
    return {
        "n_nodes": len(exact),
        "exact_runtime_s": exact_s,
        "exact": {k: float(v) for k, v in exact.items()},
        "variants": rows,
    }


def _speedup(model, task, repeats: int) -> dict:
    """Best-of-`repeats` wall times of exhaustive patching and EAP-IG (5 steps), interleaved,
    so a busy shared machine slows both alike."""
    exhaustive, ig = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        circuits.exhaustive_patching(model, task)
        exhaustive.append(time.perf_counter() - start)
        start = time.perf_counter()
        circuits.eap_ig(model, task, ig_steps=5)
        ig.append(time.perf_counter() - start)
    return {
        "exhaustive_s": min(exhaustive),
        "eap_ig_s": min(ig),
        "speedup": min(exhaustive) / min(ig),
        "repeats": repeats,
    }


def bench_case(name: str, task_name: str, n: int, repeats: int = 3) -> dict:
    began = time.perf_counter()
    model = load_model(name)
    task = make_task(task_name, model, n=n)
    summary = task.summary(model)
    truth = circuits.exhaustive_patching(model, task)
    reference = circuits.reference_circuit(truth, gap=summary["gap"], share=0.01)
    references = {s: circuits.reference_circuit(truth, gap=summary["gap"], share=s) for s in SHARES}
    rows = {
        "exhaustive": {
            "runtime_s": truth.config["runtime_s"],
            "n_forward": truth.config["n_forward"],
            "n_backward": 0,
            "auc": circuits.roc(truth, reference).auc,
            "faithfulness_top10pct_connected": _faithfulness_at(model, task, truth, 0.1),
            "faithfulness_top20pct_connected": _faithfulness_at(model, task, truth, 0.2),
            "smallest_connected_at_0.8": _smallest(model, task, truth),
        }
    }
    for method, options in METHODS:
        label = method + "".join(f" {k}={v}" for k, v in options.items())
        start = time.perf_counter()
        circuit = circuits.trace(model, task, method=method, **options)
        wall = time.perf_counter() - start
        row = {
            "runtime_s": wall,
            "n_forward": circuit.config["n_forward"],
            "n_backward": circuit.config["n_backward"],
            "auc": circuits.roc(circuit, reference).auc,
            "auc_by_reference_share": {
                str(s): circuits.roc(circuit, ref).auc for s, ref in references.items()
            },
            "pearson_vs_exact": torch.corrcoef(torch.stack([circuit.scores, truth.scores]))[
                0, 1
            ].item(),
            "faithfulness_top10pct_connected": _faithfulness_at(model, task, circuit, 0.1),
            "faithfulness_top20pct_connected": _faithfulness_at(model, task, circuit, 0.2),
            "smallest_connected_at_0.8": _smallest(model, task, circuit),
        }
        if method == "acdc":
            row["acdc_edges"] = circuit.n_edges
            row["acdc_edge_share"] = circuit.n_edges / len(circuit.edges)
            row["acdc_faithfulness"] = circuits.faithfulness(model, task, circuit).faithfulness
        rows[label] = row
    ig = rows["eap-ig ig_steps=5"]
    timing = _speedup(model, task, repeats)
    best20 = max(
        [r["faithfulness_top20pct_connected"] for r in rows.values()]
        + [r["acdc_faithfulness"] for r in rows.values() if r.get("acdc_edge_share", 1) <= 0.2]
    )
    return {
        "model": name,
        "task": task_name,
        "n_prompts": n,
        "n_edges": len(truth.edges),
        "reference_edges": reference.n_edges,
        "reference_edges_by_share": {str(s): ref.n_edges for s, ref in references.items()},
        "clean_metric": summary["clean"],
        "corrupted_metric": summary["corrupted"],
        "methods": rows,
        "atp_star_nodes": bench_atp_nodes(model, task),
        "wall_s": time.perf_counter() - began,
        "targets": {
            "eap_ig_auc_at_least_0.9": ig["auc"] >= 0.9,
            "speedup_timing": timing,
            "eap_ig_at_least_20x_faster": timing["speedup"] >= 20,
            "best_faithfulness_with_20pct_edges": best20,
            "20pct_edges_recover_80pct": best20 >= 0.8,
        },
    }


def bench_scaling(n: int, sample: int, seed: int = 0) -> dict:
    """EAP-IG vs exhaustive patching on a larger graph (MiniLM, 7,588 edges, similarity task):
    exhaustive time extrapolated from path patching `sample` random edges (cost is linear in
    the number of edges: one forward pass each)."""
    model = load_model("minilm")
    task = make_task("similarity", model, n=n)
    graph = circuits.build_graph(model, readout=task.readout)
    gen = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(graph.n_edges, generator=gen)[:sample].tolist()
    start = time.perf_counter()
    circuits.path_patching(model, task, edges=[graph.edge_labels[i] for i in chosen])
    per_edge = (time.perf_counter() - start) / sample
    start = time.perf_counter()
    circuits.eap_ig(model, task, ig_steps=5)
    ig = time.perf_counter() - start
    return {
        "model": "minilm",
        "task": "similarity",
        "n_prompts": n,
        "n_edges": graph.n_edges,
        "sampled_edges": sample,
        "exhaustive_s_extrapolated": per_edge * graph.n_edges,
        "eap_ig_s": ig,
        "speedup_extrapolated": per_edge * graph.n_edges / ig,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 prompts per task, no file")
    parser.add_argument("--n-ioi", type=int, default=64, help="tiny-ioi prompts")
    parser.add_argument("--n-induction", type=int, default=32, help="tiny-induction prompts")
    parser.add_argument("--repeats", type=int, default=3, help="speedup timing repeats")
    parser.add_argument("--scaling-n", type=int, default=16, help="MiniLM prompts")
    parser.add_argument("--scaling-sample", type=int, default=100, help="MiniLM sampled edges")
    parser.add_argument(
        "--parts", nargs="*", default=["tiny-ioi", "tiny-induction", "scaling"], help="what to run"
    )
    parser.add_argument("--out", type=Path, help="write here instead (a partial run)")
    parser.add_argument("--merge", type=Path, nargs="*", help="merge partial runs, run none")
    args = parser.parse_args()
    if args.merge:
        parts = [json.loads(path.read_text()) for path in args.merge]
        results = {
            "torch_threads": parts[0]["torch_threads"],
            "config": [p["config"] for p in parts],
            "cases": [c for p in parts for c in p["cases"]],
            "scaling": next((p["scaling"] for p in parts if p.get("scaling")), None),
            "wall_s": [p["wall_s"] for p in parts],
        }
        text = json.dumps(results, indent=2)
        (args.out or ROOT / "benchmarks" / "results" / "circuits.json").write_text(text + "\n")
        print(text)
        return
    torch.set_num_threads(1)
    began = time.perf_counter()
    sizes = {"tiny-ioi": args.n_ioi, "tiny-induction": args.n_induction}
    if args.quick:
        sizes = dict.fromkeys(sizes, 8)
        args.repeats, args.scaling_n, args.scaling_sample = 1, 8, 20
    config = {
        "prompts": sizes,
        "speedup_repeats": args.repeats,
        "scaling_prompts": args.scaling_n,
        "scaling_sampled_edges": args.scaling_sample,
        "quick": args.quick,
        "parts": args.parts,
    }
    results = {
        "torch_threads": torch.get_num_threads(),
        "config": config,
        "cases": [
            bench_case(name, t, sizes[name], repeats=args.repeats)
            for name, t, _ in CASES
            if name in args.parts
        ],
        "scaling": bench_scaling(n=args.scaling_n, sample=args.scaling_sample)
        if "scaling" in args.parts
        else None,
    }
    results["wall_s"] = time.perf_counter() - began
    text = json.dumps(results, indent=2)
    print(text)
    if not args.quick:
        out = args.out or ROOT / "benchmarks" / "results" / "circuits.json"
        out.write_text(text + "\n")


if __name__ == "__main__":
    main()
