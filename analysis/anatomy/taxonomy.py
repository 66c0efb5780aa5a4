"""Head taxonomy: behaviour scores of every head, a label per head, and a clustering.

`head_taxonomy(model)` scores each (layer, head) on six behaviours, each in [0, 1]:

- `previous_token`, `duplicate_token`, `induction`: on repeated random tokens (or the token
  tensor the user passes), with TransformerLens `head_detector`'s detection patterns and its
  "mul" similarity score (`compute_head_attention_similarity_score`). `detect_head` itself is not
  called because it only takes strings (random token sequences do not survive a decode/encode
  round trip) and caches every hook; the same scoring functions run on `hook_pattern`. TL's
  score divides by the whole pattern's mass; it is rescaled here to the mean over the queries
  that have a target (factor n_pos / n_target_queries, exact because pattern rows sum to 1), so
  `induction` equals `workbench.tasks.induction.induction_scores` on collision-free sequences.
- `sink` (mass on the first token, queries >= 1), `local` (mass on keys at distance < 4,
  queries >= 4) and `uniform` (entropy / log(number of visible keys), queries >= 1): on natural
  text, from `analysis.attention_stats` (per-query statistics; `per_head()` is not used because
  these exclusions need the per-query values).

Label: the strongest of the specific behaviours (induction, duplicate_token, previous_token)
when it reaches `threshold`, else the strongest generic one (sink, local, uniform) reaching it
(`uniform_threshold`, default 0.8, for uniform), else "mixed"; a previous-token head is also
local, hence the order. Clustering (scikit-learn):
standardise the behaviour profile, KMeans or agglomerative (`method`), a 2-D PCA map, and the
silhouette score (NaN when fewer than 2 clusters are found or every head is its own cluster).

Caveats: the default natural text is IOI-template English (`analysis.anatomy.probe_data`); the
scores describe behaviour on the data given, nothing more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import torch
from transformer_lens import head_detector

from analysis.anatomy import probe_data as data
from analysis.anatomy.label_placement import label_positions
from workbench.heads import Head
from workbench.results import Result

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.model import Model

SPECIFIC = ("induction", "duplicate_token", "previous_token")
GENERIC = ("sink", "local", "uniform")
BEHAVIOURS = ("previous_token", "duplicate_token", "induction", "sink", "local", "uniform")
_DETECTORS = {
    "previous_token": head_detector.get_previous_token_head_detection_pattern,
    "duplicate_token": head_detector.get_duplicate_token_head_detection_pattern,
    "induction": head_detector.get_induction_head_detection_pattern,
}
_similarity = head_detector.compute_head_attention_similarity_score
BEHAVIOUR_LABELS = {b: b.replace("_", " ") for b in BEHAVIOURS}  # axis labels
CLUSTER_TEXT_LIMIT = 32  # cluster map: head labels beside the points up to this many heads
LOCAL_BUCKETS = 3  # distance buckets 0, [1, 2), [2, 4): distance < 4


@dataclass(frozen=True)
class HeadTaxonomy(Result):
    """Per-head behaviour scores, labels, clusters and the PCA map (see module docstring)."""

    kind: ClassVar[str] = "head_taxonomy"
    plot_kinds: ClassVar[tuple[str, ...]] = ("heatmap", "clusters")
    model_name: str
    scores: (
        pd.DataFrame
    )  # layer, head, behaviours..., max_prob, mean_distance, label, cluster, pc1, pc2
    silhouette: float
    explained_variance: list
    config: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.scores

    def heads(self, label: str) -> list[tuple[int, int]]:
        """(layer, head) pairs with this label."""
        rows = self.scores[self.scores.label == label]
        return [(int(r.layer), int(r.head)) for r in rows.itertuples()]

    def summary(self) -> dict[str, Any]:
        """JSON-ready (used by `workbench heads`)."""
        return {
            "model": self.model_name,
            "silhouette": None if math.isnan(self.silhouette) else self.silhouette,
            "explained_variance": self.explained_variance,
            "config": self.config,
            "heads": self.scores.to_dict(orient="records"),
        }

    def plot(
        self, kind: str | None = "heatmap", *, selected: Any = None, **kwargs: Any
    ) -> go.Figure:
        """`heatmap` (heads x behaviour scores) or `clusters` (2-D PCA map coloured by
        cluster); `selected` (a `Head` or (layer, head)) is outlined / pointed at."""
        if kind not in (None, "heatmap", "clusters"):
            raise ValueError(f"kind: unknown plot kind {kind!r}; choose 'heatmap' or 'clusters'")
        names = [str(Head(r.layer, r.head)) for r in self.scores.itertuples()]
        index = None
        if selected is not None:
            head = str(Head.of(*selected))
            index = names.index(head) if head in names else None
        if kind == "clusters":
            return self._clusters(names, index, **kwargs)
        return self._heatmap(names, index, **kwargs)

    def _heatmap(self, names: list[str], index: int | None, **kwargs: Any) -> go.Figure:
        import plotly.graph_objects as go

        values = self.scores[list(BEHAVIOURS)].to_numpy().T  # [behaviour, head]
        step = max(1, -(-len(names) // 36))  # at most ~36 head labels, never overprinted
        fig = go.Figure(
            go.Heatmap(
                z=values,
                x=names,
                y=[BEHAVIOUR_LABELS[b] for b in BEHAVIOURS],
                zmin=0,
                zmax=1,
                colorscale="Viridis",
                colorbar={"title": {"text": "score (0-1)"}},
                texttemplate="%{z:.2f}" if len(names) <= 24 else None,
                hovertemplate="%{x} %{y}: %{z:.3f}<extra></extra>",
            )
        )
        shapes = []
        if index is not None:
            box = {"x0": index - 0.5, "x1": index + 0.5, "y0": -0.5, "y1": len(BEHAVIOURS) - 0.5}
            shapes.append(
                {
                    "type": "rect",
                    **box,
                    "line": {"color": "crimson", "width": 3},
                    "name": "selected",
                }
            )
        fig.update_layout(
            title={"text": f"{self.model_name}: head taxonomy", "y": 0.98, "yanchor": "top"},
            height=150 + 45 * len(BEHAVIOURS),
            margin={"t": 60, "l": 130, "r": 20, "b": 80},
            xaxis={
                "title": {"text": "head" + (f" (one label per {step} heads)" if step > 1 else "")},
                "tickangle": -45 if len(names) > 16 else 0,
                "tickmode": "array",
                "tickvals": names[::step],
                "ticktext": names[::step],
            },
            yaxis={"title": {"text": "behaviour"}},
            shapes=shapes,
            **kwargs,
        )
        return fig

    def _clusters(self, names: list[str], index: int | None, **kwargs: Any) -> go.Figure:
        """Head labels written beside the points up to `CLUSTER_TEXT_LIMIT` heads; past it
        they are in the hover only (the selected head is always named)."""
        import plotly.graph_objects as go

        fig = go.Figure()
        labels = [
            f"{name} {r.label}" for name, r in zip(names, self.scores.itertuples(), strict=True)
        ]
        written = len(names) <= CLUSTER_TEXT_LIMIT
        where = pd.Series(
            label_positions(self.scores.pc1, self.scores.pc2, labels)
            if written
            else ["top center"] * len(labels),
            self.scores.index,
        )  # [head] plotly textposition chosen to avoid overprinting
        for cluster, part in self.scores.groupby("cluster"):
            text = [labels[self.scores.index.get_loc(i)] for i in part.index]
            fig.add_scatter(
                x=part.pc1,
                y=part.pc2,
                mode="markers+text" if written else "markers",
                name=f"cluster {cluster} ({len(part)} heads)",
                text=text,
                hovertext=text,
                hoverinfo="text",
                textfont={"size": 10},
                textposition=where[part.index].tolist(),
            )
        if index is not None:
            x, y = float(self.scores.pc1.iloc[index]), float(self.scores.pc2.iloc[index])
            fig.add_scatter(
                x=[x],
                y=[y],
                mode="markers",
                name="selected",
                marker={
                    "size": 18,
                    "symbol": "circle-open",
                    "color": "crimson",
                    "line": {"width": 3},
                },
                hoverinfo="skip",  # a click goes to the head's own point underneath
                showlegend=False,
            )
            fig.add_annotation(
                x=x, y=y, text=f"{names[index]} (selected)", arrowcolor="crimson", ax=30, ay=-30
            )
        share = [f" ({100 * v:.0f}% of variance)" for v in [*self.explained_variance, 0, 0][:2]]
        pad = 0.15 * float(np.ptp(self.scores.pc1) or 1.0)
        fig.update_layout(
            title={
                "text": f"{self.model_name}: head clusters (silhouette {self.silhouette:.2f})",
                "y": 0.98,
                "yanchor": "top",
            },
            xaxis_title=f"PC 1 of the standardised behaviour scores{share[0]}",
            yaxis_title=f"PC 2{share[1]}",
            height=480,
            xaxis={"range": [self.scores.pc1.min() - pad, self.scores.pc1.max() + pad]},
            margin={"t": 60, "l": 60, "r": 20, "b": 50},
            legend={"title": {"text": "cluster"}},
            **kwargs,
        )
        return fig


@torch.no_grad()
def _detection_scores(model: Model, tokens: torch.Tensor) -> dict[str, np.ndarray]:
    """`{behaviour: [layer, head]}` TL detection scores, mean over the prompts (module doc)."""
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.n_layers)]
    _, cache = model.run_with_cache(tokens, names=names)
    totals = {k: np.zeros((model.n_layers, model.n_heads)) for k in _DETECTORS}
    counts = dict.fromkeys(_DETECTORS, 0)
    for b in range(tokens.shape[0]):
        for kind, make_pattern in _DETECTORS.items():
            detection = make_pattern(tokens[b : b + 1].cpu())  # [pos, pos]
            n_target = int((detection.sum(-1) > 0).sum())
            if n_target == 0:
                continue
            factor = detection.shape[0] / n_target
            counts[kind] += 1
            for layer, name in enumerate(names):
                for head in range(model.n_heads):
                    score = _similarity(
                        cache[name][b, head].float().cpu(),
                        detection,
                        exclude_bos=False,
                        exclude_current_token=False,
                        error_measure="mul",
                    )
                    totals[kind][layer, head] += factor * score
    return {k: totals[k] / max(counts[k], 1) for k in _DETECTORS}


def _profile_scores(model: Model, texts: list[str], *, progress: bool) -> dict[str, np.ndarray]:
    """`{sink, local, uniform, max_prob, mean_distance: [layer, head]}` on natural text."""
    from analysis.statistics.attention_stats import attention_stats

    stats = attention_stats(
        model,
        texts,
        stats=("entropy", "sink", "max_prob", "mean_distance", "distance_hist"),
        progress=progress,
    )
    n_query = stats.entropy.shape[-1]
    query = torch.arange(n_query, dtype=torch.float64)  # [query]
    if model.is_causal:
        visible = (query + 1).expand(len(texts), n_query)  # [prompt, query]
    else:
        visible = torch.tensor(stats.lengths, dtype=torch.float64)[:, None].expand(-1, n_query)
    log_visible = visible.log()[:, None, None, :]  # [prompt, 1, 1, query]

    def mean_from(values: torch.Tensor, first_query: int) -> np.ndarray:
        return values[..., first_query:].double().nanmean(dim=(0, 3)).numpy()  # [layer, head]

    local = stats.histogram("distance_hist")[..., :LOCAL_BUCKETS].sum(
        -1
    )  # [prompt, layer, head, query]
    per_head = stats.per_head()
    shape = (model.n_layers, model.n_heads)
    return {
        "sink": mean_from(stats.sink, 1),
        "local": mean_from(local, 4),
        "uniform": mean_from(stats.entropy.double() / log_visible, 1),
        "max_prob": per_head.max_prob.to_numpy().reshape(shape),
        "mean_distance": per_head.mean_distance.to_numpy().reshape(shape),
    }


def _label(row: pd.Series, threshold: float, uniform_threshold: float) -> str:
    for group in (SPECIFIC, GENERIC):
        passing = [
            n for n in group if row[n] >= (uniform_threshold if n == "uniform" else threshold)
        ]
        if passing:
            return max(passing, key=lambda name: row[name])
    return "mixed"


def _cluster(features: np.ndarray, *, method: str, n_clusters: int, seed: int):
    """Standardise, cluster, 2-D PCA -> (labels, coords [head, 2], variance, silhouette)."""
    from sklearn.cluster import AgglomerativeClustering, KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    scaled = StandardScaler().fit_transform(features)  # [head, feature]
    k = max(1, min(n_clusters, len(scaled) - 1))
    if method == "kmeans":
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(scaled)
    else:
        labels = AgglomerativeClustering(n_clusters=k).fit_predict(scaled)
    n_components = min(2, *scaled.shape)
    pca = PCA(n_components=n_components, random_state=seed).fit(scaled)
    coords = np.zeros((len(scaled), 2))
    coords[:, :n_components] = pca.transform(scaled)
    distinct = len(set(labels))
    silhouette = (
        float(silhouette_score(scaled, labels)) if 2 <= distinct < len(scaled) else math.nan
    )
    return labels, coords, [float(v) for v in pca.explained_variance_ratio_], silhouette


def head_taxonomy(
    model: Model,
    *,
    texts: list[str] | None = None,
    repeated: torch.Tensor | None = None,
    method: str = "kmeans",
    n_clusters: int = 4,
    threshold: float = 0.4,
    uniform_threshold: float = 0.8,
    features: tuple[str, ...] = BEHAVIOURS,
    seed: int = 0,
    progress: bool = False,
) -> HeadTaxonomy:
    """Score, label and cluster every head of `model` (see module docstring).

    Args:
        texts: natural-text prompts for sink / local / uniform (default: IOI-template English).
        repeated: `[batch, pos]` tokens for previous-token / duplicate / induction scores
            (default: 8 sequences BOS + r + r of random tokens, seeded by `seed`).
        method: "kmeans" or "agglomerative"; `n_clusters` is capped at n_heads - 1.
        threshold: the score a behaviour needs to name a head (`uniform_threshold` for
            "uniform": normalised entropy is high for many diffuse heads).
        features: the score columns clustered.
    """
    if method not in ("kmeans", "agglomerative"):
        raise ValueError(f"method: expected 'kmeans' or 'agglomerative', got {method!r}")
    if n_clusters < 1:
        raise ValueError(f"n_clusters: need at least 1, got {n_clusters}")
    for arg, value in (("threshold", threshold), ("uniform_threshold", uniform_threshold)):
        if not 0 < value <= 1:
            raise ValueError(f"{arg}: must be in (0, 1], got {value}")
    unknown = set(features) - set(BEHAVIOURS) - {"max_prob", "mean_distance"}
    if unknown or not features:
        raise ValueError(f"features: unknown or empty {sorted(unknown)}; choose from {BEHAVIOURS}")
    texts = data.natural_texts(model, seed=seed) if texts is None else data.check_texts(texts)
    if repeated is None:
        repeated = data.repeated_tokens(model, seed=seed)
    elif not isinstance(repeated, torch.Tensor) or repeated.dim() != 2:
        raise ValueError("repeated: expected a [batch, pos] token tensor")
    scores = {
        **_detection_scores(model, repeated),
        **_profile_scores(model, texts, progress=progress),
    }
    layer, head = np.meshgrid(np.arange(model.n_layers), np.arange(model.n_heads), indexing="ij")
    frame = pd.DataFrame({"layer": layer.ravel(), "head": head.ravel()})
    for name in (*BEHAVIOURS, "max_prob", "mean_distance"):
        frame[name] = scores[name].ravel()
    frame["label"] = [_label(row, threshold, uniform_threshold) for _, row in frame.iterrows()]
    labels, coords, variance, silhouette = _cluster(
        frame[list(features)].to_numpy(), method=method, n_clusters=n_clusters, seed=seed
    )
    frame["cluster"], frame["pc1"], frame["pc2"] = labels.astype(int), coords[:, 0], coords[:, 1]
    config = {
        "method": method,
        "n_clusters": n_clusters,
        "threshold": threshold,
        "uniform_threshold": uniform_threshold,
        "features": list(features),
        "seed": seed,
        "n_texts": len(texts),
        "repeated_shape": list(repeated.shape),
    }
    return HeadTaxonomy(
        model_name=model.name,
        scores=frame,
        silhouette=silhouette,
        explained_variance=variance,
        config=config,
    )
