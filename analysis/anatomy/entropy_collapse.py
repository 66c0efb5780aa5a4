"""Entropy-collapse view: per-head attention entropy against the QK spectral norm.

After Zhai et al. 2023, "Stabilizing Transformer Training by Preventing Attention Entropy
Collapse": heads whose logit scale `sigma_max(W_Q W_K^T) / sqrt(d_head)` grows tend to have low
attention entropy. `entropy_collapse(model)` measures, for the model and (by default) for every
training snapshot the zoo saved under `<checkpoint>/history/step-NNNNNN.safetensors`
(`workbench/zoo/train.py`), each head's mean attention entropy on natural text (nats, from
`analysis.statistics.attention_stats`) and its QK spectral norm (float64 raw HF weights,
pre-attention norm gain folded: see `workbench.adapters.weights`; position-free on RoPE
models). That rank correlation is descriptive only. The paper's actual statement, a lower bound
on each query row's entropy from the spectral norm of the attention logits *with the input
norm*, is checked per prompt in `analysis.training_dynamics.entropy_bound`; this table carries
its per-head summary on the same texts: `bound_paper` / `bound_logits` / `bound_row` (mean bound
over query rows and prompts, in the three sigma forms documented there) and `min_margin` (the
smallest `entropy - bound_logits` over every row; >= 0 when the theorem holds).

Families: every family `workbench.adapters.weights` supports. The bound reads each head's
rotated q and k through `analysis.training_dynamics.rotated_qk` (the bridge's `hook_rot_q/k`
where they fire, else `hook_q/k` rotated with the model's own cos/sin: GPT-NeoX, Phi-3, GPT-J,
Falcon), and refuses (ValueError) when those logits do not reproduce the model's pattern, e.g.
Gemma-2's soft-capped, windowed scores. The entropies are checked against transformers' eager
attention per family (tests/integration/analysis/anatomy/test_entropy_collapse_families.py).

Snapshots are loaded into a fresh HF model built from the checkpoint folder, then wrapped in
their own bridge (the shared model is never touched); every weight a snapshot holds (biases
included) replaces the final one. Caveats: snapshots are stored in float16; a snapshot that
lacks a trained parameter (one written by an older train.py, whose name filter dropped GPT-2's
`attn.c_attn.bias`) keeps the final checkpoint's value for it, and the result lists such names
in `notes`. `entropy_collapse_view` is the deprecated former name of `entropy_collapse`.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from analysis.anatomy import probe_data as data
from analysis.anatomy.label_placement import label_positions
from analysis.anatomy.linalg import factored_svd
from analysis.training_dynamics.entropy_bound import prompt_bounds
from workbench.adapters import weights
from workbench.adapters.snapshots import model_with_weights
from workbench.heads import Head
from workbench.results import Result

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.model import Model


@dataclass(frozen=True)
class EntropyCollapse(Result):
    """Per-head entropy and QK spectral norm at each checkpoint (see module docstring)."""

    kind: ClassVar[str] = "entropy_collapse"
    plot_kinds: ClassVar[tuple[str, ...]] = ("scatter", "trajectories")
    model_name: str
    table: pd.DataFrame  # checkpoint, step, layer, head, entropy, spectral_norm, bound_*, ...
    correlations: dict  # checkpoint -> Spearman rho(entropy, spectral_norm)
    weights_note: str
    notes: list = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        return self.table

    def plot(self, kind: str | None = "scatter", **kwargs: Any) -> go.Figure:
        """`scatter` (last checkpoint, one point per head) or `trajectories` (each head's path
        through the checkpoints in (spectral norm, entropy) space)."""
        import plotly.graph_objects as go

        df = self.table
        if kind in (None, "scatter"):
            last = df[df.checkpoint == df.checkpoint.iloc[-1]]
            fig = go.Figure()
            where = pd.Series(
                label_positions(
                    last.spectral_norm,
                    last.entropy,
                    [str(Head(r.layer, r.head)) for r in last.itertuples()],
                ),
                last.index,
            )  # [head] plotly textposition chosen to avoid overprinting
            for layer, part in last.groupby("layer", sort=True):
                labels = [str(Head(r.layer, r.head)) for r in part.itertuples()]
                fig.add_scatter(
                    x=part.spectral_norm,
                    y=part.entropy,
                    mode="markers+text",
                    name=f"layer {layer}",
                    text=labels,
                    textposition=where[part.index].tolist(),
                    textfont={"size": 10},
                    marker={"size": 9},
                    hovertemplate="%{text}: norm %{x:.3f}, entropy %{y:.3f}<extra></extra>",
                )
            title = f"{self.model_name} ({last.checkpoint.iloc[0]}): entropy vs QK spectral norm"
        elif kind == "trajectories":
            fig = go.Figure()
            for (layer, head), part in df.groupby(["layer", "head"], sort=True):
                fig.add_scatter(
                    x=part.spectral_norm,
                    y=part.entropy,
                    mode="lines+markers",
                    name=str(Head(layer, head)),
                    text=part.checkpoint,
                    marker={"size": np.linspace(5, 12, len(part))},  # grows with training
                    hovertemplate=f"{Head(layer, head)} %{{text}}: norm %{{x:.3f}}, "
                    "entropy %{y:.3f}<extra></extra>",
                )
            title = (
                f"{self.model_name}: entropy vs QK spectral norm across training"
                " (markers grow with the step)"
            )
        else:
            raise ValueError(
                f"kind: unknown plot kind {kind!r}; choose 'scatter' or 'trajectories'"
            )
        fig.update_layout(
            title=title,
            xaxis_title="σ<sub>max</sub>(W<sub>Q</sub>W<sub>K</sub><sup>T</sup>) / √d<sub>head</sub>",
            yaxis_title="mean attention entropy (nats)",
            height=460,
            margin={"t": 60, "l": 70, "r": 20, "b": 50},
            **kwargs,
        )
        return fig


def _spectral_norms(model: Model) -> np.ndarray:
    """`[layer, head]` QK spectral norms sigma_max(W_Q W_K^T) / sqrt(d_head), float64."""
    out = np.zeros((model.n_layers, model.n_heads))
    for layer in range(model.n_layers):
        for head in range(model.n_heads):
            w = weights.head_weights(model, layer, head)
            out[layer, head] = factored_svd(w.W_Q[:-1], w.W_K[:-1].T)[1][0] / np.sqrt(w.d_head)
    return out


def _mean_entropy(model: Model, texts: list[str]) -> np.ndarray:
    from analysis.statistics.attention_stats import attention_stats

    per_head = attention_stats(model, texts, stats=("entropy",)).per_head()
    return per_head.entropy.to_numpy().reshape(model.n_layers, model.n_heads)


def _snapshots(model: Model) -> list[tuple[int, Path]]:
    history = Path(model.path or "") / "history"
    if not model.path or not history.is_dir():
        return []
    found = []
    for path in history.glob("step-*.safetensors"):
        match = re.fullmatch(r"step-(\d+)\.safetensors", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def entropy_collapse(
    model: Model, *, texts: list[str] | None = None, history: bool = True, progress: bool = False
) -> EntropyCollapse:
    """Mean attention entropy vs QK spectral norm per head, for the model and its snapshots.

    Args:
        texts: prompts for the entropy (default: IOI-template English,
            `analysis.anatomy.probe_data`).
        history: also measure the training snapshots under `<checkpoint>/history/` (zoo models).
    """
    texts = data.natural_texts(model) if texts is None else data.check_texts(texts)
    checkpoints = _snapshots(model) if history else []
    rows, notes, correlations = [], [], {}
    entries = [*checkpoints, (None, None)]
    for step, path in tqdm(entries, desc="checkpoints", disable=not progress):
        if path is None:
            recipe = (model.card or {}).get("recipe") or {}
            current, label, number = model, "final", int(recipe.get("steps", -1))
        else:
            current, missing = model_with_weights(model, path, name=f"{model.name}@step{step}")
            label, number = f"step {step}", step
            if missing:
                notes.append(f"{path.name}: kept the final checkpoint's {', '.join(missing)}")
        entropy, norms = _mean_entropy(current, texts), _spectral_norms(current)
        frame = pd.DataFrame(
            {
                "checkpoint": label,
                "step": number,
                "layer": np.repeat(np.arange(model.n_layers), model.n_heads),
                "head": np.tile(np.arange(model.n_heads), model.n_layers),
                "entropy": entropy.ravel(),
                "spectral_norm": norms.ravel(),
            }
        )
        bounds = prompt_bounds(current, texts)[0].groupby(["layer", "head"], sort=True)
        for form in ("paper", "logits", "row"):
            frame[f"bound_{form}"] = bounds[f"bound_{form}"].mean().to_numpy()
        frame["min_margin"] = bounds["margin_logits"].min().to_numpy()
        correlations[label] = float(frame.entropy.corr(frame.spectral_norm, method="spearman"))
        rows.append(frame)
    return EntropyCollapse(
        model_name=model.name,
        table=pd.concat(rows, ignore_index=True),
        correlations=correlations,
        weights_note=weights.WEIGHTS_NOTE,
        notes=notes,
    )


def entropy_collapse_view(model: Model, **kwargs: Any) -> EntropyCollapse:
    """Deprecated name of `entropy_collapse` (it returns an `EntropyCollapse`, not a view)."""
    warnings.warn(
        "entropy_collapse_view is deprecated; use analysis.entropy_collapse",
        DeprecationWarning,
        stacklevel=2,
    )
    return entropy_collapse(model, **kwargs)
