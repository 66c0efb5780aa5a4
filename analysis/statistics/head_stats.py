"""`HeadStats`: per-query attention statistics of every head, for a list of prompts.

Returned by `analysis.attention_stats`. Holds finished numbers only (CPU float32 tensors,
token strings, the configuration used); `to_frame()` / `per_head()` are pandas views and
`plot(kind)` draws plotly figures from the stored numbers without recomputing anything.

Tensor layout: every scalar statistic is `[prompt, layer, head, query]`; queries beyond a
prompt's length (right padding to the longest prompt) are NaN. `distance_hist` is
`[prompt, layer, head, query, bucket]` (bucket 0 = distance 0, bucket b >= 1 = distances in
[2^(b-1), 2^b), sized for the longest prompt) and `block_mass` is
`[prompt, layer, head, query, key_block]`; both are NaN on padded queries and 0 in buckets or
blocks a shorter prompt cannot reach.

Caveats: statistics that were not requested are None and have no column or plot. `lse` is the
log-sum-exp of the scaled attention scores (natural log), entropy is in nats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import torch

from analysis.statistics import head_stats_plots as plots
from workbench.heads import Head
from workbench.results import Result

if TYPE_CHECKING:
    import plotly.graph_objects as go

# Order of the statistic columns in `to_frame()` and `per_head()`.
SCALAR_COLUMNS = ("entropy", "sink", "max_prob", "mean_distance", "sum_sq", "lse")
# `HeadStats.plot(kind)` dispatches through this mapping; its keys are `HeadStats.plot_kinds`.
_PLOTTERS = {
    "heatmap": plots.plot_heatmap,
    "query": plots.plot_query,
    "distance": plots.plot_distance,
    "block_mass": plots.plot_block_mass,
}
PLOT_KINDS = tuple(_PLOTTERS)


@dataclass(frozen=True, eq=False)
class HeadStats(Result):
    """Attention statistics per (prompt, layer, head, query) of one model run.

    Attributes:
        model_name: the model the statistics come from.
        prompts: the prompts, in the order given (`prompt` column = index here).
        tokens: token strings of each prompt (its length = the prompt's number of queries).
        entropy, sink, max_prob, mean_distance, sum_sq, lse: float32 `[prompt, layer, head,
            query]`, NaN beyond each prompt's length; None when not requested.
        distance_hist: float32 `[prompt, layer, head, query, bucket]` or None.
        block_mass: float32 `[prompt, layer, head, query, key_block]` or None.
        config: how they were computed (backend, stats, sink_tokens, mass_block, ...).
    """

    model_name: str
    prompts: list[str]
    tokens: list[list[str]]
    entropy: torch.Tensor | None = None
    sink: torch.Tensor | None = None
    max_prob: torch.Tensor | None = None
    mean_distance: torch.Tensor | None = None
    sum_sq: torch.Tensor | None = None
    lse: torch.Tensor | None = None
    distance_hist: torch.Tensor | None = None
    block_mass: torch.Tensor | None = None
    config: dict[str, Any] = field(default_factory=dict)

    kind: ClassVar[str] = "attention_stats"
    # The kinds `plot(kind)` draws (read by `workbench figure stats --kind`).
    plot_kinds: ClassVar[tuple[str, ...]] = PLOT_KINDS

    # ------------------------------------------------------------------ shape
    @property
    def statistics(self) -> tuple[str, ...]:
        """Names of the scalar statistics held, in column order."""
        return tuple(name for name in SCALAR_COLUMNS if getattr(self, name) is not None)

    @property
    def lengths(self) -> list[int]:
        """Number of queries (tokens) of each prompt."""
        return [len(t) for t in self.tokens]

    @property
    def n_layers(self) -> int:
        """Number of layers in the statistics."""
        return int(self._any_tensor().shape[1])

    @property
    def n_heads(self) -> int:
        """Number of heads per layer in the statistics."""
        return int(self._any_tensor().shape[2])

    def _any_tensor(self) -> torch.Tensor:
        for name in (*SCALAR_COLUMNS, "distance_hist", "block_mass"):
            value = getattr(self, name)
            if value is not None:
                return value
        raise ValueError("stats: this HeadStats holds no statistic")

    def stat_values(self, stat: str) -> torch.Tensor:
        """`[prompt, layer, head, query]` values of a held scalar statistic, or of
        "effective_keys" (1/sum_sq)."""
        if stat == "effective_keys" and self.sum_sq is not None:
            return 1.0 / self.sum_sq
        if isinstance(stat, str) and stat in self.statistics:
            return getattr(self, stat)
        held = [*self.statistics, *(["effective_keys"] if self.sum_sq is not None else [])]
        raise ValueError(
            f"stat: {stat!r} is not held by this result (held: {held}); "
            "rerun attention_stats with it in `stats`"
        )

    def histogram(self, name: str) -> torch.Tensor:
        """`distance_hist` or `block_mass`; ValueError if it was not computed."""
        value = getattr(self, name) if name in ("distance_hist", "block_mass") else None
        if value is None:
            raise ValueError(
                f"stats: {name!r} was not computed; rerun attention_stats with "
                f"stats including {name!r}"
            )
        return value

    # ------------------------------------------------------------------ tables
    def to_frame(self) -> pd.DataFrame:
        """Long table, one row per real (prompt, layer, head, query): columns prompt, layer,
        head, query, token, then entropy, sink, max_prob, mean_distance, sum_sq, lse (those held)."""
        frames = []
        layers, heads = self.n_layers, self.n_heads
        for prompt, tokens in enumerate(self.tokens):
            n = len(tokens)
            layer, head, query = np.meshgrid(
                np.arange(layers), np.arange(heads), np.arange(n), indexing="ij"
            )  # each [layer, head, query]
            columns: dict[str, Any] = {
                "prompt": np.full(layer.size, prompt),
                "layer": layer.ravel(),
                "head": head.ravel(),
                "query": query.ravel(),
                "token": np.asarray(tokens, dtype=object)[query.ravel()],
            }
            for name in self.statistics:
                columns[name] = getattr(self, name)[prompt, :, :, :n].numpy().ravel()
            frames.append(pd.DataFrame(columns))
        return pd.concat(frames, ignore_index=True)

    def per_head(self) -> pd.DataFrame:
        """One row per (layer, head): the mean of each statistic over every real query of every
        prompt, `effective_keys` = mean of 1/sum_sq (when sum_sq is held) and `n_queries`."""
        layer, head = np.meshgrid(np.arange(self.n_layers), np.arange(self.n_heads), indexing="ij")
        columns: dict[str, Any] = {"layer": layer.ravel(), "head": head.ravel()}
        for name in self.statistics:
            columns[name] = self._head_mean(getattr(self, name)).ravel()
        if self.sum_sq is not None:
            columns["effective_keys"] = self._head_mean(1.0 / self.sum_sq).ravel()
        columns["n_queries"] = np.full(layer.size, sum(self.lengths))
        return pd.DataFrame(columns)

    @staticmethod
    def _head_mean(values: torch.Tensor) -> np.ndarray:
        """`[layer, head]` mean over prompts and real queries of `[prompt, layer, head, query]`."""
        return values.double().nanmean(dim=(0, 3)).numpy()

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"main": self.to_frame(), "per_head": self.per_head()}

    # ------------------------------------------------------------------ plots
    def plot(self, kind: str | None = "heatmap", **kwargs: Any) -> go.Figure:
        """Draw the stored statistics (never recomputes).

        Kinds:
            "heatmap": layer x head map of a per-head mean; `stat=` any held statistic or
                "effective_keys" (default "entropy").
            "query": `stat=` along the query axis of one head (`layer=`, `head=`, `prompt=0`),
                token strings as tick labels.
            "distance": mean attention mass per log2 distance bucket of one head (`layer=`,
                `head=`), over every real query of every prompt.
            "block_mass": query x key-block mass map of one head (`layer=`, `head=`, `prompt=0`);
                needs "block_mass" in the statistics computed.
        """
        from analysis.statistics import head_stats_plots

        kind = kind or "heatmap"
        if kind not in PLOT_KINDS:
            raise ValueError(f"kind: unknown plot kind {kind!r}; choose from {list(PLOT_KINDS)}")
        return getattr(head_stats_plots, f"plot_{kind}")(self, **kwargs)

    def head_index(self, layer: Any, head: Any) -> Head:
        """The `Head` (layer, head) if this result has it; ValueError naming the bad index."""
        return Head.of(layer, head).check(self.n_layers, self.n_heads, self.model_name)

    def prompt_index(self, prompt: Any) -> int:
        """`prompt` checked as an index into `prompts` (ValueError otherwise)."""
        if isinstance(prompt, bool) or not isinstance(prompt, int | np.integer):
            raise ValueError(f"prompt: expected an integer index, got {prompt!r}")
        if not 0 <= prompt < len(self.tokens):
            raise ValueError(f"prompt: {prompt} is out of range ({len(self.tokens)} prompts)")
        return int(prompt)


__all__ = ["HeadStats", "PLOT_KINDS", "SCALAR_COLUMNS"]
