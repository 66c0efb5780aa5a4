"""`Circuit`: scored edges of a model's computational graph, and the subset kept.

Every tracing method returns one. `scores[e]` is the method's estimate of what happens to the
task metric when edge `edges[e]` is patched to its corrupted value (negative = the edge
carries the behaviour; ranking uses the magnitude). `included[e]` marks the edges in the
circuit (all of them until `prune` is called). Node-level methods fill `node_scores` (and
`position_scores` `[node, pos]` for per-position patching) and give each edge a derived score
(see `circuits.patching`).

Caveats: `prune` ranks by `|score|`; ties keep the fixed edge order of `circuits.graph`. By
default it prunes to a connected circuit (greedy from the output, `circuits.connected`).
`plot()` draws only the included edges, laid out by layer (arcs for edges that skip columns).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd
import torch

from circuits.connected import greedy_from_output
from circuits.graph import Graph, modern_label, parse_node
from workbench.results import Result


def _layer_of(node: str) -> float:
    """x coordinate of a node in the layered plot."""
    if node == "input":
        return 0.0
    if node == "output":
        return float("inf")
    parsed = parse_node(node)
    return 1.0 + 2 * parsed.layer + (1 if parsed.kind == "mlp" else 0)


@dataclass(frozen=True, eq=False)
class Circuit(Result):
    """Edges, their scores and the kept subset (see module docstring).

    `model_name` was `model` before; circuit JSON written then still loads.
    """

    kind: ClassVar[str] = "circuit"
    plot_kinds: ClassVar[tuple[str, ...]] = ("graph",)

    model_name: str
    task: str
    method: str
    edges: tuple[str, ...]  # "upstream->port" labels, e.g. "L0H1->L1H3<k>"
    scores: torch.Tensor  # [edge] float64
    included: torch.Tensor  # [edge] bool
    nodes: tuple[str, ...] = ()  # every node of the graph
    node_scores: torch.Tensor | None = None  # [node] for node-level methods
    position_scores: torch.Tensor | None = None  # [node, pos] for per-position patching
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def _stored_fields(cls, fields: dict[str, Any]) -> dict[str, Any]:
        """Circuit JSON from before the renames stores the model as `model` and names nodes
        `a{L}.{h}` / `m{L}`: both are brought to today's names."""
        if "model" in fields and "model_name" not in fields:
            fields = {("model_name" if k == "model" else k): v for k, v in fields.items()}
        for key in ("edges", "nodes"):
            if key in fields and fields[key] is not None:
                fields[key] = tuple(modern_label(label) for label in fields[key])
        return fields

    def __post_init__(self) -> None:
        n = len(self.edges)
        if self.scores.shape != (n,):
            raise ValueError(f"scores: shape {tuple(self.scores.shape)} != ({n},) edges")
        if self.included.shape != (n,) or self.included.dtype != torch.bool:
            raise ValueError(f"included: need a bool tensor of shape ({n},)")

    @classmethod
    def from_scores(
        cls, graph: Graph, *, task: str, method: str, scores: torch.Tensor, **extra: Any
    ) -> Circuit:
        """A circuit over every edge of `graph` with `scores` `[edge]` (all edges included)."""
        return cls(
            model_name=graph.model_name,
            task=task,
            method=method,
            edges=graph.edge_labels,
            scores=scores.detach().double().cpu(),
            included=torch.ones(graph.n_edges, dtype=torch.bool),
            nodes=graph.nodes,
            **extra,
        )

    # ------------------------------------------------------------------ views
    @property
    def n_edges(self) -> int:
        """Number of edges in the circuit (the included ones)."""
        return int(self.included.sum())

    @property
    def kept_edges(self) -> list[str]:
        """Labels of the included edges, in graph order."""
        return [e for e, keep in zip(self.edges, self.included.tolist(), strict=True) if keep]

    @property
    def kept_nodes(self) -> list[str]:
        """Nodes touched by an included edge (ports map to their node; kv ports to `L{L}H{g}`)."""
        seen: dict[str, None] = {}
        for label in self.kept_edges:
            upstream, port = label.split("->")
            seen.setdefault(upstream)
            seen.setdefault(port.split("<")[0])
        return list(seen)

    def ranking(self) -> torch.Tensor:
        """Edge indices, most important first (by |score|, stable)."""
        return torch.sort(self.scores.abs(), descending=True, stable=True).indices

    # ------------------------------------------------------------------ pruning
    def prune(
        self,
        top_n: int | None = None,
        threshold: float | None = None,
        *,
        connected: bool = True,
    ) -> Circuit:
        """A copy keeping `top_n` edges, or the edges with |score| >= `threshold`.

        `connected=True` (default) grows the circuit greedily from the output and keeps only
        edges on an input -> output path (`circuits.connected`), so a top-n circuit may hold
        fewer than n edges; `connected=False` keeps the plain top-n / threshold set.
        """
        if (top_n is None) == (threshold is None):
            raise ValueError("prune: give exactly one of top_n or threshold")
        if top_n is not None:
            if not 0 <= top_n <= len(self.edges):
                raise ValueError(f"top_n: {top_n} is outside 0..{len(self.edges)}")
            keep = torch.zeros(len(self.edges), dtype=torch.bool)
            keep[self.ranking()[:top_n]] = True
        else:
            if threshold < 0:
                raise ValueError(f"threshold: must be >= 0, got {threshold}")
            keep = self.scores.abs() >= threshold
        if connected:
            keep = greedy_from_output(self.edges, self.scores, top_n=top_n, threshold=threshold)
        pruned = {"top_n": top_n, "threshold": threshold, "connected": connected}
        config = {**self.config, "pruned": pruned}
        return dataclasses.replace(self, included=keep, config=config)

    # ------------------------------------------------------------------ tables and plots
    def to_frame(self) -> pd.DataFrame:
        """One row per edge: edge, upstream, port, downstream, score, abs_score, rank,
        in_circuit."""
        upstream, port = zip(*(e.split("->") for e in self.edges), strict=True)
        rank = torch.empty(len(self.edges), dtype=torch.long)
        rank[self.ranking()] = torch.arange(len(self.edges))
        return pd.DataFrame(
            {
                "edge": list(self.edges),
                "upstream": list(upstream),
                "port": list(port),
                "downstream": [p.split("<")[0] for p in port],
                "score": self.scores.double().numpy(),
                "abs_score": self.scores.double().abs().numpy(),
                "rank": rank.numpy(),
                "in_circuit": self.included.numpy(),
            }
        )

    def plot(self, kind: str | None = None, **kwargs: Any):
        """Layered graph of the included edges (line width ~ |score|; red: score < 0).

        One column per graph stage (input, each layer's heads, its MLP, output), heads in
        index order top to bottom; labels sit in boxes above their node, edges that skip
        columns are drawn as arcs, and hovering an edge (drawn through its midpoint, since a
        line hovers only at its points) shows its full label and score. The default height
        grows with the tallest column (`kwargs` override it).
        """
        import plotly.graph_objects as go

        if kind not in (None, "graph"):
            raise ValueError(f"kind: unknown plot kind {kind!r}; choose 'graph'")
        frame = self.to_frame()
        frame = frame[frame.in_circuit]
        pos = _node_positions(set(frame.upstream) | set(frame.downstream))
        biggest = float(frame.abs_score.max()) if len(frame) else 1.0
        fig = go.Figure()
        for row in frame.itertuples():
            xs, ys = _edge_path(pos[row.upstream], pos[row.downstream])
            text = f"{row.edge}<br>score {row.score:.4g} (rank {row.rank})"
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    line={
                        "width": 0.5 + 5 * row.abs_score / (biggest or 1.0),
                        "color": "crimson" if row.score < 0 else "steelblue",
                    },
                    opacity=0.8,
                    hovertext=text,
                    hoverinfo="text",
                    showlegend=False,
                )
            )
        nodes = list(pos)
        degree = {n: 0 for n in nodes}
        mass = {n: 0.0 for n in nodes}
        for row in frame.itertuples():
            for n in (row.upstream, row.downstream):
                degree[n] += 1
                mass[n] += row.abs_score
        fig.add_trace(
            go.Scatter(
                x=[pos[n][0] for n in nodes],
                y=[pos[n][1] for n in nodes],
                mode="markers",
                marker={"size": 11, "color": "black"},
                hovertext=[f"{n}<br>{degree[n]} edges, sum |score| {mass[n]:.4g}" for n in nodes],
                hoverinfo="text",
                showlegend=False,
            )
        )
        for n in nodes:
            fig.add_annotation(
                x=pos[n][0],
                y=pos[n][1],
                text=n,
                showarrow=False,
                yshift=15,
                bgcolor="rgba(255,255,255,0.85)",
                font={"size": 11},
            )
        tallest = max(Counter(x for x, _ in pos.values()).values(), default=1)
        fig.update_layout(
            title=f"{self.method} circuit of {self.model_name} on {self.task} ({self.n_edges} edges)",
            xaxis={"visible": False},
            yaxis={"visible": False},
            height=min(1400, max(380, 150 + 55 * tallest)),
            margin={"t": 60, "l": 20, "r": 20, "b": 40},
            plot_bgcolor="white",
            hovermode="closest",
            **kwargs,
        )
        return fig


def _node_order(node: str) -> tuple[float, int]:
    """Column, then head index (heads top to bottom within a layer)."""
    parsed = parse_node(node)
    return (_layer_of(node), max(parsed.head, 0))


def _node_positions(nodes: set[str]) -> dict[str, tuple[float, float]]:
    """(x, y) per node: evenly spaced columns, each column centred on y = 0, head 0 on top."""
    ordered = sorted(nodes, key=_node_order)
    columns: dict[float, list[str]] = {}
    for n in ordered:
        columns.setdefault(_layer_of(n), []).append(n)
    return {
        n: (float(x), (len(col) - 1) / 2 - i)
        for x, col in enumerate(columns[key] for key in sorted(columns))
        for i, n in enumerate(col)
    }


def _edge_path(start: tuple[float, float], end: tuple[float, float], n: int = 17):
    """Points of an edge: straight between adjacent columns, an arc (quadratic Bezier bowing
    away from the centre line) when it skips columns, so it misses the nodes in between."""
    (x0, y0), (x1, y1) = start, end
    skipped = max(0.0, abs(x1 - x0) - 1)
    if not skipped:  # the midpoint too: a line trace only hovers at its points
        return [x0, (x0 + x1) / 2, x1], [y0, (y0 + y1) / 2, y1]
    side = 1.0 if (y0 + y1) >= 0 else -1.0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + side * (0.6 + 0.25 * skipped)
    ts = [i / (n - 1) for i in range(n)]
    xs = [(1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t**2 * x1 for t in ts]
    ys = [(1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t**2 * y1 for t in ts]
    return xs, ys
