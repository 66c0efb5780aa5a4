"""Loss-plateau view of a training run, after Gopalani & Hu 2025 ("What Happens During the Loss
Plateau? Understanding Abrupt Learning in Transformers", arXiv 2506.13688).

`loss_plateau(model)` measures, at every training checkpoint the zoo saved
(`history/step-*.safetensors`, then the final weights; a snapshot at the final step is the final
weights in float16 and is skipped), on held-out data (`plateau_data`):

- `loss`: mean next-token loss on the evaluation sequences. train.py stores no per-step loss
  curve, so the curve is this held-out loss at the snapshot steps only (4-5 points).
- `repetition`: the paper's repetition frequency of greedy outputs: greedily decode
  `new_tokens` tokens from each prompt; the share of consecutive generated tokens that are equal
  (`y[t] == y[t+1]`), averaged over prompts. `data_repetition` is the same rate on the
  evaluation sequences themselves (without BOS): the baseline.
- `cosine` per layer (representation collapse): the mean pairwise cosine similarity of the
  hidden states (`blocks.{l}.hook_resid_post`) at the positions that emitted the generated
  tokens (all pairs i < j), averaged over prompts; as the paper's LLM measurement, which uses
  the last position's hidden state at each generation step (its hidden state is the final one,
  after the final norm; here every layer's residual stream, before that norm).
- `distance` per layer and head (attention progress): the mean total-variation distance
  `0.5 * sum_k |A_ckpt[q, k] - A_final[q, k]|` over query rows (BOS row excluded) and sequences
  between the checkpoint's and the final checkpoint's attention maps. Variant: the paper
  measures progress toward a known optimal map; here the target is the final trained map.

Caveats: with 4 snapshots per run a plateau can be missed between points; the run's own loss
curve was not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import torch

from analysis.training_dynamics.checkpoints import checkpoints, snapshot_files
from analysis.training_dynamics.plateau_data import plateau_data, repetition_rate
from workbench.heads import Head
from workbench.results import Result

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.model import Model


@dataclass(frozen=True)
class LossPlateau(Result):
    """Loss, repetition, representation collapse and attention progress per checkpoint."""

    kind: ClassVar[str] = "loss_plateau"
    plot_kinds: ClassVar[tuple[str, ...]] = ("curves", "collapse", "attention")
    model_name: str
    curve: pd.DataFrame  # checkpoint, step, loss, repetition, data_repetition
    collapse: pd.DataFrame  # checkpoint, step, layer, cosine
    attention: pd.DataFrame  # checkpoint, step, layer, head, distance
    config: dict
    notes: list = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """Long table: checkpoint, step, measure, layer, head (-1 when not per layer/head),
        value."""
        curve = self.curve.melt(
            ["checkpoint", "step"], ["loss", "repetition", "data_repetition"], "measure"
        ).assign(layer=-1, head=-1)
        collapse = self.collapse.rename(columns={"cosine": "value"}).assign(
            measure="cosine", head=-1
        )
        attention = self.attention.rename(columns={"distance": "value"}).assign(measure="distance")
        columns = ["checkpoint", "step", "measure", "layer", "head", "value"]
        return pd.concat([curve[columns], collapse[columns], attention[columns]], ignore_index=True)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "main": self.to_frame(),
            "curve": self.curve,
            "collapse": self.collapse,
            "attention": self.attention,
        }

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers per checkpoint."""
        collapse = self.collapse.pivot(index="step", columns="layer", values="cosine")
        attention = self.attention.groupby("step").distance.mean()
        rows = []
        for r in self.curve.itertuples():
            rows.append(
                {
                    "checkpoint": r.checkpoint,
                    "step": int(r.step),
                    "loss": float(r.loss),
                    "repetition": float(r.repetition),
                    "data_repetition": float(r.data_repetition),
                    "cosine_by_layer": [float(v) for v in collapse.loc[r.step]],
                    "attention_distance_mean": float(attention.loc[r.step]),
                }
            )
        return {
            "model": self.model_name,
            "config": self.config,
            "checkpoints": rows,
            "notes": list(self.notes),
        }

    def plot(self, kind: str | None = "curves", **kwargs: Any) -> go.Figure:
        """`curves`: loss, repetition (data baseline dotted), mean cosine per layer and mean
        attention distance per layer against the step; `collapse`: cosine per layer;
        `attention`: distance to the final map per head."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        if kind in (None, "curves"):
            fig = make_subplots(
                rows=4,
                cols=1,
                shared_xaxes=True,
                subplot_titles=(
                    "held-out loss",
                    "repetition of greedy outputs",
                    "hidden-state cosine (collapse)",
                    "attention distance to final",
                ),
            )
            c = self.curve
            fig.add_scatter(x=c.step, y=c.loss, name="loss", row=1, col=1)
            fig.add_scatter(x=c.step, y=c.repetition, name="repetition", row=2, col=1)
            fig.add_scatter(
                x=c.step, y=c.data_repetition, name="data", line={"dash": "dot"}, row=2, col=1
            )
            for layer, part in self.collapse.groupby("layer"):
                fig.add_scatter(x=part.step, y=part.cosine, name=f"layer {layer}", row=3, col=1)
            mean = self.attention.groupby(["layer", "step"], as_index=False).distance.mean()
            for layer, part in mean.groupby("layer"):
                fig.add_scatter(
                    x=part.step, y=part.distance, name=f"attn layer {layer}", row=4, col=1
                )
            fig.update_xaxes(title_text="training step", row=4, col=1)
            fig.update_layout(title=f"{self.model_name}: loss plateau view", height=820)
        elif kind == "collapse":
            fig = go.Figure()
            for layer, part in self.collapse.groupby("layer"):
                fig.add_scatter(x=part.step, y=part.cosine, mode="lines+markers", name=f"L{layer}")
            fig.update_layout(
                title=f"{self.model_name}: mean pairwise cosine of hidden states",
                xaxis_title="training step",
                yaxis_title="mean cosine similarity",
                height=460,
            )
        elif kind == "attention":
            fig = go.Figure()
            for (layer, head), part in self.attention.groupby(["layer", "head"]):
                fig.add_scatter(
                    x=part.step, y=part.distance, mode="lines+markers", name=str(Head(layer, head))
                )
            fig.update_layout(
                title=f"{self.model_name}: attention distance to the final checkpoint",
                xaxis_title="training step",
                yaxis_title="mean total-variation distance",
                height=460,
            )
        else:
            raise ValueError(
                f"kind: unknown plot kind {kind!r}; choose 'curves', 'collapse' or 'attention'"
            )
        fig.update_layout(margin={"t": 60, "l": 70, "r": 20, "b": 50}, **kwargs)
        return fig


def _greedy(model: Model, prompt: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """`[1, pos + new_tokens]`: the prompt and its greedy continuation."""
    tokens = prompt
    for _ in range(new_tokens):
        logits = model(tokens)  # [1, pos, d_vocab]
        tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return tokens


def _pairwise_cosine(hidden: np.ndarray) -> float:
    """Mean cosine similarity over all pairs i < j of the rows of `[n, d_model]`."""
    unit = hidden / np.linalg.norm(hidden, axis=-1, keepdims=True)
    sims = unit @ unit.T  # [n, n]
    upper = np.triu_indices(len(hidden), k=1)
    return float(sims[upper].mean())


@torch.no_grad()
def _measure(model: Model, data, new_tokens: int) -> tuple[dict, np.ndarray, list]:
    """Loss/repetition, `[layer]` mean cosine and per-sequence `[layer, head, q, k]` maps."""
    losses, reps, cosines = [], [], []
    resid = [f"blocks.{layer}.hook_resid_post" for layer in range(model.n_layers)]
    for prompt in data.prompts:
        full = _greedy(model, prompt, new_tokens)  # [1, pos + new]
        reps.append(repetition_rate(full[0, prompt.shape[1] :]))
        _, cache = model.run_with_cache(full, names=resid)
        where = slice(prompt.shape[1] - 1, full.shape[1] - 1)  # positions emitting new tokens
        cosines.append(
            [_pairwise_cosine(cache[n][0, where].double().numpy()) for n in resid]
        )  # [layer]
    pattern_names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.n_layers)]
    maps = []
    for seq in data.sequences:
        logits, cache = model.run_with_cache(seq, names=pattern_names)
        logprobs = logits[0, :-1].double().log_softmax(-1)  # [pos-1, d_vocab]
        losses.append(-logprobs.gather(-1, seq[0, 1:, None]).mean().item())
        maps.append(np.stack([cache[n][0].double().numpy() for n in pattern_names]))
    numbers = {"loss": float(np.mean(losses)), "repetition": float(np.nanmean(reps))}
    return numbers, np.mean(cosines, axis=0), maps


def loss_plateau(
    model: Model,
    *,
    prompts: list[str] | None = None,
    n: int = 16,
    new_tokens: int = 8,
) -> LossPlateau:
    """Loss-plateau measures at every training checkpoint of `model` (module doc).

    Args:
        prompts: evaluation texts (default: the model's held-out task data, `plateau_data`).
        n: number of default evaluation prompts.
        new_tokens: greedy tokens per prompt for repetition and collapse (at least 2).
    """
    if not model.is_causal:
        raise ValueError(f"model: {model.name} is an encoder; the plateau view needs a decoder")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 512:
        raise ValueError(f"n: expected an integer in [1, 512], got {n!r}")
    if isinstance(new_tokens, bool) or not isinstance(new_tokens, int) or new_tokens < 2:
        raise ValueError(f"new_tokens: expected an integer >= 2, got {new_tokens!r}")
    if not snapshot_files(model):
        raise ValueError(
            f"model: {model.name} has no training history (history/step-*.safetensors)"
        )
    data = plateau_data(model, prompts=prompts, n=n, new_tokens=new_tokens)
    baseline = float(np.nanmean([repetition_rate(s[0, 1:]) for s in data.sequences]))
    curve, collapse, maps, notes = [], [], {}, []
    for point in checkpoints(model, skip_final_snapshot=True):
        if point.note:
            notes.append(point.note)
        numbers, cosine, maps[point.label] = _measure(point.model, data, new_tokens)
        curve.append({"checkpoint": point.label, "step": point.step, **numbers})
        collapse += [
            {"checkpoint": point.label, "step": point.step, "layer": layer, "cosine": value}
            for layer, value in enumerate(cosine)
        ]
    attention = []
    for row in curve:
        for layer in range(model.n_layers):
            for head in range(model.n_heads):
                gaps = [
                    0.5 * np.abs(m[layer, head, 1:] - f[layer, head, 1:]).sum(-1).mean()
                    for m, f in zip(maps[row["checkpoint"]], maps["final"], strict=True)
                ]
                attention.append(
                    {
                        "checkpoint": row["checkpoint"],
                        "step": row["step"],
                        "layer": layer,
                        "head": head,
                        "distance": float(np.mean(gaps)),
                    }
                )
    curve_frame = pd.DataFrame(curve).assign(data_repetition=baseline)
    return LossPlateau(
        model_name=model.name,
        curve=curve_frame,
        collapse=pd.DataFrame(collapse),
        attention=pd.DataFrame(attention),
        config={"n": n, "new_tokens": new_tokens, "data": data.source},
        notes=notes,
    )


__all__ = ["LossPlateau", "loss_plateau"]
