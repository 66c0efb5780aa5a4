"""Corpus statistics: per-head attention statistics aggregated over many documents.

`corpus_stats(model, texts, ...)` cuts the documents into shards (`docs_per_shard` each), runs
every shard on an executor ("inprocess", "ray" or an `Executor`), and aggregates per (layer,
head): the mean and quantiles of the per-query entropy (nats), sink mass (attention on key 0),
maximum probability and mean distance E|i-j|, and the mean distance histogram (bucket 0 =
distance 0, bucket b = distances in [2^(b-1), 2^b), up to the model's context).

With `store=`, the run goes into the run store as a sharded run: each shard's per-query table
is its own Parquet file, written as it finishes, and an interrupted run resumes where it stopped
(same model, documents and parameters). The result is stored as the run's `result.json` with
its per-head table (`main`) and the histogram (`distance_histogram`).

Determinism: a shard is always computed the same way (one `attention_stats` call on its
documents, so the same batches), its table lists its documents' queries in order, and the
aggregate concatenates the shard tables in shard order before a sorted group-by. Means are
float64 sums in that fixed order and quantiles are exact (numpy's linear interpolation over
every per-query value), so in-process, Ray, retried and resumed runs give identical numbers on
the same hardware and backend (a GPU worker uses the Triton backend, a CPU one the chunked
torch path: those agree only to float32 rounding).

Caveats: per-query values are the float32 statistics of the instrumented attention (no n x n
pattern), aggregated in float64; every query counts, including the first (BOS) query of
decoders, which attends only to itself (entropy 0, sink 1). Exact quantiles keep every
per-query value in memory during aggregation (about 100 bytes per query and head). Documents
longer than the model's context are refused, not truncated.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import torch

from analysis.statistics.attention_stats import attention_stats
from kernels import distance_buckets
from kernels.contract import BACKENDS
from workbench.executors import (
    Executor,
    Shard,
    as_store,
    digest,
    make_shards,
    open_sharded_run,
    run_sharded,
)
from workbench.heads import Head
from workbench.results import Result

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.model import Model
    from workbench.store import RunStore

STATISTICS = ("entropy", "sink", "max_prob", "mean_distance")
DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def n_distance_buckets(n_ctx: int) -> int:
    """Buckets for distances 0..n_ctx-1 (bucket of d >= 1 is d.bit_length())."""
    return distance_buckets(n_ctx)


@dataclass(frozen=True)
class CorpusStats(Result):
    """Per-head attention statistics over a corpus.

    Attributes:
        per_head: one row per (layer, head): n_queries, n_documents, and for each statistic
            `<stat>_mean` and `<stat>_q<percent>` columns.
        distance_hist: `[layer, head, bucket]` mean attention mass per distance bucket.
        config: model, documents (count and digest), docs_per_shard, quantiles, executor.
        run_id: the run in the store, or None when no store was given.
    """

    kind: ClassVar[str] = "corpus_stats"
    plot_kinds: ClassVar[tuple[str, ...]] = (*STATISTICS, "distance")

    per_head: pd.DataFrame
    distance_hist: torch.Tensor
    config: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None

    @property
    def model_name(self) -> str:
        """The model the statistics come from (`config["model"]`)."""
        return str(self.config.get("model", ""))

    def to_frame(self) -> pd.DataFrame:
        return self.per_head.copy()

    def histogram_frame(self) -> pd.DataFrame:
        """The distance histogram as a long table: layer, head, bucket, lo, hi, mass."""
        n_layers, n_heads, n_buckets = self.distance_hist.shape
        layer, head, bucket = np.meshgrid(
            np.arange(n_layers), np.arange(n_heads), np.arange(n_buckets), indexing="ij"
        )  # each [layer, head, bucket]
        lo = np.where(bucket == 0, 0, 2 ** np.maximum(bucket - 1, 0))
        return pd.DataFrame(
            {
                "layer": layer.ravel(),
                "head": head.ravel(),
                "bucket": bucket.ravel(),
                "lo": lo.ravel(),
                "hi": np.where(bucket == 0, 1, 2**bucket).ravel(),
                "mass": self.distance_hist.numpy().ravel(),
            }
        )

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"main": self.to_frame(), "distance_histogram": self.histogram_frame()}

    def aggregates(self) -> list[str]:
        """The per-head aggregates stored for every statistic: "mean", then "q<percent>"."""
        prefix = f"{STATISTICS[0]}_"
        return [c.removeprefix(prefix) for c in self.per_head.columns if c.startswith(prefix)]

    def plot(
        self,
        kind: str | None = None,
        *,
        aggregate: str = "mean",
        layer: int | None = None,
        head: int | None = None,
        **kwargs: Any,
    ) -> go.Figure:
        """`kind`: a statistic ("entropy", "sink", "max_prob", "mean_distance": layer x head
        heatmap of its `aggregate`, "mean" or a stored quantile such as "q95") or "distance"
        (histogram of each head, or of one head with `layer` and `head`)."""
        import plotly.graph_objects as go

        kind = kind or "entropy"
        if kind == "distance":
            return self._distance_figure(layer, head)
        if kind not in STATISTICS:
            raise ValueError(f"kind: {kind!r} is not one of {', '.join((*STATISTICS, 'distance'))}")
        if aggregate not in self.aggregates():
            raise ValueError(
                f"aggregate: {aggregate!r} is not one of {', '.join(self.aggregates())}"
            )
        grid = self.per_head.pivot(index="layer", columns="head", values=f"{kind}_{aggregate}")
        label = f"{aggregate} {kind}"
        fig = go.Figure(
            go.Heatmap(
                z=grid.to_numpy(),
                x=list(grid.columns),
                y=list(grid.index),
                colorscale="Viridis",
                colorbar={"title": {"text": label}},
                hovertemplate="layer %{y} head %{x}<br>" + label + " %{z:.4f}<extra></extra>",
            )  # z: [layer, head]
        )
        fig.update_layout(
            title=f"{self._model_prefix()}{label} per head over "
            f"{self.config.get('documents', '?')} documents",
            xaxis={"title": {"text": "head"}, "dtick": 1},
            yaxis={"title": {"text": "layer"}, "dtick": 1, "autorange": "reversed"},
            template="plotly_white",
        )
        return fig

    def _model_prefix(self) -> str:
        return f"{self.config['model']}: " if self.config.get("model") else ""

    def _distance_figure(self, layer: int | None, head: int | None) -> go.Figure:
        import plotly.graph_objects as go

        frame = self.histogram_frame()
        if (layer is None) != (head is None):
            raise ValueError("layer/head: give both to plot one head's histogram, or neither")
        if layer is not None:
            n_layers, n_heads, _ = self.distance_hist.shape
            layer, head = Head.of(layer, head).check(
                n_layers, n_heads, self.config.get("model", "")
            )
            frame = frame[(frame["layer"] == layer) & (frame["head"] == head)]
        fig = go.Figure()
        for (layer_, head_), rows in frame.groupby(["layer", "head"], sort=True):
            label = [f"[{lo},{hi})" for lo, hi in zip(rows["lo"], rows["hi"], strict=True)]
            fig.add_bar(x=label, y=rows["mass"], name=str(Head(layer_, head_)))
        title = f"{self._model_prefix()}mean attention mass per distance" + (
            f", {Head(layer, head)}" if layer is not None else ""
        )
        fig.update_layout(
            barmode="group",
            xaxis_title="distance |i - j|",
            yaxis_title="mean attention mass",
            title=title,
            template="plotly_white",
        )
        return fig


def document_stats(model: Model, shard: Shard, *, backend: str = "auto") -> pd.DataFrame:
    """The shard function: per-query statistics of every head for each document of `shard`,
    from the instrumented attention (`analysis.attention_stats`).

    Returns columns document (index in the corpus), layer, head, query, the STATISTICS and
    `dist_<b>` (mass per distance bucket, zero-padded to the model's context), in document,
    layer, head, query order.
    """
    stats = attention_stats(
        model, list(shard.items), backend=backend, stats=(*STATISTICS, "distance_hist")
    )
    frame = stats.to_frame()
    frame = frame.drop(columns="token").rename(columns={"prompt": "document"})
    frame["document"] += shard.start
    hist = stats.distance_hist  # [prompt, layer, head, query, bucket], NaN beyond each length
    rows = [hist[i, :, :, :n].reshape(-1, hist.shape[-1]) for i, n in enumerate(stats.lengths)]
    rows = torch.cat(rows)  # [document * layer * head * query, bucket], the frame's row order
    for bucket in range(n_distance_buckets(model.n_ctx)):
        column = rows[:, bucket] if bucket < rows.shape[1] else torch.zeros(len(frame))
        frame[f"dist_{bucket}"] = column.numpy()
    return frame


def aggregate(
    frames: list[pd.DataFrame], quantiles: tuple[float, ...]
) -> tuple[pd.DataFrame, torch.Tensor]:
    """(per-head table, `[layer, head, bucket]` histogram) from shard tables in shard order."""
    rows = pd.concat(frames, ignore_index=True)
    values = [c for c in rows.columns if c in STATISTICS or c.startswith("dist_")]
    rows[values] = rows[values].astype(np.float64)
    groups = rows.groupby(["layer", "head"], sort=True)
    per_head = groups.agg(n_queries=("query", "size"), n_documents=("document", "nunique"))
    for stat in STATISTICS:
        per_head[f"{stat}_mean"] = groups[stat].mean()
        for q in quantiles:
            per_head[f"{stat}_q{q * 100:g}"] = groups[stat].quantile(q, interpolation="linear")
    bucket_columns = sorted(
        (c for c in rows.columns if c.startswith("dist_")),
        key=lambda c: int(c.removeprefix("dist_")),
    )
    hist = groups[bucket_columns].mean()  # [(layer, head), bucket]
    n_layers, n_heads = (int(rows[c].max()) + 1 for c in ("layer", "head"))
    tensor = torch.tensor(hist.to_numpy()).reshape(n_layers, n_heads, len(bucket_columns))
    return per_head.reset_index(), tensor


def corpus_stats(
    model: Model,
    texts: list[str],
    *,
    docs_per_shard: int = 16,
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
    backend: str = "auto",
    executor: str | Executor | None = "inprocess",
    address: str | None = None,
    store: RunStore | str | Path | None = None,
    progress: bool = False,
) -> CorpusStats:
    """Aggregate per-head attention statistics over `texts` (one document each).

    Args:
        model: the loaded model (Ray workers reload it by name).
        texts: the documents; each must fit the model's context.
        docs_per_shard: documents per shard (the unit of scheduling, storage and resumption).
        quantiles: quantiles to report for every statistic, each in [0, 1].
        backend: statistics-attention backend ("auto": Triton on CUDA, chunked torch on CPU).
        executor: "inprocess" (default), "ray", or an `Executor` instance.
        address: Ray cluster address for executor="ray" (default `RAY_ADDRESS`, else local).
        store: a `RunStore` or folder: store the run (sharded, resumable); None keeps it in memory.
        progress: show a progress bar over shards.

    Raises:
        ValueError: empty or non-string texts, a text longer than the context, bad quantiles,
            docs_per_shard < 1, an unknown executor, or executor="ray" without Ray installed.
    """
    texts = _check_texts(model, texts)
    quantiles = _check_quantiles(quantiles)
    if backend not in BACKENDS:
        raise ValueError(f"backend: unknown backend {backend!r}; choose from {list(BACKENDS)}")
    config = {
        "model": model.name,
        "documents": len(texts),
        "texts_digest": digest(texts),
        "docs_per_shard": docs_per_shard,
        "quantiles": list(quantiles),
        "backend": backend,
    }
    shards = make_shards(texts, size=docs_per_shard, key=config)
    shard_fn = functools.partial(document_stats, backend=backend)
    executor_name = executor if isinstance(executor, str) else getattr(executor, "name", "custom")
    run_store = as_store(store)
    if run_store is None:
        outcome = run_sharded(
            shard_fn,
            shards,
            model=model,
            executor=executor,
            address=address,
            progress=progress,
            desc="corpus-stats",
        )
        return _result(outcome.frames, quantiles, config, executor_name, None)
    with open_sharded_run(
        run_store, kind=CorpusStats.kind, model=model.name, config=config, shards=shards
    ) as run:
        outcome = run_sharded(
            shard_fn,
            shards,
            model=model,
            executor=executor,
            address=address,
            run=run,
            progress=progress,
            desc="corpus-stats",
        )
        result = _result(outcome.frames, quantiles, config, executor_name, run.run_id)
        run.write_result(result)
    return result


def _result(frames, quantiles, config, executor_name, run_id) -> CorpusStats:
    per_head, hist = aggregate(frames, quantiles)
    return CorpusStats(per_head, hist, {**config, "executor": executor_name}, run_id)


def _check_texts(model: Model, texts: list[str]) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, list | tuple) or not texts:
        raise ValueError("texts: expected a non-empty list of documents (strings)")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"texts: document {i} is empty or not a string")
        try:
            model.to_tokens(text)  # refuses a document longer than the context
        except ValueError as err:
            raise ValueError(f"texts: document {i}: {err}") from err
    return list(texts)


def _check_quantiles(quantiles: tuple[float, ...]) -> tuple[float, ...]:
    values = tuple(quantiles)
    if not values or any(not isinstance(q, int | float) or not 0 <= q <= 1 for q in values):
        raise ValueError(f"quantiles: expected numbers in [0, 1], got {quantiles!r}")
    return values
