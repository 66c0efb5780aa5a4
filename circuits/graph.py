"""The computational graph of a transformer, as ACDC and EAP define it.

Nodes are the components that write to the residual stream: `input` (token + position
embeddings), every attention head `a{layer}.{head}`, every MLP `m{layer}`, plus the readout
node `output` (the logits, or the task's `readout` activation). An edge runs from every node
that writes to the residual stream to every *input port* downstream of it:

- an attention head reads through three ports, `a{L}.{h}<q>`, `a{L}.{g}<k>`, `a{L}.{g}<v>`;
- an MLP reads through `m{L}` (its only port), the readout through `output`.

Grouped-query attention: query ports are per query head (`h` in `range(n_heads)`), key and
value ports are per *key/value head* (`g` in `range(n_key_value_heads)`), because that is where
the computation happens: one kv head's key/value input is shared by all query heads of its
group. With as many kv heads as heads (GPT-2, BERT) the indices coincide.

Edge labels are `"{upstream}->{port}"`, e.g. `"a0.1->a1.3<k>"`; the edge order is fixed (by
downstream layer, then port, then upstream) so edge score tensors line up across methods.

Caveats: the graph assumes sequential blocks (attention, then MLP, each reading everything
before it). In pre-LN decoders (GPT-2, Llama) the residual stream is exactly the sum of the
writers' outputs; in post-LN encoders (BERT, MiniLM) it is not, and `circuits.edge_patching`
carries writers' outputs through frozen LayerNorms (an approximation, see there).
Parallel attention+MLP blocks (GPT-J, NeoX) are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.model import Model

INPUT = "input"
OUTPUT = "output"


def head_node(layer: int, head: int) -> str:
    """The node name of head `head` of layer `layer`: a{layer}.{head}."""
    return f"a{layer}.{head}"


def mlp_node(layer: int) -> str:
    """The node name of layer `layer`'s MLP: m{layer}."""
    return f"m{layer}"


@dataclass(frozen=True)
class Port:
    """One input of a downstream node: kind is "q", "k", "v", "mlp" or "output"."""

    name: str
    node: str
    kind: str
    layer: int  # n_layers for the readout
    index: int  # query head for q, kv head for k/v, 0 otherwise


@dataclass(frozen=True)
class Graph:
    """Nodes, input ports and edges of one model (see module docstring)."""

    model_name: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    has_mlp: bool
    is_causal: bool
    readout: str | None  # task readout hook name; None = logits

    @cached_property
    def nodes(self) -> tuple[str, ...]:
        """Upstream-writing nodes in residual-stream order, then `output`."""
        names = [INPUT]
        for layer in range(self.n_layers):
            names += [head_node(layer, h) for h in range(self.n_heads)]
            if self.has_mlp:
                names.append(mlp_node(layer))
        return (*names, OUTPUT)

    @cached_property
    def writers(self) -> tuple[str, ...]:
        """Nodes that write to the residual stream (every node but `output`)."""
        return self.nodes[:-1]

    def writer_layer(self, node: str) -> tuple[int, int]:
        """(layer, stage) where the node writes: input (-1, 1), heads (L, 0), MLP (L, 1)."""
        if node == INPUT:
            return (-1, 1)
        if node.startswith("a"):
            return (int(node[1:].split(".")[0]), 0)
        return (int(node[1:]), 1)

    @cached_property
    def ports(self) -> tuple[Port, ...]:
        """Every input port (q, k, v per head, each MLP, the output), in edge order."""
        out = []
        for layer in range(self.n_layers):
            for kind, count in (
                ("q", self.n_heads),
                ("k", self.n_kv_heads),
                ("v", self.n_kv_heads),
            ):
                for i in range(count):
                    name = f"a{layer}.{i}<{kind}>"
                    out.append(Port(name, head_node(layer, i), kind, layer, i))
            if self.has_mlp:
                out.append(Port(mlp_node(layer), mlp_node(layer), "mlp", layer, 0))
        out.append(Port(OUTPUT, OUTPUT, "output", self.n_layers, 0))
        return tuple(out)

    def upstream_of(self, port: Port) -> list[str]:
        """Writers whose output reaches `port` through the residual stream."""
        if port.kind == "output":
            return list(self.writers)
        stage = 1 if port.kind == "mlp" else 0  # an MLP also reads its own layer's heads
        return [n for n in self.writers if self.writer_layer(n) < (port.layer, stage)]

    @cached_property
    def edges(self) -> tuple[tuple[str, str], ...]:
        """(upstream node, port name) pairs in the fixed edge order."""
        return tuple((u, p.name) for p in self.ports for u in self.upstream_of(p))

    @cached_property
    def edge_labels(self) -> tuple[str, ...]:
        """Edge labels upstream->port, in the fixed edge order."""
        return tuple(f"{u}->{p}" for u, p in self.edges)

    @cached_property
    def edge_index(self) -> dict[str, int]:
        """Position of each edge label in `edge_labels`."""
        return {label: i for i, label in enumerate(self.edge_labels)}

    @property
    def n_edges(self) -> int:
        """Number of edges in the graph."""
        return len(self.edges)

    def port_node(self, port_name: str) -> str:
        """The node a port belongs to ("a1.2<k>" -> "a1.2"; kv ports name the kv index)."""
        return port_name.split("<")[0]

    def describe(self) -> dict:
        """A JSON-ready summary: model, node/port/edge counts and the model's shape."""
        return {
            "model": self.model_name,
            "n_nodes": len(self.nodes),
            "n_ports": len(self.ports),
            "n_edges": self.n_edges,
            "n_heads": self.n_heads,
            "n_kv_heads": self.n_kv_heads,
        }


def supports_edges(model: Model) -> bool:
    """True for sequential attention/MLP blocks (pre-LN decoders, post-LN encoders)."""
    return not bool(getattr(model.cfg, "parallel_attn_mlp", False))


def build_graph(model: Model, *, readout: str | None = None) -> Graph:
    """The ACDC/EAP graph of `model` (readout: the task's readout hook, None = logits)."""
    return Graph(
        model_name=model.name,
        n_layers=model.n_layers,
        n_heads=model.n_heads,
        n_kv_heads=model.n_key_value_heads,
        has_mlp=not bool(getattr(model.cfg, "attn_only", False)),
        is_causal=model.is_causal,
        readout=readout,
    )
