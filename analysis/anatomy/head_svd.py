"""Head SVD: singular spectra of one head's QK and OV circuits, with token readouts.

`qk_ov_svd(model, layer, head)` reads the head's weights in float64 by probing the model's own
projection modules (`workbench.adapters.weights`, every family it supports: fused or split
QKV, GQA/MQA; the pre-attention norm's gain/bias folded; on LayerNorm models centred as
TransformerLens' compatibility mode, so the spectra are those of the maps acting on
LayerNorm's output, docs/anatomy.md) and decomposes

- the bias-augmented QK matrix `Omega = W_Q~ W_K~^T = [[W_Q W_K^T, W_Q b_K^T], [b_Q W_K^T,
  b_Q b_K]]` (`[d_model + 1, d_model + 1]`, rank <= d_head), so that the raw attention score is
  `x~_q Omega x~_k^T` with `x~ = [normalised residual; 1]`;
- the OV matrix `W_V W_O` (`[d_model, d_model]`, bias row dropped).

Both through TransformerLens `FactoredMatrix.svd` (the d_model-square products are never
decomposed directly). Reported: spectra, effective ranks (`exp` of the entropy of the
normalised singular values, and the count reaching 90% of the energy sum s^2), the QK spectral
norm `sigma_max(W_Q W_K^T) / sqrt(d_head)` (position-free, bias excluded: the logit scale of
Zhai et al. 2023), and token readouts: the tokens whose norm-normalised embeddings `W_E` align
most (both signs: singular vectors' signs are arbitrary) with the top singular directions; the
OV output side is read through the unembedding `W_U` (final-norm gain folded) on decoders, and
through `W_E` on encoders (MiniLM's MLM head is untrained).

Caveats: for RoPE models the real bilinear form is `W_Q R(i) R(j)^T W_K^T`, which depends on
the positions (partial rotary: only the first `rotary_dim` dims rotate); the spectrum here is
the position-free `W_Q W_K^T` (see `analysis.anatomy.score_decomposition` for the
position-specific decomposition). Qwen-3's per-head q/k RMSNorm: QK is
`W_Q diag(g_q) diag(g_k) W_K^T` without the per-position scales; Gemma-2's attention-output norm
gain is folded into OV (its per-position scale is not). Embedding readouts
ignore everything the residual stream adds before the layer (an approximation for layers > 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from analysis.anatomy.linalg import effective_ranks, factored_svd
from workbench.adapters import weights
from workbench.heads import Head
from workbench.results import Result

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.model import Model


@dataclass(frozen=True)
class HeadSVD(Result):
    """QK / OV singular decomposition of one head (see module docstring)."""

    kind: ClassVar[str] = "head_svd"
    plot_kinds: ClassVar[tuple[str, ...]] = ("spectrum", "readouts")
    model_name: str
    layer: int
    head: int
    kv_head: int
    d_head: int
    qk_singular_values: np.ndarray  # [d_head] of the augmented Omega
    qk_left: np.ndarray  # [d_model + 1, d_head] query-side directions u_k (x~ space)
    qk_right: np.ndarray  # [d_model + 1, d_head] key-side directions v_k (x~ space)
    ov_singular_values: np.ndarray  # [d_head]
    ov_left: np.ndarray  # [d_model, d_head] read (input) directions
    ov_right: np.ndarray  # [d_model, d_head] write (output) directions
    qk_effective_rank: dict
    ov_effective_rank: dict
    spectral_norm: float  # sigma_max(W_Q W_K^T) / sqrt(d_head)
    readouts: pd.DataFrame
    weights_note: str
    rotary: bool

    def to_frame(self) -> pd.DataFrame:
        """Spectrum table: matrix (qk / ov), component, singular_value, energy shares."""
        rows = []
        for matrix, s in (("qk", self.qk_singular_values), ("ov", self.ov_singular_values)):
            energy = s**2 / max((s**2).sum(), 1e-300)
            for k, (value, share, cum) in enumerate(zip(s, energy, np.cumsum(energy), strict=True)):
                rows.append(
                    {
                        "matrix": matrix,
                        "component": k,
                        "singular_value": float(value),
                        "energy_share": float(share),
                        "cumulative_energy": float(cum),
                    }
                )
        return pd.DataFrame(rows)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"main": self.to_frame(), "readouts": self.readouts}

    def summary(self) -> dict[str, Any]:
        """JSON-ready scalars (used by `workbench svd`)."""
        return {
            "model": self.model_name,
            "layer": self.layer,
            "head": self.head,
            "kv_head": self.kv_head,
            "spectral_norm": self.spectral_norm,
            "qk_singular_values": self.qk_singular_values.tolist(),
            "ov_singular_values": self.ov_singular_values.tolist(),
            "qk_effective_rank": self.qk_effective_rank,
            "ov_effective_rank": self.ov_effective_rank,
            "weights": self.weights_note,
            "rotary": self.rotary,
        }

    def plot(self, kind: str | None = "spectrum", **kwargs: Any) -> go.Figure:
        """`spectrum` (singular values of QK and OV) or `readouts` (token table)."""
        import plotly.graph_objects as go

        title = f"{self.model_name} {Head(self.layer, self.head)}"
        if kind in (None, "spectrum"):
            fig = go.Figure()
            for matrix, s in (
                ("QK (Ω)", self.qk_singular_values),
                ("OV", self.ov_singular_values),
            ):
                fig.add_scatter(x=list(range(len(s))), y=s, mode="lines+markers", name=matrix)
            fig.update_layout(
                title=f"{title}: singular spectra",
                xaxis_title="component",
                yaxis_title="singular value",
                yaxis_type="log",
                height=420,
                margin={"t": 60, "l": 70, "r": 20, "b": 50},
                **kwargs,
            )
            return fig
        if kind == "readouts":
            table = readout_table(self.readouts)
            fig = go.Figure(
                go.Table(
                    columnwidth=COLUMN_WIDTHS,  # short columns fit; the token lists wrap
                    header={"values": list(READOUT_HEADERS), "align": "left"},
                    cells={"values": [table[c].tolist() for c in table.columns], "align": "left"},
                )
            )
            fig.update_layout(
                title=f"{title}: token readouts",
                height=80 + sum(_row_heights(table)),
                margin={"t": 50, "l": 10, "r": 10, "b": 10},
                **kwargs,
            )
            return fig
        raise ValueError(f"kind: unknown plot kind {kind!r}; choose 'spectrum' or 'readouts'")


def readout_table(readouts: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Display form of `HeadSVD.readouts`: one row per (matrix, side, component, sign) with
    its tokens in rank order and their values rounded to `digits` significant figures (the
    stored frame keeps full precision)."""
    keys = ["matrix", "side", "basis", "component", "sign"]
    rows = []
    for key, part in readouts.groupby(keys, sort=False):
        ordered = part.sort_values("rank")
        tokens = ", ".join(
            f"{tok} ({value:.{digits}g})"
            for tok, value in zip(ordered.token, ordered.value, strict=True)
        )
        rows.append({**dict(zip(keys, key, strict=True)), "tokens (value)": tokens})
    return pd.DataFrame(rows, columns=[*keys, "tokens (value)"])


# the readout table's headers as drawn (`comp.`: component) and relative column widths:
# the five short columns get room for their header, the token lists the rest (~40 characters
# a line in a half-width card; they wrap, rows grow: `_row_heights`)
READOUT_HEADERS = ("matrix", "side", "basis", "comp.", "sign", "tokens (value)")
COLUMN_WIDTHS = [7, 6, 6, 6, 5, 40]


def _row_heights(table: pd.DataFrame, chars_per_line: int = 36) -> list[int]:
    """Estimated pixel height of each readout row (long token lists wrap, ~`chars_per_line`
    characters a line in a half-width card) plus the header: the figure is this tall, so no
    row is cut off or scrolled away."""
    lines = [max(1, -(-len(text) // chars_per_line)) for text in table["tokens (value)"]]
    return [30] + [10 + 19 * n for n in lines]


def _token_readouts(
    model: Model, svd: dict[str, tuple], *, norm: str, n_components: int, top_tokens: int
) -> pd.DataFrame:
    """Top tokens (both signs) along the first singular directions of QK and OV."""
    w_e = weights.embedding_matrix(model)  # [d_vocab, d_model]
    w_e_norm, _ = weights.normalise(w_e, "rmsnorm" if norm == "rmsnorm" else "layernorm", 1e-12)
    decoder = model.is_causal
    w_u = weights.unembedding_matrix(model) if decoder else None  # [d_model, d_vocab]
    sides = {
        ("qk", "query"): (svd["qk"][0][:-1], "W_E"),
        ("qk", "key"): (svd["qk"][2][:-1], "W_E"),
        ("ov", "read"): (svd["ov"][0], "W_E"),
        ("ov", "write"): (svd["ov"][2], "W_U" if decoder else "W_E"),
    }
    vocab = model.tokenizer.convert_ids_to_tokens
    rows = []
    for (matrix, side), (directions, basis) in sides.items():
        for k in range(min(n_components, directions.shape[1])):
            scores = (w_u.T if basis == "W_U" else w_e_norm) @ directions[:, k]  # [d_vocab]
            for sign, order in (("+", np.argsort(-scores)), ("-", np.argsort(scores))):
                ids = order[:top_tokens]
                for rank, (tok, token_id) in enumerate(zip(vocab(ids.tolist()), ids, strict=True)):
                    rows.append(
                        {
                            "matrix": matrix,
                            "side": side,
                            "basis": basis,
                            "component": k,
                            "sign": sign,
                            "rank": rank,
                            "token": str(tok),
                            "token_id": int(token_id),
                            "value": float(scores[token_id]),
                        }
                    )
    return pd.DataFrame(rows)


def qk_ov_svd(
    model: Model, layer: int, head: int, *, n_components: int = 3, top_tokens: int = 8
) -> HeadSVD:
    """QK (bias-augmented) and OV SVD of (layer, head) in float64 (see module docstring).

    `n_components` singular directions get `top_tokens` token readouts per sign.
    """
    layer, head = model.check_head(layer, head)
    for name, value, low in (("n_components", n_components, 0), ("top_tokens", top_tokens, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    w = weights.head_weights(model, layer, head)
    w_q, w_k = w.W_Q, w.W_K  # [d_model + 1, d_head]
    if w.q_norm_gain is not None:  # Qwen-3: q/k RMSNorm gains, per-position scales dropped
        w_q, w_k = w_q * w.q_norm_gain, w_k * w.k_norm_gain
    w_o = w.W_O if w.post_norm_gain is None else w.W_O * w.post_norm_gain  # [d_head, d_model]
    qk = factored_svd(w_q, w_k.T)  # U [d_model+1, d_head], S [d_head], V [d_model+1, d_head]
    ov = factored_svd(w.W_V[:-1], w_o)  # U [d_model, d_head], S [d_head], V [d_model, d_head]
    position_free = factored_svd(w_q[:-1], w_k[:-1].T)[1]  # [d_head]
    readouts = _token_readouts(
        model, {"qk": qk, "ov": ov}, norm=w.norm, n_components=n_components, top_tokens=top_tokens
    )
    note = weights.WEIGHTS_NOTE
    if w.norm == "post-layernorm":
        note = "raw HuggingFace weights in float64 (post-LN encoder: x~ = [layer input; 1])"
    if w.rotary:
        partial = (
            f" (rotary on {w.rotary_dim} of {w.d_head} dims)" if w.rotary_dim < w.d_head else ""
        )
        note += (
            f"; RoPE{partial}: the QK spectrum is of the position-free W_Q W_K^T, the model's "
            "bilinear form is W_Q R(i) R(j)^T W_K^T (see score_decomposition for "
            "position-specific components)"
        )
    if w.q_norm_gain is not None:
        note += (
            "; per-head q/k RMSNorm: QK is W_Q diag(g_q) diag(g_k) W_K^T, up to the per-position "
            "scales 1/(rms(q) rms(k))"
        )
    if w.post_norm_gain is not None:
        note += "; OV includes the attention-output norm's gain, up to its per-position scale"
    return HeadSVD(
        model_name=model.name,
        layer=int(layer),
        head=int(head),
        kv_head=w.kv_head,
        d_head=w.d_head,
        qk_singular_values=qk[1],
        qk_left=qk[0],
        qk_right=qk[2],
        ov_singular_values=ov[1],
        ov_left=ov[0],
        ov_right=ov[2],
        qk_effective_rank=effective_ranks(qk[1]),
        ov_effective_rank=effective_ranks(ov[1]),
        spectral_norm=float(position_free[0] / np.sqrt(w.d_head)),
        readouts=readouts,
        weights_note=note,
        rotary=w.rotary,
    )
