"""sigma-Reparam's entropy lower bound per head, from the weights and the actual inputs.

`entropy_bound(model)` checks, for the model and every training snapshot it ships
(`<checkpoint>/history/step-*.safetensors`), each head's measured attention entropy on each
prompt against the lower bound of Zhai et al. 2023 (`bound_math.entropy_lower_bound`), with the
bound's sigma in three forms (all rigorous; the margin `entropy - bound` is never negative):

- `paper`: the theorem as stated, `sigma = ||W||_2 ||X~ X~^T||_2` with the head's own
  `W = W_Q~ W_K~^T * scale` (float64 weights from `workbench.adapters.weights`: pre-attention
  norm folded, bias as the last row of the augmented input `x~ = [normalised residual; 1]`,
  centred on LayerNorm models, which leaves every logit unchanged; any W that produces the
  logits makes the theorem's sigma valid, and the tests check it reproduces the scores) and
  `X~` the normalised residual this head reads on the prompt. Causal models: query i attends to
  the prefix 0..i, so the theorem is applied to that prefix (T = i+1 keys, `X~_{:i+1}`).
  RoPE models have no fixed W (the logit is `x~_i W_Q R(i) R(j)^T W_K^T x~_j`); there the paper
  form uses the relaxation `scale ||W_Q~|| ||W_K~|| ||X~||_2 ||X~||_F` (each row of the rotated
  keys keeps its norm, so their spectral norm is at most the Frobenius norm): labelled, looser.
- `logits`: sigma = the spectral norm of the actual (masked, prefix) logit matrix, computed
  from the hooked per-position q and k (rotated on RoPE models, so position is exact; bridges
  without rotated-q/k hooks, GPT-NeoX, Phi-3, Falcon, GPT-J: `rotated_qk`).
- `row`: each row's own centred logit norm (the proof's inequality on the row itself).

Margins (`margin_*`, the minimum of `entropy - bound` over a prompt's query rows) and
`n_queries` count only rows that see more than one key (a one-key row has entropy 0 = bound).

Measured entropy comes from TransformerLens' own `hook_pattern` (float64 entropy); the logits
used for the bound must reproduce that pattern through a float64 softmax (`pattern_error`;
above 1e-3 the analysis refuses with ValueError rather than report a wrong bound).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import torch

from analysis.anatomy.probe_data import check_texts
from analysis.training_dynamics import bound_math as bm
from analysis.training_dynamics.checkpoints import checkpoints
from analysis.training_dynamics.rotated_qk import qk_hook_names, rotated_qk
from workbench.adapters import weights
from workbench.heads import Head
from workbench.results import Result

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.model import Model

BOUNDS = ("paper", "logits", "row")
PATTERN_TOLERANCE = 1e-3


@dataclass(frozen=True)
class EntropyBound(Result):
    """Per checkpoint, prompt and head: entropy, the three bounds, margins (module doc)."""

    kind: ClassVar[str] = "entropy_bound"
    plot_kinds: ClassVar[tuple[str, ...]] = ("scatter", "training")
    model_name: str
    table: pd.DataFrame  # checkpoint, step, prompt, layer, head, entropy, bound_*, margin_*, ...
    rotary: bool
    texts: list
    notes: list = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        return self.table

    def per_head(self) -> pd.DataFrame:
        """Means over prompts (entropy, bounds, sigmas) and minima (margins) per head."""
        keys = ["checkpoint", "step", "layer", "head"]
        means = [c for c in self.table if c.startswith(("entropy", "bound_", "sigma_"))]
        margins = [c for c in self.table if c.startswith("margin_")]
        grouped = self.table.groupby(keys, sort=False)
        return grouped[means].mean().join(grouped[margins].min()).reset_index()

    def min_margins(self) -> dict[str, float]:
        """The smallest `entropy - bound` over every row checked, per bound form."""
        return {b: float(self.table[f"margin_{b}"].min()) for b in BOUNDS}

    def summary(self) -> dict[str, Any]:
        """JSON-ready: model, checkpoints, rows checked, min margins, per-head table."""
        heads = self.per_head()
        return {
            "model": self.model_name,
            "checkpoints": list(dict.fromkeys(self.table.checkpoint)),
            "prompts": len(self.texts),
            "rotary": self.rotary,
            "query_rows_checked": int(self.table.n_queries.sum()),
            "min_margin": self.min_margins(),
            "holds": all(m >= -PATTERN_TOLERANCE for m in self.min_margins().values()),
            "heads": heads.to_dict(orient="records"),
            "notes": list(self.notes),
        }

    def plot(
        self, kind: str | None = "scatter", *, bound: str = "logits", **kwargs: Any
    ) -> go.Figure:
        """`scatter`: mean entropy against the mean bound per head, one colour per checkpoint,
        with the line entropy = bound; `training`: each head's entropy (solid) and bound
        (dotted) against the training step. `bound` picks "paper", "logits" or "row"."""
        import plotly.graph_objects as go

        if bound not in BOUNDS:
            raise ValueError(f"bound: unknown bound {bound!r}; choose one of {BOUNDS}")
        heads, column = self.per_head(), f"bound_{bound}"
        fig = go.Figure()
        if kind in (None, "scatter"):
            for label, part in heads.groupby("checkpoint", sort=False):
                fig.add_scatter(
                    x=part[column],
                    y=part.entropy,
                    mode="markers",
                    name=label,
                    text=[str(Head(r.layer, r.head)) for r in part.itertuples()],
                    hovertemplate="%{text}: bound %{x:.3f}, entropy %{y:.3f}<extra></extra>",
                )
            top = float(max(heads.entropy.max(), heads[column].max(), 1e-3))
            fig.add_scatter(
                x=[0, top], y=[0, top], mode="lines", name="entropy = bound", line={"dash": "dot"}
            )
            title, xaxis = f"{self.model_name}: entropy vs sigma-Reparam bound ({bound})", column
        elif kind == "training":
            from plotly.colors import qualitative

            groups = heads.groupby(["layer", "head"], sort=True)
            for i, ((layer, head), part) in enumerate(groups):
                name, colour = str(Head(layer, head)), qualitative.Plotly[i % 10]
                style = {"legendgroup": name, "line": {"color": colour}}
                fig.add_scatter(
                    x=part.step, y=part.entropy, mode="lines+markers", name=name, **style
                )
                style["line"] = {"color": colour, "dash": "dot"}
                fig.add_scatter(
                    x=part.step, y=part[column], mode="lines", name=f"{name} bound", **style
                )
            title, xaxis = f"{self.model_name}: entropy and {bound} bound across training", "step"
        else:
            raise ValueError(f"kind: unknown plot kind {kind!r}; choose 'scatter' or 'training'")
        fig.update_layout(
            title=title,
            xaxis_title=xaxis,
            yaxis_title="mean attention entropy (nats)",
            height=460,
            margin={"t": 60, "l": 70, "r": 20, "b": 50},
            **kwargs,
        )
        return fig


def logit_scale(model: Model, layer: int) -> float:
    """The factor HF multiplies q.k by (1/sqrt(d_head); GPT-2 options honoured)."""
    config = model.bridge.original_model.config
    scale = 1.0 / np.sqrt(model.d_head)
    if weights.architecture(model) == "gpt2":
        scale = scale if getattr(config, "scale_attn_weights", True) else 1.0
        if getattr(config, "scale_attn_by_inverse_layer_idx", False):
            scale /= layer + 1
    return float(scale)


def _sigma_weights(model: Model) -> tuple[np.ndarray, bool]:
    """`[layer, head]` weight factor of the paper's sigma (see module doc) and `rotary`."""
    out, rotary = np.zeros((model.n_layers, model.n_heads)), False
    for layer in range(model.n_layers):
        scale = logit_scale(model, layer)
        for head in range(model.n_heads):
            w = weights.head_weights(model, layer, head)
            rotary = w.rotary
            if rotary:  # relaxation: ||W_Q R W_K^T|| <= ||W_Q|| ||W_K|| for any rotation R
                value = np.linalg.norm(w.W_Q, 2) * np.linalg.norm(w.W_K, 2)
            else:
                value = np.linalg.norm(w.W_Q @ w.W_K.T, 2)  # [d_model+1, d_model+1] product
            out[layer, head] = value * scale
    return out, rotary


def _hooks(model: Model) -> list[str]:
    names = []
    for layer in range(model.n_layers):
        names += [f"blocks.{layer}.hook_resid_pre", f"blocks.{layer}.attn.hook_pattern"]
        names += qk_hook_names(model, layer)  # rotated q/k, or q/k and the cos/sin tables
    return list(dict.fromkeys(names))


def _f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _input_norms(x: np.ndarray, causal: bool, rotary: bool) -> np.ndarray:
    """`[T]` input factor of the paper's sigma for the prefix (causal) or whole sequence."""
    gram = bm.prefix_gram_norms(x)  # [T] ||X_{:i+1}||_2^2
    if rotary:  # ||X||_2 ||X||_F
        gram = np.sqrt(gram) * np.sqrt(np.cumsum((x**2).sum(-1)))
    return gram if causal else np.full_like(gram, gram[-1])


@torch.no_grad()
def _prompt_rows(model: Model, tokens: torch.Tensor, sigma_w: np.ndarray, rotary: bool) -> list:
    """Per (layer, head) dicts of entropy, bounds and margins for one prompt."""
    names = _hooks(model)
    missing = [n for n in names if n not in model.hook_names]
    if not missing:
        _, cache = model.run_with_cache(tokens, names=names)
        missing = [n for n in names if n not in cache]  # a hook that exists but never fires
    if missing:
        raise NotImplementedError(
            f"model: {model.name} does not provide {missing[0]}; the entropy bound needs the "
            "per-position (rotated) q and k"
        )
    n_pos = tokens.shape[1]
    causal = bool(model.is_causal)
    visible = np.tril(np.ones((n_pos, n_pos), bool)) if causal else np.ones((n_pos, n_pos), bool)
    n_keys = visible.sum(-1)  # [T]
    several = n_keys > 1  # a one-key row (BOS) has entropy 0 = bound: not a check
    rows = []
    for layer in range(model.n_layers):
        norm_kind, eps = weights.input_norm(model, layer)
        resid = _f64(cache[f"blocks.{layer}.hook_resid_pre"][0])  # [pos, d_model]
        x = np.concatenate([weights.normalise(resid, norm_kind, eps)[0], np.ones((n_pos, 1))], 1)
        input_factor = _input_norms(x, causal, rotary)  # [T]
        base = f"blocks.{layer}.attn."
        q, k = rotated_qk(model, cache, layer)  # [pos, head, d_head], [pos, kv, d_head]
        k = np.repeat(k, model.n_heads // k.shape[1], axis=1)  # [pos, head, d_head]
        logits = np.einsum("qhd,khd->hqk", q, k) * logit_scale(model, layer)  # [head, q, k]
        pattern = _f64(cache[base + "hook_pattern"][0])  # [head, query, key]
        shifted = np.where(visible, logits - logits.max(-1, keepdims=True), -np.inf)
        soft = np.exp(shifted) / np.exp(shifted).sum(-1, keepdims=True)  # [head, q, k]
        entropy = bm.row_entropy(pattern)  # [head, query]
        for head in range(model.n_heads):
            error = float(np.abs(soft[head] - pattern[head]).max())
            if error > PATTERN_TOLERANCE:
                raise ValueError(
                    f"model: {model.name} {Head(layer, head)} logits do not reproduce "
                    f"hook_pattern (max error {error:.2e}); refusing to report a bound"
                )
            masked = np.where(visible, logits[head], 0.0)  # [query, key]
            full = np.linalg.norm(masked, 2)
            sigmas = {
                "paper": sigma_w[layer, head] * input_factor,
                "logits": bm.prefix_spectral_norms(masked) if causal else np.full(n_pos, full),
                "row": bm.row_sigma(logits[head], visible),
            }
            row = {"layer": layer, "head": head, "entropy": entropy[head].mean()}
            for name, sigma in sigmas.items():
                bound = bm.entropy_lower_bound(sigma, n_keys)  # [query]
                row[f"bound_{name}"] = bound.mean()
                gap = (entropy[head] - bound)[several]  # [query rows with >1 key]
                row[f"margin_{name}"] = gap.min() if gap.size else np.nan
            row.update(
                sigma_paper=sigmas["paper"][-1],
                sigma_logits=full,
                n_queries=int(several.sum()),
                pattern_error=error,
            )
            rows.append(row)
    return rows


def prompt_bounds(model: Model, texts: list[str]) -> tuple[pd.DataFrame, bool]:
    """Per prompt and head (one checkpoint): entropy, bounds, sigmas, margins; and `rotary`."""
    sigma_w, rotary = _sigma_weights(model)
    frames = []
    for i, text in enumerate(texts):
        tokens = model.to_tokens(text)  # [1, pos]
        if tokens.shape[1] > model.n_ctx:
            raise ValueError(
                f"texts: item {i} has {tokens.shape[1]} tokens > context {model.n_ctx}"
            )
        frames.append(pd.DataFrame(_prompt_rows(model, tokens, sigma_w, rotary)).assign(prompt=i))
    return pd.concat(frames, ignore_index=True), rotary


def _default_texts(model: Model) -> list[str]:
    from analysis.anatomy.probe_data import natural_texts

    return natural_texts(model, n=4)


def entropy_bound(
    model: Model, *, texts: list[str] | None = None, history: bool = True
) -> EntropyBound:
    """Check measured entropy >= sigma-Reparam's bound per head, prompt and checkpoint.

    Args:
        texts: prompts (default: four IOI-template English sentences that fit the context).
        history: also check every training snapshot under `<checkpoint>/history/`.
    """
    texts = _default_texts(model) if texts is None else check_texts(texts)
    for i, text in enumerate(texts):  # before any snapshot is loaded
        if model.to_tokens(text).shape[1] > model.n_ctx:
            raise ValueError(f"texts: item {i} does not fit the context of {model.n_ctx} tokens")
    frames, notes, rotary = [], [], False
    for point in checkpoints(model, history=history):
        if point.note:
            notes.append(point.note)
        frame, rotary = prompt_bounds(point.model, texts)
        frames.append(frame.assign(checkpoint=point.label, step=point.step))
    if rotary:
        notes.append("RoPE: the paper-form sigma uses scale ||W_Q|| ||W_K|| ||X||_2 ||X||_F")
    table = pd.concat(frames, ignore_index=True)
    first = ["checkpoint", "step", "prompt", "layer", "head"]
    return EntropyBound(
        model_name=model.name,
        table=table[first + [c for c in table if c not in first]],
        rotary=rotary,
        texts=texts,
        notes=notes,
    )


__all__ = ["BOUNDS", "EntropyBound", "entropy_bound", "logit_scale", "prompt_bounds"]
