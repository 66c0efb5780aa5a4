"""The computational graph of a transformer, as ACDC and EAP define it.

Nodes are the components that write to the residual stream: `input` (token + position
embeddings), every attention head `L{layer}H{head}` (the workbench's one head notation,
`workbench.heads.Head`), every MLP `MLP{layer}`, plus the readout node `output` (the logits,
or the task's `readout` activation). An edge runs from every node that writes to the residual
stream to every *input port* downstream of it:

- an attention head reads through three ports, `L{L}H{h}<q>`, `L{L}H{g}<k>`, `L{L}H{g}<v>`;
- an MLP reads through `MLP{L}` (its only port), the readout through `output`.

`parse_node` reads a node name back (also the names written before this notation:
`a{layer}.{head}` and `m{layer}`); `modern_label` rewrites an old edge label.

Grouped-query attention: query ports are per query head (`h` in `range(n_heads)`), key and
value ports are per *key/value head* (`g` in `range(n_key_value_heads)`), because that is where
the computation happens: one kv head's key/value input is shared by all query heads of its
group. With as many kv heads as heads (GPT-2, BERT) the indices coincide.

Edge labels are `"{upstream}->{port}"`, e.g. `"L0H1->L1H3<k>"`; the edge order is fixed (by
downstream layer, then port, then upstream) so edge score tensors line up across methods.

Sequential and parallel blocks: in a sequential block (GPT-2, Llama, BERT) attention reads the
layer's input and the MLP reads it plus that layer's attention output, so `MLP{L}` has edges
from the heads of layer L. In a parallel block (`Graph.parallel`: GPT-NeoX/Pythia with
`use_parallel_residual`, GPT-J, Falcon, Phi-1/2, StableLM when parallel; the bridge's
`cfg.parallel_attn_mlp`) attention and MLP both read the layer's input residual, so `MLP{L}`
has upstream edges from earlier layers only (input, heads and MLPs of layers < L). Nodes, ports,
labels and the edge order rule are the same; a sequential graph's edges are unchanged.

Caveats: in pre-LN decoders the residual stream is exactly the sum of the writers' outputs
(parallel blocks too: `x' = x + attn + mlp`); in post-LN encoders (BERT, MiniLM) it is not,
and `circuits.edge_patching` carries writers' outputs through frozen LayerNorms (an
approximation, see there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from workbench.adapters.parallel_blocks import is_parallel, mlp_norm
from workbench.heads import Head

if TYPE_CHECKING:
    from workbench.model import Model

INPUT = "input"
OUTPUT = "output"


_MLP = re.compile(r"(?:MLP|m)(\d+)")
_LEGACY = re.compile(r"\ba(\d+)\.(\d+)|\bm(\d+)\b")


def head_node(layer: int, head: int) -> str:
    """The node name of head `head` of layer `layer`: `L{layer}H{head}` (as `str(Head)`)."""
    return str(Head(layer, head))


def mlp_node(layer: int) -> str:
    """The node name of layer `layer`'s MLP: `MLP{layer}`."""
    return f"MLP{layer}"


def port_name(layer: int, index: int, kind: str) -> str:
    """The name of a head's input port: `L{layer}H{index}<{kind}>` (kind q, k or v)."""
    return f"{head_node(layer, index)}<{kind}>"


@dataclass(frozen=True)
class NodeName:
    """A node name read back: kind "input", "head", "mlp" or "output"; layer and head index
    (-1 where they don't apply; the readout's layer is -1 too)."""

    kind: str
    layer: int = -1
    head: int = -1


def parse_node(node: str) -> NodeName:
    """What a node (or port, `<...>` ignored) name denotes; also reads the older `a1.2` / `m0`
    spellings. `ValueError` for anything else."""
    name = node.split("<", 1)[0]
    if name in (INPUT, OUTPUT):
        return NodeName(name)
    found = _MLP.fullmatch(name)
    if found:
        return NodeName("mlp", int(found.group(1)))
    try:
        head = Head.parse(name)
    except ValueError:
        raise ValueError(f"node: {node!r} is not a node of the circuit graph") from None
    return NodeName("head", head.layer, head.head)


def modern_label(label: str) -> str:
    """An edge, port or node label with the older `a{L}.{h}` / `m{L}` names rewritten to
    `L{L}H{h}` / `MLP{L}` (labels already modern are returned unchanged)."""

    def rename(found: re.Match) -> str:
        if found.group(3) is not None:
            return mlp_node(int(found.group(3)))
        return head_node(int(found.group(1)), int(found.group(2)))

    return _LEGACY.sub(rename, label)


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
    parallel: bool = False  # parallel attention/MLP blocks: MLP{L} does not read layer L's heads

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
        parsed = parse_node(node)
        if parsed.kind == INPUT:
            return (-1, 1)
        return (parsed.layer, 0 if parsed.kind == "head" else 1)

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
                    name = port_name(layer, i, kind)
                    out.append(Port(name, head_node(layer, i), kind, layer, i))
            if self.has_mlp:
                out.append(Port(mlp_node(layer), mlp_node(layer), "mlp", layer, 0))
        out.append(Port(OUTPUT, OUTPUT, "output", self.n_layers, 0))
        return tuple(out)

    def upstream_of(self, port: Port) -> list[str]:
        """Writers whose output reaches `port` through the residual stream."""
        if port.kind == "output":
            return list(self.writers)
        # a sequential MLP also reads its own layer's heads; a parallel one only earlier layers
        stage = 1 if port.kind == "mlp" and not self.parallel else 0
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
        """The node a port belongs to ("L1H2<k>" -> "L1H2"; kv ports name the kv index)."""
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
            "parallel": self.parallel,
        }


def supports_edges(model: Model) -> bool:
    """True where `circuits.edge_patching` models the blocks: sequential ones (pre-LN decoders,
    post-LN encoders) and parallel decoder blocks whose MLP norm `workbench.adapters.
    parallel_blocks` knows (GPT-NeoX, GPT-J, Falcon, Phi, StableLM)."""
    if not is_parallel(model) or getattr(model.cfg, "attn_only", False):
        return True
    if not model.is_causal:
        return False
    try:
        mlp_norm(model, 0)
    except ValueError:
        return False
    return True


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
        parallel=is_parallel(model),
    )
