"""Plotly figures of a `HeadStats` result (`HeadStats.plot(kind)` dispatches here).

Every function reads the stored tensors only (no model, no recomputation). Axes carry units
(`STAT_LABELS`: entropy in nats, masses 0-1, distances in tokens); heads are written L1H2. Means skip padded
queries (NaN). Caveat: the token tick labels of long prompts are dense; plotly thins them when
zoomed out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from workbench.heads import Head

if TYPE_CHECKING:
    from analysis.statistics.head_stats import HeadStats

# axis / colour-bar label of each statistic, with its unit (entropy uses the natural log)
STAT_LABELS = {
    "entropy": "entropy (nats)",
    "sink": "mass on the first token (0-1)",
    "max_prob": "max attention weight (0-1)",
    "mean_distance": "mean query-key distance (tokens)",
    "effective_keys": "effective keys, exp(entropy) (keys)",
    "lse": "log-sum-exp of scores (logit units)",
    "sum_sq": "sum of squared weights (0-1)",
}


def stat_label(stat: str) -> str:
    """`stat` with its unit, for axis titles (the bare name for an unknown statistic)."""
    return STAT_LABELS.get(stat, stat.replace("_", " "))


def selected_cell(layer: int, head: int) -> dict:
    """A crimson rect shape around heatmap cell (x=head, y=layer)."""
    return {
        "type": "rect",
        "x0": head - 0.5,
        "x1": head + 0.5,
        "y0": layer - 0.5,
        "y1": layer + 0.5,
        "line": {"color": "crimson", "width": 3},
        "name": f"selected {Head(layer, head)}",
    }


def plot_heatmap(
    result: HeadStats, *, stat: str = "entropy", selected: tuple[int, int] | None = None
) -> go.Figure:
    """Layer x head map of the per-head mean of `stat` over every real query; `selected`
    (layer, head) is outlined."""
    values = result.stat_values(stat).double().nanmean(dim=(0, 3)).numpy()  # [layer, head]
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=list(range(result.n_heads)),
            y=list(range(result.n_layers)),
            colorscale="Viridis",
            colorbar={"title": {"text": "mean " + stat_label(stat).replace(" (", "<br>(")}},
            hovertemplate="L%{y}H%{x}<br>mean " + stat_label(stat) + " %{z:.4g}<extra></extra>",
        )
    )
    integer = {"dtick": 1, "tickformat": "d", "showgrid": False}
    figure.update_layout(
        title=f"{result.model_name}: mean {stat_label(stat)} per head",
        xaxis={"title": "head", **integer, "tickfont": {"size": 10}},
        yaxis={"title": "layer", **integer, "autorange": "reversed"},
        shapes=[selected_cell(*result.head_index(*selected))] if selected is not None else [],
    )
    return figure


def plot_query(
    result: HeadStats, *, layer: int, head: int, stat: str = "entropy", prompt: int = 0
) -> go.Figure:
    """`stat` at every query position of one head for one prompt, tokens as tick labels."""
    layer, head = result.head_index(layer, head)
    prompt = result.prompt_index(prompt)
    tokens = result.tokens[prompt]
    values = result.stat_values(stat)[prompt, layer, head, : len(tokens)].numpy()  # [query]
    positions = list(range(len(tokens)))
    figure = go.Figure(
        go.Scatter(
            x=positions,
            y=values,
            mode="lines+markers",
            text=tokens,
            hovertemplate="%{x}: %{text}<br>" + stat_label(stat) + " %{y:.4g}<extra></extra>",
        )
    )
    step = max(1, -(-len(tokens) // 40))  # at most ~40 tick labels, so they never squash it
    ticks = {"tickmode": "array", "tickvals": positions[::step], "ticktext": tokens[::step]}
    figure.update_layout(
        title=f"{result.model_name}: {stat_label(stat)} of {Head(layer, head)}, prompt {prompt}",
        xaxis={"title": "query (token position)", **ticks, "tickangle": -60, "automargin": True},
        yaxis={"title": stat_label(stat), "automargin": True},
        height=380,
        margin={"t": 50, "b": 10},
    )
    return figure


def bucket_labels(n_buckets: int) -> list[str]:
    """'0', '1', '2-3', '4-7', ...: the distances each log2 bucket holds."""
    labels = ["0"]
    for bucket in range(1, n_buckets):
        low, high = 2 ** (bucket - 1), 2**bucket - 1
        labels.append(str(low) if low == high else f"{low}-{high}")
    return labels


def plot_distance(result: HeadStats, *, layer: int, head: int) -> go.Figure:
    """Mean attention mass per log2 distance bucket of one head, over every real query."""
    layer, head = result.head_index(layer, head)
    hist = result.histogram("distance_hist")[:, layer, head]  # [prompt, query, bucket]
    mass = hist.double().reshape(-1, hist.shape[-1]).nanmean(dim=0).numpy()  # [bucket]
    figure = go.Figure(go.Bar(x=bucket_labels(len(mass)), y=mass))
    figure.update_layout(
        title=f"{result.model_name}: attention mass by query-key distance, {Head(layer, head)}",
        xaxis={"title": "distance |query − key| (tokens)", "type": "category"},
        yaxis={"title": "mean attention mass (0-1)"},
    )
    return figure


def plot_block_mass(
    result: HeadStats, *, layer: int, head: int, prompt: int = 0, max_rows: int | None = None
) -> go.Figure:
    """Query x key-block attention mass map of one head for one prompt.

    `max_rows`: with more queries than this, consecutive queries are averaged in groups (each
    row then names its query range in the hover), to keep the figure small on long prompts.
    """
    layer, head = result.head_index(layer, head)
    prompt = result.prompt_index(prompt)
    tokens = result.tokens[prompt]
    block = int(result.config.get("mass_block", 64))
    n_blocks = -(-len(tokens) // block)
    mass = result.histogram("block_mass")[prompt, layer, head, : len(tokens), :n_blocks]
    labels = [f"{b * block}-{min((b + 1) * block, len(tokens)) - 1}" for b in range(n_blocks)]
    values = mass.float().numpy()  # [query, key_block]
    rows, group = np.arange(len(tokens)), 1
    if max_rows is not None and len(tokens) > max_rows:
        group = -(-len(tokens) // max_rows)
        starts = np.arange(0, len(tokens), group)
        values = np.add.reduceat(values, starts, axis=0) / np.diff([*starts, len(tokens)])[:, None]
        rows = starts
    what = "query %{y}" if group == 1 else f"queries %{{y}}-(+{group - 1}) (mean)"
    figure = go.Figure(
        go.Heatmap(
            z=values.astype(np.float32),
            x=labels,
            y=rows,
            colorscale="Blues",
            zmin=0.0,
            zmax=1.0,
            colorbar={"title": {"text": "mass (0-1)"}},
            hovertemplate=what + ", keys %{x}<br>mass %{z:.4g}<extra></extra>",
        )
    )
    mean = "" if group == 1 else f"<br><sub>queries averaged in groups of {group}</sub>"
    figure.update_layout(
        title=f"{result.model_name}: attention mass per {block}-key block, "
        f"{Head(layer, head)}{mean}",
        xaxis={"title": "key block (token positions)", "type": "category"},
        yaxis={"title": "query (token position)", "autorange": "reversed", "tickformat": "d"},
    )
    return figure


__all__ = [
    "STAT_LABELS",
    "selected_cell",
    "stat_label",
    "bucket_labels",
    "plot_block_mass",
    "plot_distance",
    "plot_heatmap",
    "plot_query",
]
