"""`Circuit`: scored edges of a model's computational graph, and the subset kept.

Every tracing method returns one. `scores[e]` is the method's estimate of what happens to the
task metric when edge `edges[e]` is patched to its corrupted value (negative = the edge
carries the behaviour; ranking uses the magnitude). `included[e]` marks the edges in the
circuit (all of them until `prune` is called). Node-level methods fill `node_scores` (and
`position_scores` `[node, pos]` for per-position patching) and give each edge a derived score
(see `circuits.patching`).

Caveats: `prune` ranks by `|score|`; ties keep the fixed edge order of `circuits.graph`. By
default it prunes to a connected circuit (greedy from the output, `circuits.connected`).
`plot()` draws only the included edges, laid out by layer (`circuits.circuit_plot`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd
import torch

from circuits.connected import greedy_from_output
from circuits.graph import Graph, modern_label
from workbench.results import Result


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
        """Layered graph of the included edges (see `circuits.circuit_plot`): colour = sign
        (legend), width ~ |score|, q/k/v edges land on three anchors of their head with
        solid/dashed/dotted lines; node points carry their node name in `customdata` (a page
        turns a click into a link)."""
        from circuits.circuit_plot import circuit_figure

        if kind not in (None, "graph"):
            raise ValueError(f"kind: unknown plot kind {kind!r}; choose 'graph'")
        return circuit_figure(self, **kwargs)
