"""Sparse attention decomposition of one attention score, and its upstream contributions.

After Franco & Crovella, "Sparse Attention Decomposition Applied to Circuit Tracing". For a
prompt, a head and a (query, key) pair the raw score (q.k, before the 1/sqrt(d_head) scaling) is

    score = x~_q Omega x~_k^T = sum_k sigma_k (x~_q . u_k) (v_k . x~_k)

with `x~ = [normalised residual; 1]` and `Omega = U diag(sigma) V^T` the bias-augmented QK
matrix (`analysis.anatomy.head_svd.qk_ov_svd`; float64 weights probed from the model's own
modules, the norm's gain/bias folded, centred on LayerNorm models: `workbench.adapters.weights`,
no compatibility mode). On RoPE models the bilinear form depends on the positions: here
`Omega(i, j) = W_Q~ R(i) R(j)^T W_K~^T` (rotate-half or GPT-J's interleaved pairs, partial
rotary included) is decomposed at the actual query/key positions, so the components are
position-specific; Qwen-3's per-head q/k RMSNorm is linearised at the observed scales of the two
positions (exact there). The reconstruction is checked against the model's own q.k
(`analysis.anatomy.residual`: rotated where the model rotates; `relative_error`). Gemma-2's
scaling (`query_pre_attn_scalar`) and soft-capping act after this raw score.

- `decompose_score(model, prompt, layer, head, query, key, *, share=0.7)` ->
  `ScoreDecomposition`: the d_head terms, `selected` = the fewest terms whose sum reaches
  `share` of the score (greedy on the signed terms), `firing` = pattern >= `firing_threshold`.
- `upstream_contributions(model, decomposition)` -> `UpstreamContributions`: how much every
  upstream source (embeddings, each earlier head's `hook_z @ W_O`, output biases, MLPs; all
  divided by the layer-norm scale, see `analysis.anatomy.residual`) writes along the selected
  components, on the query side and on the key side. Per side the contributions (plus the
  constant-1 "bias" row) sum exactly to the selected terms' total.
- `firing_pairs(model, prompt, layer, head)`: the (query, key) pairs whose pattern >= threshold.

Caveats: "exact" means up to the float32 forward pass (the residual is read from hooks);
post-LN encoders are linearised at each norm's observed scale (exact at that point).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import torch

from analysis.anatomy.linalg import factored_svd, fewest_reaching
from analysis.anatomy.residual import attention_input, prompt_tokens
from workbench.adapters import weights
from workbench.heads import Head
from workbench.results import Result

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.model import Model

# the bar chart's y axis: sigma_k (x~_q . u_k)(v_k . x~_k), with plotly's <sub> markup
TERM_LABEL = "term σ<sub>k</sub> (x̃<sub>q</sub> · u<sub>k</sub>)(v<sub>k</sub> · x̃<sub>k</sub>)"


@dataclass(frozen=True)
class ScoreDecomposition(Result):
    """The d_head singular terms of one attention score (see module docstring)."""

    kind: ClassVar[str] = "score_decomposition"
    plot_kinds: ClassVar[tuple[str, ...]] = ("bars",)
    model_name: str
    layer: int
    head: int
    kv_head: int
    query: int
    key: int
    tokens: list
    str_tokens: list
    singular_values: np.ndarray  # [d_head]
    query_coords: np.ndarray  # [d_head] x~_q . u_k
    key_coords: np.ndarray  # [d_head] v_k . x~_k
    terms: np.ndarray  # [d_head] sigma_k * query_coords * key_coords
    left: np.ndarray  # [d_model + 1, d_head] u_k
    right: np.ndarray  # [d_model + 1, d_head] v_k
    x_query: np.ndarray  # [d_model + 1]
    x_key: np.ndarray  # [d_model + 1]
    score: float  # sum of terms (raw, unscaled)
    model_score: float  # the model's own q.k (hook_q / hook_k)
    pattern: float
    firing: bool
    share: float
    selected: list  # component indices, in the order taken
    rotary: bool
    weights_note: str

    @property
    def relative_error(self) -> float:
        """|reconstruction - model score| / max(|model score|, 1e-12)."""
        return abs(self.score - self.model_score) / max(abs(self.model_score), 1e-12)

    @property
    def sparsity(self) -> int:
        """Number of components needed to reach `share` of the score."""
        return len(self.selected)

    def to_frame(self) -> pd.DataFrame:
        """One row per singular component."""
        chosen = set(self.selected)
        return pd.DataFrame(
            {
                "component": np.arange(len(self.terms)),
                "singular_value": self.singular_values,
                "query_coord": self.query_coords,
                "key_coord": self.key_coords,
                "term": self.terms,
                "share_of_score": self.terms / (self.score if self.score else 1.0),
                "selected": [k in chosen for k in range(len(self.terms))],
            }
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready scalars and terms (used by `workbench decompose`)."""
        return {
            "model": self.model_name,
            "layer": self.layer,
            "head": self.head,
            "kv_head": self.kv_head,
            "query": self.query,
            "key": self.key,
            "query_token": self.str_tokens[self.query],
            "key_token": self.str_tokens[self.key],
            "score": self.score,
            "model_score": self.model_score,
            "relative_error": self.relative_error,
            "pattern": self.pattern,
            "firing": self.firing,
            "share": self.share,
            "selected": self.selected,
            "sparsity": self.sparsity,
            "terms": self.terms.tolist(),
            "singular_values": self.singular_values.tolist(),
            "rotary": self.rotary,
            "weights": self.weights_note,
        }

    def plot(self, kind: str | None = "bars", **kwargs: Any) -> go.Figure:
        """`bars`: each component's term, the selected ones highlighted."""
        import plotly.graph_objects as go

        if kind not in (None, "bars"):
            raise ValueError(f"kind: unknown plot kind {kind!r}; choose 'bars'")
        chosen = set(self.selected)
        colors = ["crimson" if k in chosen else "lightgray" for k in range(len(self.terms))]
        fig = go.Figure(go.Bar(x=list(range(len(self.terms))), y=self.terms, marker_color=colors))
        q, k = self.str_tokens[self.query], self.str_tokens[self.key]
        fig.update_layout(
            title=(
                f"{self.model_name} {Head(self.layer, self.head)} {q!r}@{self.query} → {k!r}@{self.key}: "
                f"score {self.score:.3g}, {self.sparsity}/{len(self.terms)} components reach {self.share:.0%}"
            ),
            xaxis_title="singular component",
            yaxis_title=TERM_LABEL,
            height=420,
            margin={"t": 60, "l": 70, "r": 20, "b": 50},
            title_font_size=14,
            **kwargs,
        )
        return fig


@dataclass(frozen=True)
class UpstreamContributions(Result):
    """How much each upstream source writes along a decomposition's selected components."""

    kind: ClassVar[str] = "upstream_contributions"
    plot_kinds: ClassVar[tuple[str, ...]] = ("bars",)
    model_name: str
    layer: int
    head: int
    query: int
    key: int
    selected: list
    selected_score: float  # sum of the selected terms
    contributions: pd.DataFrame  # side, source, kind, source_layer, source_head, contribution
    component_error: float  # max |sum of raw components - hooked residual|

    def to_frame(self) -> pd.DataFrame:
        return self.contributions

    def top(self, side: str, n: int = 5, *, kind: str | None = "head") -> pd.DataFrame:
        """The `n` largest contributions (by magnitude) on `side` ("query" or "key")."""
        if side not in ("query", "key"):
            raise ValueError(f"side: must be 'query' or 'key', got {side!r}")
        df = self.contributions[self.contributions.side == side]
        if kind is not None:
            df = df[df.kind == kind]
        return df.reindex(df.contribution.abs().sort_values(ascending=False).index).head(n)

    def plot(self, kind: str | None = "bars", *, n: int = 10, **kwargs: Any) -> go.Figure:
        """`bars`: the top-n sources on the query and the key side."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        if kind not in (None, "bars"):
            raise ValueError(f"kind: unknown plot kind {kind!r}; choose 'bars'")
        fig = make_subplots(rows=1, cols=2, subplot_titles=("query side", "key side"))
        for col, side in enumerate(("query", "key"), start=1):
            df = self.top(side, n, kind=None)[::-1]
            fig.add_trace(
                go.Bar(x=df.contribution, y=df.source, orientation="h", name=side), 1, col
            )
        longest = max((len(str(s)) for s in self.contributions.source), default=4)
        fig.update_layout(
            title=f"{self.model_name} {Head(self.layer, self.head)}: upstream contributions "
            f"to components {self.selected} ({self.query} -> {self.key})",
            showlegend=False,
            height=max(360, 140 + 30 * n),
            title_font_size=14,
            margin={"t": 80, "l": 20 + 7 * longest, "r": 20, "b": 50},
            **kwargs,
        )
        fig.update_xaxes(title_text="contribution to the selected terms")
        return fig


def _check_positions(model: Model, n_pos: int, query: int, key: int) -> None:
    for name, value in (("query", query), ("key", key)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name}: expected an integer token position, got {value!r}")
        if not 0 <= value < n_pos:
            raise ValueError(f"{name}: position {value} is out of range for a {n_pos}-token prompt")
    if model.is_causal and key > query:
        raise ValueError(f"key: position {key} is after query {query} (causal attention)")


def _position_factors(w: weights.HeadWeights, inputs, query: int, key: int):
    """`(left [d_model+1, d_head], right [d_head, d_model+1])` with left @ right = Omega(q, k).

    Qwen-3's per-head q/k RMSNorm is linearised at the observed scales of this query and key
    (`rms(x~ W_Q)`, exact at that point), then RoPE rotates at the actual positions.
    """
    left, right = w.W_Q, w.W_K  # [d_model + 1, d_head]
    if w.q_norm_gain is not None:
        x_q = np.append(inputs.x_norm[query], 1.0)  # [d_model + 1]
        x_k = np.append(inputs.x_norm[key], 1.0)
        s_q = np.sqrt(((x_q @ left) ** 2).mean() + w.qk_norm_eps)
        s_k = np.sqrt(((x_k @ right) ** 2).mean() + w.qk_norm_eps)
        left, right = left * (w.q_norm_gain / s_q), right * (w.k_norm_gain / s_k)
    if w.rotary:
        rot = weights.rotation_matrices(
            inputs.cos, inputs.sin, d_head=w.d_head, style=w.rotary_style or "half"
        )  # [pos, d_head, d_head]
        left, right = left @ rot[query], right @ rot[key]
    return left, right.T


def decompose_score(
    model: Model,
    prompt: str | torch.Tensor,
    layer: int,
    head: int,
    query: int,
    key: int,
    *,
    share: float = 0.7,
    firing_threshold: float = 0.5,
) -> ScoreDecomposition:
    """Decompose head (layer, head)'s raw score from `query` to `key` into singular terms."""
    layer, head = model.check_head(layer, head)
    if not 0 < share <= 1:
        raise ValueError(f"share: must be in (0, 1], got {share}")
    tokens = prompt_tokens(model, prompt)  # [1, pos]
    _check_positions(model, tokens.shape[1], query, key)
    w = weights.head_weights(model, layer, head)
    inputs = attention_input(model, tokens, layer)
    x_q = np.append(inputs.x_norm[query], 1.0)  # [d_model + 1]
    x_k = np.append(inputs.x_norm[key], 1.0)  # [d_model + 1]
    u, s, v = factored_svd(*_position_factors(w, inputs, query, key))  # [d_model+1, d_head] ...
    query_coords, key_coords = x_q @ u, x_k @ v  # [d_head], [d_head]
    terms = s * query_coords * key_coords  # [d_head]
    pattern = float(inputs.pattern[head, query, key])
    post_ln = w.norm == "post-layernorm"
    return ScoreDecomposition(
        model_name=model.name,
        layer=int(layer),
        head=int(head),
        kv_head=w.kv_head,
        query=int(query),
        key=int(key),
        tokens=tokens[0].tolist(),
        str_tokens=model.to_str_tokens(tokens),
        singular_values=s,
        query_coords=query_coords,
        key_coords=key_coords,
        terms=terms,
        left=u,
        right=v,
        x_query=x_q,
        x_key=x_k,
        score=float(terms.sum()),
        model_score=float(inputs.scores[head, query, key]),
        pattern=pattern,
        firing=pattern >= firing_threshold,
        share=float(share),
        selected=fewest_reaching(terms, share),
        rotary=w.rotary,
        weights_note="raw HuggingFace weights in float64 (post-LN encoder: x~ = [layer input; 1])"
        if post_ln
        else weights.WEIGHTS_NOTE,
    )


def firing_pairs(
    model: Model, prompt: str | torch.Tensor, layer: int, head: int, *, threshold: float = 0.5
) -> list[tuple[int, int]]:
    """(query, key) pairs of one prompt whose attention probability is >= `threshold`."""
    layer, head = model.check_head(layer, head)
    tokens = prompt_tokens(model, prompt)
    pattern = attention_input(model, tokens, layer).pattern[head]  # [query, key]
    return [(int(q), int(k)) for q, k in zip(*np.nonzero(pattern >= threshold), strict=True)]


def _source_kind(name: str) -> tuple[str, int, int]:
    """(kind, layer, head) of a component name; -1 where not applicable."""
    if name in ("embed", "pos_embed", "bias"):
        return ("bias" if name == "bias" else "embed"), -1, -1
    layer_part, _, rest = name.partition(" ")
    if not rest:  # a head, "L{m}H{h}"
        m, h = Head.parse(layer_part)
        return "head", m, h
    return ("mlp" if rest == "mlp" else "bias"), int(layer_part[1:]), -1


def upstream_contributions(
    model: Model, decomposition: ScoreDecomposition, *, components: list[int] | None = None
) -> UpstreamContributions:
    """Rank every upstream source by how much it writes along the selected components
    (`components` overrides `decomposition.selected`, e.g. `range(d_head)` for the whole score).

    Query side of source c: `sum_{k selected} sigma_k (c~_q . u_k)(v_k . x~_k)`; key side:
    `sum_{k selected} sigma_k (x~_q . u_k)(v_k . c~_k)`, where c~ is c divided by the norm's
    scale (centred for LayerNorm). The constant-1 entry of x~ is the "bias" source.
    """
    d = decomposition
    if d.model_name != model.name:
        raise ValueError(f"decomposition: computed on {d.model_name}, not {model.name}")
    chosen = list(d.selected if components is None else components)
    if any(not 0 <= int(k) < len(d.terms) for k in chosen):
        raise ValueError(f"components: indices must be in [0, {len(d.terms)}), got {chosen}")
    inputs = attention_input(model, torch.tensor([d.tokens]), d.layer, components=True)
    sel = np.array(chosen, dtype=int)
    sigma = d.singular_values[sel]  # [n_selected]
    u, v = d.left[:, sel], d.right[:, sel]  # [d_model + 1, n_selected]
    rows = []
    for name, vectors in inputs.components.items():  # vectors: [pos, d_model]
        kind, src_layer, src_head = _source_kind(name)
        q_side = float((sigma * (vectors[d.query] @ u[:-1]) * d.key_coords[sel]).sum())
        k_side = float((sigma * d.query_coords[sel] * (vectors[d.key] @ v[:-1])).sum())
        for side, value in (("query", q_side), ("key", k_side)):
            rows.append((side, name, kind, src_layer, src_head, value))
    rows.append(("query", "bias", "bias", -1, -1, float((sigma * u[-1] * d.key_coords[sel]).sum())))
    rows.append(("key", "bias", "bias", -1, -1, float((sigma * d.query_coords[sel] * v[-1]).sum())))
    table = pd.DataFrame(
        rows, columns=["side", "source", "kind", "source_layer", "source_head", "contribution"]
    )
    return UpstreamContributions(
        model_name=model.name,
        layer=d.layer,
        head=d.head,
        query=d.query,
        key=d.key,
        selected=[int(k) for k in chosen],
        selected_score=float(d.terms[sel].sum()),
        contributions=table,
        component_error=inputs.component_error,
    )
