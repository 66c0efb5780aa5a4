"""Connected pruning: keep only edges that lie on an input -> output path.

`greedy_from_output(edges, scores, top_n=..., threshold=...)` grows a circuit from the readout
the way the EAP-IG authors' `apply_greedy` does: start with `output` in the circuit and
repeatedly add the highest-|score| edge whose downstream node is already in it (its upstream
node joins the circuit and the edges into it become candidates), until `top_n` edges are added
or no candidate reaches `threshold`. `on_paths(edges, keep)` then drops dead ends on either
side: edges whose upstream node is not reached from `input`, or whose downstream node does not
reach `output`, through kept edges (what their `prune` does, node by node). One difference
from `apply_greedy` + `prune`, which can end far below n (EAP's greedy top 22 on tiny-ioi holds
no edge from `input`, so nothing survives): with `top_n` the growth goes on until `top_n`
edges lie on a path, skipping any edge that would push that count past `top_n`.

Nodes: a port belongs to the nodes that read it - `L{L}H{h}<q>` to head h, `MLP{L}` and `output`
to themselves, and a key/value port `L{L}H{g}<k|v>` to every query head of kv group g
(grouped-query attention), so a head counts as "in the circuit" when any port it reads is.

Caveats: greedy, so a top-n circuit holds at most n edges (fewer when the candidates run out
or only overshooting edges are left) and is not the best-scoring connected set of n edges;
ties in |score| break by the fixed edge order of `circuits.graph`.
"""

from __future__ import annotations

import heapq
from collections import defaultdict

import torch

from circuits.graph import head_node, parse_node

INPUT = "input"
OUTPUT = "output"


def port_readers(edges: tuple[str, ...] | list[str]) -> dict[str, tuple[str, ...]]:
    """Port name -> the nodes that read it, derived from the edge labels alone."""
    ports = list(dict.fromkeys(label.split("->")[1] for label in edges))
    counts: dict[tuple[int, str], int] = defaultdict(int)  # (layer, kind) -> ports
    for port in ports:
        if "<" in port:
            counts[(parse_node(port).layer, port[-2])] += 1
    readers = {}
    for port in ports:
        if "<" not in port:
            readers[port] = (port,)
            continue
        node, kind = port.split("<")[0], port[-2]
        if kind == "q":
            readers[port] = (node,)
            continue
        parsed = parse_node(node)
        group = max(1, counts[(parsed.layer, "q")] // max(1, counts[(parsed.layer, kind)]))
        readers[port] = tuple(
            head_node(parsed.layer, parsed.head * group + i) for i in range(group)
        )
    return readers


def _split(edges) -> list[tuple[str, str]]:
    return [tuple(label.split("->")) for label in edges]


def _on_paths(pairs, readers, kept: list[int]) -> tuple[list[int], set[str]]:
    """The kept edge indices on an input -> output path, and the nodes reached from input."""
    reached = {INPUT}  # nodes an input path reaches through kept edges
    changed = True
    while changed:
        changed = False
        for i in kept:
            upstream, port = pairs[i]
            if upstream in reached and not reached.issuperset(readers[port]):
                reached.update(readers[port])
                changed = True
    reaching = {OUTPUT}  # nodes with a kept path to the output
    changed = True
    while changed:
        changed = False
        for i in kept:
            upstream, port = pairs[i]
            if upstream not in reaching and reaching.intersection(readers[port]):
                reaching.add(upstream)
                changed = True
    alive = [
        i for i in kept if pairs[i][0] in reached and reaching.intersection(readers[pairs[i][1]])
    ]
    return alive, reached


def on_paths(edges: tuple[str, ...] | list[str], keep: torch.Tensor) -> torch.Tensor:
    """`keep` `[edge]` bool without the edges that lie on no input -> output path."""
    kept = [i for i, flag in enumerate(keep.tolist()) if flag]
    alive, _ = _on_paths(_split(edges), port_readers(edges), kept)
    out = torch.zeros(len(edges), dtype=torch.bool)
    out[alive] = True
    return out


def greedy_from_output(
    edges: tuple[str, ...] | list[str],
    scores: torch.Tensor,
    *,
    top_n: int | None = None,
    threshold: float | None = None,
) -> torch.Tensor:
    """Edges `[edge]` bool grown greedily from the output and cut to input -> output paths.

    With `top_n`, growth goes on until `top_n` edges lie on a path; an edge that would push
    that count past `top_n` is skipped. With `threshold`, it stops when no candidate edge has
    |score| >= threshold. See the module docstring.
    """
    pairs, readers = _split(edges), port_readers(edges)
    into: dict[str, list[int]] = defaultdict(list)  # node -> edges into a port it reads
    for i, (_, port) in enumerate(pairs):
        for node in readers[port]:
            into[node].append(i)
    magnitude = scores.double().abs().tolist()
    heap: list[tuple[float, int]] = []
    queued: set[int] = set()
    members: set[str] = set()

    def join(node: str) -> None:
        members.add(node)
        for i in into[node]:
            if i not in queued:
                queued.add(i)
                heapq.heappush(heap, (-magnitude[i], i))

    join(OUTPUT)
    kept: list[int] = []
    alive: list[int] = []
    reached = {INPUT}
    while heap and (top_n is None or len(alive) < top_n):
        negative, i = heap[0]
        if threshold is not None and -negative < threshold:
            break
        heapq.heappop(heap)
        upstream = pairs[i][0]
        if top_n is not None and upstream in reached:  # may put new edges on a path
            grown, grown_reached = _on_paths(pairs, readers, [*kept, i])
            if len(grown) > top_n:
                continue
            alive, reached = grown, grown_reached
        kept.append(i)
        if upstream not in members:
            join(upstream)
    if top_n is None:
        alive, _ = _on_paths(pairs, readers, kept)
    out = torch.zeros(len(edges), dtype=torch.bool)
    out[alive] = True
    return out


__all__ = ["greedy_from_output", "on_paths", "port_readers"]
