"""Activation patching (per node, per node and position) and path patching (per edge).

Both measure, on the clean prompts, how the task metric moves when a component is replaced
("noising"): the score is `mean metric(patched) - mean metric(clean)`, so components that
carry the behaviour get negative scores on tasks whose clean metric is higher.

- `activation_patching`: replace one node's output - a head's `hook_z` slice, an MLP's output,
  the embeddings - with a `resample` (the paired corrupted prompt's activation), `mean` (the
  mean over all corrupted prompts, per position) or `zero` ablation; optionally one position at
  a time. Works on any bridge model, encoders included (it never needs the additive residual).
  Edges get the derived score `sign(s_u) * sqrt(|s_u| * |s_v|)` from their two nodes' scores
  (the readout node's score is the full clean->corrupted effect), so node-level methods can be
  ranked against edge references.
- `path_patching`: patch one edge at a time (the port sees the upstream node's corrupted
  output, everything else recomputed) with `circuits.edge_patching.EdgePatcher`. Over every
  edge this is the exhaustive ground truth of `circuits.ground_truth`. The edges are cut into
  shards (`edges_per_shard`) that run on an executor (`workbench.executors`: in process by
  default, or Ray); each shard sums its edges' effects over all prompts in the same batch
  order, so any sharding and any executor give bit-identical scores on like hardware. Each
  shard recomputes the clean and corrupted base runs (2 extra passes per batch and shard).

Parallel attention/MLP blocks (GPT-NeoX/Pythia, GPT-J, Falcon): both methods run; the graph
has no `L{L}H{h} -> MLP{L}` edges there (`circuits.graph`), and path patching feeds an MLP's
patched input through that MLP's own norm (`circuits.edge_patching`).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch
from tqdm.auto import tqdm

from circuits.circuit import Circuit
from circuits.edge_patching import EdgePatcher
from circuits.graph import INPUT, build_graph, parse_node
from circuits.pass_counter import PassCounter
from circuits.task_batches import task_batches, task_digest
from workbench.executors import (
    Executor,
    Shard,
    as_store,
    make_shards,
    open_sharded_run,
    run_sharded,
)

if TYPE_CHECKING:
    from workbench.model import Model
    from workbench.store import RunStore
    from workbench.tasks import Task

ABLATIONS = ("resample", "mean", "zero")


def _node_hook(node: str) -> tuple[str, int | None]:
    """(hook name, head index or None) holding `node`'s output."""
    if node == INPUT:
        return "blocks.0.hook_resid_pre", None
    parsed = parse_node(node)
    if parsed.kind == "head":
        return f"blocks.{parsed.layer}.attn.hook_z", parsed.head
    return f"blocks.{parsed.layer}.mlp.hook_out", None


def _replace_hook(source: torch.Tensor, head: int | None, position: int | None):
    """Hook writing `source` (same shape as the activation) into one head / position."""

    def hook(act, *, hook):
        act = act.clone()
        pos = slice(None) if position is None else position
        if head is None:
            act[:, pos] = source[:, pos]
        else:
            act[:, pos, head] = source[:, pos, head]
        return act

    return hook


@torch.no_grad()
def _sources(model: Model, task: Task, names: list[str], ablation: str, batch_size: int, counter):
    """Per-batch source activations for every hook in `names` under `ablation`."""
    per_batch = []
    for sub in task_batches(task, batch_size):
        _, cache = model.run_with_cache(sub.corrupted_tokens, names=names)
        counter.forward += 1
        per_batch.append({k: v.detach() for k, v in cache.items()})
    if ablation == "resample":
        return per_batch
    if ablation == "zero":
        return [{k: torch.zeros_like(v) for k, v in b.items()} for b in per_batch]
    means = {k: torch.cat([b[k] for b in per_batch]).mean(0, keepdim=True) for k in names}
    return [{k: means[k].expand_as(b[k]) for k in names} for b in per_batch]


def activation_patching(
    model: Model,
    task: Task,
    *,
    ablation: str = "resample",
    per_position: bool = False,
    batch_size: int = 64,
    progress: bool = False,
    seed: int = 0,
) -> Circuit:
    """Node (or node x position) activation patching; see module docstring."""
    if ablation not in ABLATIONS:
        raise ValueError(f"ablation: unknown ablation {ablation!r}; choose from {ABLATIONS}")
    torch.manual_seed(seed)
    start, counter = time.perf_counter(), PassCounter()
    graph = build_graph(model, readout=task.readout)
    writers = list(graph.writers)
    names = sorted({_node_hook(n)[0] for n in writers})
    sources = _sources(model, task, names, ablation, batch_size, counter)
    n_pos = task.clean_tokens.shape[1]
    positions: list[int | None] = list(range(n_pos)) if per_position else []
    sums = torch.zeros(len(writers), 1 + len(positions), dtype=torch.float64)
    clean_sum = corrupted_sum = 0.0
    bar = tqdm(total=task.n_prompts, disable=not progress, desc=f"activation patching ({ablation})")
    with torch.no_grad():
        for sub, source in zip(task_batches(task, batch_size), sources, strict=True):
            clean = sub.clean_tokens.to(model.device)
            base = sub.metric(sub.run(model, clean)).double().sum().item()
            corrupted = sub.metric(sub.run(model, sub.corrupted_tokens.to(model.device)))
            clean_sum += base
            corrupted_sum += corrupted.double().sum().item()
            counter.forward += 2
            for i, node in enumerate(writers):
                name, head = _node_hook(node)
                for j, position in enumerate([None, *positions]):
                    with model.intervene({name: _replace_hook(source[name], head, position)}):
                        value = sub.metric(sub.run(model, clean)).double().sum().item()
                    counter.forward += 1
                    sums[i, j] += value - base
            bar.update(sub.n_prompts)
    bar.close()
    effects = sums / task.n_prompts  # [writer, 1 + pos]
    node_scores = torch.cat(
        [effects[:, 0], torch.tensor([(corrupted_sum - clean_sum) / task.n_prompts])]
    )  # [node]
    index = {n: i for i, n in enumerate(graph.nodes)}
    edge_scores = torch.tensor(
        [
            torch.sign(node_scores[index[u]])
            * (node_scores[index[u]].abs() * node_scores[index[graph.port_node(p)]].abs()).sqrt()
            if graph.port_node(p) in index
            else node_scores[index[u]]
            for u, p in graph.edges
        ],
        dtype=torch.float64,
    )
    return Circuit.from_scores(
        graph,
        task=task.name,
        method=f"activation-{ablation}" + ("-position" if per_position else ""),
        scores=edge_scores,
        node_scores=node_scores,
        position_scores=effects[:, 1:].clone() if per_position else None,
        config={
            "ablation": ablation,
            "per_position": per_position,
            "batch_size": batch_size,
            "seed": seed,
            "runtime_s": time.perf_counter() - start,
            **counter.as_dict(),
        },
    )


def path_patching(
    model: Model,
    task: Task,
    *,
    edges: list[str] | None = None,
    batch_size: int = 64,
    progress: bool = False,
    seed: int = 0,
    method: str = "path",
    executor: str | Executor | None = "inprocess",
    address: str | None = None,
    edges_per_shard: int | None = None,
    store: RunStore | str | Path | None = None,
) -> Circuit:
    """Patch each edge alone (all edges, or the labels in `edges`); score = metric change.

    executor: "inprocess" (default), "ray", or an `Executor`; the edges are cut into shards of
        `edges_per_shard` (default: one shard of every edge) and each shard patches its edges
        over all prompts, so the scores do not depend on the sharding or the executor.
    address: Ray cluster address for executor="ray" (default `RAY_ADDRESS`, else local Ray).
    store: a `RunStore` or folder: store the run as a sharded, resumable run (kind "circuit").
    """
    start = time.perf_counter()
    graph = build_graph(model, readout=task.readout)
    EdgePatcher(model, graph)  # refuses models without edge interventions before any shard runs
    if edges is None:
        chosen = list(range(graph.n_edges))
    else:
        unknown = [e for e in edges if e not in graph.edge_index]
        if unknown:
            raise ValueError(f"edges: unknown edge label(s) {unknown[:3]} for {model.name}")
        chosen = [graph.edge_index[e] for e in edges]
    if not chosen:
        raise ValueError("edges: no edge to patch (empty list)")
    run_config = {
        "model": model.name,
        "task": task.name,
        "task_digest": task_digest(task),
        "method": method,
        "batch_size": batch_size,
        "edges_per_shard": edges_per_shard,
        "edges": chosen,
    }
    size = len(chosen) if edges_per_shard is None else edges_per_shard
    shards = make_shards(chosen, size=size, key=run_config)
    shard_fn = functools.partial(
        edge_effects, task=task, batch_size=batch_size, progress=progress and len(shards) == 1
    )
    sharded = functools.partial(
        run_sharded,
        shard_fn,
        shards,
        model=model,
        executor=executor,
        address=address,
        progress=progress and len(shards) > 1,
        desc="path patching",
    )
    run_store = as_store(store)
    if run_store is None:
        return _path_circuit(
            graph, task, method, chosen, edges, sharded().frames, shards, batch_size, seed, start
        )
    with open_sharded_run(
        run_store, kind=Circuit.kind, model=model.name, config=run_config, shards=shards
    ) as run:
        circuit = _path_circuit(
            graph,
            task,
            method,
            chosen,
            edges,
            sharded(run=run).frames,
            shards,
            batch_size,
            seed,
            start,
        )
        circuit = dataclasses.replace(circuit, config={**circuit.config, "run_id": run.run_id})
        run.write_result(circuit)
    return circuit


def _path_circuit(graph, task, method, chosen, edges, frames, shards, batch_size, seed, start):
    """The circuit from the shard tables (edge, effect_sum) of `path_patching`."""
    effects = torch.zeros(graph.n_edges, dtype=torch.float64)  # [edge]
    table = pd.concat(frames, ignore_index=True)
    effects[torch.tensor(table["edge"].to_numpy())] = torch.tensor(table["effect_sum"].to_numpy())
    n_batches = -(-task.n_prompts // batch_size)
    counter = PassCounter(forward=n_batches * (2 * len(shards) + len(chosen)))
    included = torch.zeros(graph.n_edges, dtype=torch.bool)
    included[chosen] = True
    circuit = Circuit.from_scores(
        graph,
        task=task.name,
        method=method,
        scores=effects / task.n_prompts,
        config={
            "batch_size": batch_size,
            "seed": seed,
            "n_shards": len(shards),
            "runtime_s": time.perf_counter() - start,
            **counter.as_dict(),
        },
    )
    return circuit if edges is None else dataclasses.replace(circuit, included=included)


@torch.no_grad()
def edge_effects(
    model: Model, shard: Shard, *, task: Task, batch_size: int, progress: bool = False
) -> pd.DataFrame:
    """The shard function of `path_patching`: for each edge index in `shard.items`, the metric
    change of patching that edge alone, summed over every prompt (columns edge, effect_sum)."""
    graph = build_graph(model, readout=task.readout)
    patcher = EdgePatcher(model, graph)
    chosen = list(shard.items)
    sums = torch.zeros(len(chosen), dtype=torch.float64)  # [shard edge]
    bar = tqdm(total=task.n_prompts * len(chosen), disable=not progress, desc="path patching")
    for sub in task_batches(task, batch_size):
        clean = sub.clean_tokens.to(model.device)
        source = patcher.writer_outputs(sub.corrupted_tokens.to(model.device))
        base = sub.metric(sub.run(model, clean)).double().sum().item()
        for i, e in enumerate(chosen):
            weights = torch.zeros(graph.n_edges)
            weights[e] = 1.0
            value = sub.metric(patcher.forward(clean, weights, source)).double().sum().item()
            sums[i] += value - base
            bar.update(sub.n_prompts)
    bar.close()
    return pd.DataFrame({"edge": chosen, "effect_sum": sums.numpy()})
