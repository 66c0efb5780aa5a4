"""The held-out comparison of a head search, as a table and a figure with units.

`heldout_comparison(result)` turns a `HeadSearchResult` (what `HeadHunter.fit` found) into
one row per guidance setting scored on the HELD-OUT prompts: no guidance, HeadHunter's heads,
layer-level guidance (every head of the best search-split layer) and random heads (as many
as HeadHunter chose, averaged over the draws per prompt). Each row has the mean objective
score with a percentile-bootstrap interval over held-out prompts, the paired difference from
no guidance, and the paired difference HeadHunter minus that setting, each with its interval
(`bootstrap_mean_interval`, the same resampling as `HeadSearchResult.intervals`).

`comparison_figure(result, table)` draws the means with their intervals; the y axis names the
objective and its unit (`objective_axis_label`). Nothing is recomputed from the model.

Caveats: when HeadHunter selects no heads, its row equals no guidance (guided decoding with
no perturbed heads is plain decoding) and there is no random-heads row; the intervals cover
prompt sampling only (not the split, the random draws or the search's own variance).
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.steering.head_search_result import bootstrap_mean_interval

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from analysis.steering.head_search_result import HeadSearchResult

UNITS = {
    "ioi_top1": "IOI top-1 accuracy of the guided answer (share of prompts)",
    "ioi_logprob": "log p(IO) under the guided distribution (nats)",
    "ioi_logit_diff": "guided logit(IO) - logit(S) (logits; inflated by construction)",
    "induction_copy": "share of tokens copied correctly (free-running)",
    "text_repetition": "minus seq-rep-4 of the guided text (0 = no repeated 4-gram)",
    "text_distinct_2": "distinct-2 of the guided text (share of distinct bigrams)",
    "text_plain_nll": "minus plain-model NLL of the guided text (nats/token)",
}
LABELS = {
    "no_guidance": "no guidance",
    "searched_heads": "HeadHunter heads",
    "layer_guidance": "layer-level",
    "random_heads": "random heads",
}
COLUMNS = [
    "setting",
    "label",
    "heads",
    "n_prompts",
    "mean",
    "low",
    "high",
    "diff_vs_none",
    "diff_low",
    "diff_high",
    "headhunter_minus",
    "hh_low",
    "hh_high",
]


def objective_axis_label(objective: str) -> str:
    """What the objective's scores measure, with their unit (higher is better)."""
    return UNITS.get(objective, f"{objective} score") + ", higher is better"


def _heads_text(result: HeadSearchResult, setting: str) -> str:
    if setting == "searched_heads":
        return ",".join(str(h) for h in result.heads) or "none selected"
    if setting == "layer_guidance":
        return f"all heads of layer {result.best_layer}"
    if setting == "random_heads":
        return f"{len(result.random_heads)} draws of {len(result.heads)}"
    return ""


def heldout_comparison(
    result: HeadSearchResult, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """One row per setting on held-out prompts (`COLUMNS`): mean [low, high], the paired
    difference from no guidance and HeadHunter minus the setting, each [low, high]."""
    table = result.per_prompt()  # [row x setting]
    hunted = table["searched_heads"].to_numpy()
    none = table["no_guidance"].to_numpy()
    rows = []
    for setting in table.columns:
        values = table[setting].to_numpy()
        mean, low, high = bootstrap_mean_interval(values, n_boot=n_boot, seed=seed, level=level)
        diff = bootstrap_mean_interval(values - none, n_boot=n_boot, seed=seed, level=level)
        versus = (np.nan,) * 3
        if setting != "searched_heads":
            versus = bootstrap_mean_interval(hunted - values, n_boot=n_boot, seed=seed, level=level)
        rows.append(
            [
                setting,
                LABELS.get(setting, setting),
                _heads_text(result, setting),
                len(table),
                mean,
                low,
                high,
                *diff,
                *versus,
            ]
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def comparison_figure(result: HeadSearchResult, table: pd.DataFrame | None = None) -> go.Figure:
    """Held-out mean per setting with its bootstrap interval (error bars), labelled axes."""
    import plotly.graph_objects as go

    table = heldout_comparison(result) if table is None else table
    n = int(table["n_prompts"].iloc[0]) if len(table) else 0
    fig = go.Figure(
        go.Scatter(
            x=table["label"],
            y=table["mean"],
            mode="markers",
            marker={"size": 11},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": table["high"] - table["mean"],
                "arrayminus": table["mean"] - table["low"],
            },
            customdata=np.stack([table["heads"], table["low"], table["high"]], axis=-1),
            hovertemplate="%{x}: %{y:.4g} [%{customdata[1]:.4g}, %{customdata[2]:.4g}]"
            "<br>%{customdata[0]}<extra></extra>",
            name="held-out mean",
        )
    )
    note = " (inflated by construction)" if result.inflated else ""
    fig.update_layout(
        title=f"{result.model_name}: {result.objective}{note} on {n} held-out prompts "
        f"(mean, 95% bootstrap interval)",
        xaxis_title="guidance setting",
        yaxis_title="<br>".join(textwrap.wrap(objective_axis_label(result.objective), 40)),
        showlegend=False,
        height=420,
    )
    return fig


__all__ = ["UNITS", "comparison_figure", "heldout_comparison", "objective_axis_label"]
