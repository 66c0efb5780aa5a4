"""The layered graph figure of a `Circuit` (`Circuit.plot()` calls `circuit_figure`).

One column per graph stage (input, each layer's heads, its MLP, output), heads in index order
top to bottom, labels in the one node notation (`L1H2` = layer 1 head 2, `MLP1`, `input`,
`output` = the logits or the task's readout) in boxes above their node. Edges:

- colour = sign of the score: crimson for score < 0 (patching the edge lowers the task
  metric, i.e. it carries the behaviour), steelblue for score > 0; one legend entry per sign
  (its `legendgroup` toggles every edge of that sign);
- width ~ |score| (0.5 px at 0 up to 5.5 px at the largest kept |score|; the legend title
  says so);
- the port an edge reads through: edges into a head land on one of three anchors left of it,
  q upper / k middle / v lower, drawn solid / dashed / dotted (MLP and output edges solid);
  the anchors are small triangles in the node trace.

Edges that skip columns are arcs; each edge is hoverable at its midpoint. The last trace holds
the nodes and port anchors; `customdata` is the node name (a head's for its ports), so a page
can turn a click into a link. Traces before it are the edges, one each, `meta="edge"`.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from circuits.graph import parse_node

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from circuits.circuit import Circuit

NEGATIVE, POSITIVE = "crimson", "steelblue"
PORT_DASH = {"q": "solid", "k": "dash", "v": "dot"}
PORT_OFFSET = {"q": 0.16, "k": 0.0, "v": -0.16}  # y offset of a head's port anchor
PORT_DX = -0.13  # anchors sit left of the head
SIGN_NAMES = {
    True: "score < 0 (patching lowers the metric)",
    False: "score > 0 (patching raises the metric)",
}
LEGEND_TITLE = (
    "colour: sign · width ∝ |score| (max {biggest:.3g})<br>"
    "into a head: q solid (upper) · k dashed (middle) · v dotted (lower)"
)


def port_kind(port: str) -> str:
    """'q', 'k' or 'v' for a head's port label (`L1H2<k>`), '' for an MLP or the output."""
    return port[port.index("<") + 1 : -1] if port.endswith(">") else ""


def circuit_figure(circuit: Circuit, **kwargs: Any) -> go.Figure:
    """The figure described in the module docstring; `kwargs` go to `update_layout`."""
    import plotly.graph_objects as go

    frame = circuit.to_frame()
    frame = frame[frame.in_circuit]
    pos = node_positions(set(frame.upstream) | set(frame.downstream))
    biggest = float(frame.abs_score.max()) if len(frame) else 1.0
    fig = go.Figure()
    shown: set[bool] = set()
    for row in frame.itertuples():
        port = port_kind(row.port)
        negative = bool(row.score < 0)
        end = port_anchor(pos[row.downstream], port)
        xs, ys = edge_path(pos[row.upstream], end)
        legend = negative not in shown and port in ("", "q")  # a solid line for the entry
        shown |= {negative} if legend else set()
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={
                    "width": 0.5 + 5 * row.abs_score / (biggest or 1.0),
                    "color": NEGATIVE if negative else POSITIVE,
                    "dash": PORT_DASH.get(port, "solid"),
                },
                opacity=0.8,
                hovertext=f"{row.edge}<br>score {row.score:.4g} (rank {row.rank})",
                hoverinfo="text",
                name=SIGN_NAMES[negative],
                legendgroup="negative" if negative else "positive",
                showlegend=legend,
                meta="edge",
            )
        )
    _legend_fallback(fig, frame, shown)
    fig.add_trace(_node_trace(frame, pos))
    for n, (x, y) in pos.items():
        fig.add_annotation(
            x=x,
            y=y,
            text=n,
            showarrow=False,
            yshift=17,
            bgcolor="rgba(255,255,255,0.85)",
            font={"size": 11},
        )
    tallest = max(Counter(x for x, _ in pos.values()).values(), default=1)
    fig.update_layout(
        title=f"{circuit.method} circuit of {circuit.model_name} on {circuit.task} "
        f"({circuit.n_edges} edges)",
        xaxis={"visible": False},
        yaxis={"visible": False},
        height=min(1400, max(380, 190 + 55 * tallest)),
        margin={"t": 60, "l": 20, "r": 20, "b": 40},
        plot_bgcolor="white",
        hovermode="closest",
        showlegend=True,
        legend={
            "orientation": "h",
            "yanchor": "top",
            "y": -0.02,
            "x": 0,
            "title": {"text": LEGEND_TITLE.format(biggest=biggest), "side": "top"},
        },
        **kwargs,
    )
    return fig


def _legend_fallback(fig: go.Figure, frame: Any, shown: set[bool]) -> None:
    """A sign whose edges all land on k/v ports still gets its legend entry (on its first
    edge, dashed or dotted as it is)."""
    for negative in (True, False):
        if negative in shown:
            continue
        for trace in fig.data:
            if trace.meta == "edge" and trace.name == SIGN_NAMES[negative]:
                trace.showlegend = True
                break


def _node_trace(frame: Any, pos: dict[str, tuple[float, float]]) -> go.Scatter:
    """Nodes (black dots) and the port anchors in use (small triangles), with hover text and
    the node name as `customdata`."""
    import plotly.graph_objects as go

    degree: Counter[str] = Counter()
    mass: Counter[str] = Counter()
    for row in frame.itertuples():
        for n in (row.upstream, row.downstream):
            degree[n] += 1
            mass[n] += row.abs_score
    xs, ys, text, data, size, symbol = [], [], [], [], [], []
    for n, (x, y) in pos.items():
        hint = " · click to open it on the Heads page" if parse_node(n).kind == "head" else ""
        xs.append(x)
        ys.append(y)
        text.append(f"{n}<br>{degree[n]} edges, sum |score| {mass[n]:.4g}{hint}")
        data.append(n)
        size.append(11)
        symbol.append("circle")
    ports = sorted({(row.downstream, port_kind(row.port)) for row in frame.itertuples()})
    for node, port in ports:
        if not port:
            continue
        x, y = port_anchor(pos[node], port)
        xs.append(x)
        ys.append(y)
        text.append(f"{node} {port} port")
        data.append(node)
        size.append(7)
        symbol.append("triangle-right")
    return go.Scatter(
        x=xs,
        y=ys,
        mode="markers",
        marker={"size": size, "color": "black", "symbol": symbol},
        hovertext=text,
        hoverinfo="text",
        customdata=data,
        name="nodes",
        showlegend=False,
        meta="nodes",
    )


def port_anchor(node: tuple[float, float], port: str) -> tuple[float, float]:
    """Where an edge into `port` ends: the node itself for an MLP or the output, an anchor
    left of the head (q above, k level, v below) for a head's port."""
    if not port:
        return node
    return node[0] + PORT_DX, node[1] + PORT_OFFSET[port]


def layer_of(node: str) -> float:
    """x order of a node's column in the layered plot."""
    if node == "input":
        return 0.0
    if node == "output":
        return float("inf")
    parsed = parse_node(node)
    return 1.0 + 2 * parsed.layer + (1 if parsed.kind == "mlp" else 0)


def _node_order(node: str) -> tuple[float, int]:
    """Column, then head index (heads top to bottom within a layer)."""
    parsed = parse_node(node)
    return (layer_of(node), max(parsed.head, 0))


def node_positions(nodes: set[str]) -> dict[str, tuple[float, float]]:
    """(x, y) per node: evenly spaced columns, each column centred on y = 0, head 0 on top."""
    ordered = sorted(nodes, key=_node_order)
    columns: dict[float, list[str]] = {}
    for n in ordered:
        columns.setdefault(layer_of(n), []).append(n)
    return {
        n: (float(x), (len(col) - 1) / 2 - i)
        for x, col in enumerate(columns[key] for key in sorted(columns))
        for i, n in enumerate(col)
    }


def edge_path(start: tuple[float, float], end: tuple[float, float], n: int = 17):
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


__all__ = ["circuit_figure", "edge_path", "node_positions", "port_anchor", "port_kind"]
