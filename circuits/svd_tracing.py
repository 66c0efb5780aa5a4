"""SVD-based tracing: follow the sparse attention decomposition upstream from the answer.

1. Score every `node -> output` edge exactly (single-edge path patching); the heads whose
   direct effect is at least `start_share` of the largest are the answer heads.
2. For each traced head (latest layer first), on `n_prompts` clean prompts at the query
   positions the metric reads (IOI: the answer position; induction: `n_queries` positions of
   the second copy) and the key each query attends to most, decompose the attention score into
   its SVD terms (`analysis.decompose_score`, the fewest terms reaching `share` of it) and
   attribute the selected terms to upstream sources (`analysis.upstream_contributions`).
3. Each source's mean share of the selected score, times the head's importance, scores the
   edge `source -> head<q>` (query side) or `source -> head<k>` (key side; the kv head under
   GQA). Upstream heads whose share is at least `follow_share` join the trace with that
   importance, recursively down to layer 0.

Scores follow the `Circuit` sign convention (negative = carries the behaviour).

Caveats: the decomposition explains *where a head attends* (q and k ports); value ports get no
score (0), so they are never selected by this method. Bias sources (`b_Q`/`b_K`, norm biases)
are not graph nodes and are dropped. Only heads are expanded upstream (an MLP source is scored
but not traced through, having no attention to decompose). Needs the head-anatomy module
`analysis.anatomy.score_decomposition`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from analysis.anatomy.score_decomposition import decompose_score, upstream_contributions
from circuits.circuit import Circuit
from circuits.graph import OUTPUT, build_graph
from circuits.patching import path_patching
from circuits.task_batches import task_slice

if TYPE_CHECKING:
    from workbench.model import Model
    from workbench.tasks import Task


def _query_positions(task: Task, prompt: int, n_queries: int) -> list[int]:
    if hasattr(task, "answer_pos"):
        return [int(task.answer_pos[prompt])]
    if hasattr(task, "positions"):
        pos = task.positions()
        idx = torch.linspace(0, len(pos) - 1, n_queries).round().long().unique()
        return [int(p) for p in pos[idx]]
    if hasattr(task, "pool_mask"):  # encoder tasks: the last real token
        return [int(task.pool_mask[prompt].nonzero().max())]
    return [int(task.clean_tokens.shape[1] - 1)]


def _source_node(row) -> str | None:
    if row.kind == "embed":
        return "input"
    if row.kind == "head":
        return f"a{row.source_layer}.{row.source_head}"
    if row.kind == "mlp":
        return f"m{row.source_layer}"
    return None  # biases are not graph nodes


def _head_shares(model: Model, task: Task, layer: int, head: int, *, n_prompts, n_queries, share):
    """Mean share of the selected score per (side, source node) for one head."""
    totals: dict[tuple[str, str], float] = defaultdict(float)
    count = 0
    for i in range(min(n_prompts, task.n_prompts)):
        queries = _query_positions(task, i, n_queries)
        tokens = task.clean_tokens[i : i + 1, : max(queries) + 1]  # [1, pos]
        name = f"blocks.{layer}.attn.hook_pattern"
        _, cache = model.run_with_cache(tokens, names=[name])
        for query in queries:
            key = int(cache[name][0, head, query].argmax())
            d = decompose_score(model, tokens, layer, head, query, key, share=share)
            up = upstream_contributions(model, d)
            if abs(up.selected_score) < 1e-9:
                continue
            for row in up.to_frame().itertuples():
                node = _source_node(row)
                if node is not None:
                    totals[(row.side, node)] += row.contribution / up.selected_score
            count += 1
    return {k: v / max(count, 1) for k, v in totals.items()}


def svd_tracing(
    model: Model,
    task: Task,
    *,
    n_prompts: int = 4,
    n_queries: int = 3,
    share: float = 0.7,
    start_share: float = 0.2,
    follow_share: float = 0.1,
    progress: bool = False,
    seed: int = 0,
) -> Circuit:
    """Trace upstream from the answer heads through SVD-selected components (see docstring)."""
    if not 0 < share <= 1:
        raise ValueError(f"share: need 0 < share <= 1, got {share}")
    torch.manual_seed(seed)
    start = time.perf_counter()
    graph = build_graph(model, readout=task.readout)
    direct = path_patching(
        model, task, edges=[f"{u}->{OUTPUT}" for u in graph.writers], progress=progress
    )
    scores = direct.scores.clone()
    heads = [n for n in graph.writers if n.startswith("a")]
    effect = {n: abs(float(direct.scores[graph.edge_index[f"{n}->{OUTPUT}"]])) for n in heads}
    biggest = max(effect.values())
    importance = {n: e for n, e in effect.items() if e >= start_share * biggest}
    group = graph.n_heads // graph.n_kv_heads
    sub = task_slice(task, 0, min(n_prompts, task.n_prompts))
    traced = []
    bar = tqdm(disable=not progress, desc="SVD tracing")
    for layer in reversed(range(graph.n_layers)):
        for h in range(graph.n_heads):
            node = f"a{layer}.{h}"
            if node not in importance:
                continue
            traced.append(node)
            shares = _head_shares(
                model, sub, layer, h, n_prompts=n_prompts, n_queries=n_queries, share=share
            )
            for (side, source), value in shares.items():
                port = f"a{layer}.{h}<q>" if side == "query" else f"a{layer}.{h // group}<k>"
                scores[graph.edge_index[f"{source}->{port}"]] -= importance[node] * value
                if source.startswith("a") and abs(value) >= follow_share:
                    gain = importance[node] * abs(value)
                    importance[source] = max(importance.get(source, 0.0), gain)
            bar.update(1)
    bar.close()
    return Circuit.from_scores(
        graph,
        task=task.name,
        method="svd",
        scores=scores,
        config={
            "n_prompts": n_prompts,
            "n_queries": n_queries,
            "share": share,
            "start_share": start_share,
            "follow_share": follow_share,
            "traced_heads": traced,
            "seed": seed,
            "runtime_s": time.perf_counter() - start,
            "n_forward": direct.config["n_forward"],
            "n_backward": 0,
        },
    )
