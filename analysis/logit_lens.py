"""Logit lens (nostalgebraist, 2020): what each layer's residual stream would predict if the
model stopped there.

`logit_lens(model, prompt, *, position=-1, k=5, target=None, task=None) -> LogitLens`, one
forward pass caching the residual stream at one position before every block (`resid_pre`,
the bridge's `blocks.{l}.hook_in`) and after the last one (`resid_post`, `blocks.{L-1}.hook_out`).
Each of those `L + 1` vectors goes through the model's OWN final norm (gain, bias, eps probed
from the module, float64) and unembedding (plus its bias): `logits_l = ln_final(x_l) @ W_U + b_U`,
softmax in float64. The last row is the model's own next-token logits (checked on every call:
a family whose logits are not `ln_final(x) @ W_U + b_U`, e.g. with soft-capping, is refused
with `NotImplementedError` rather than shown wrong).

Reported per layer: the top-k tokens with probabilities and the probability and rank (0 = the
top token) of one target token: `target` when given (a string that is one token), else with
`task="ioi"` on an IOI sentence the indirect object, else the model's final top-1 at
`position`.

Decoders only: encoders (MiniLM) are refused, their masked-LM head is untrained in the bundled
checkpoint. `lens_logits` gives the full `[L + 1, d_vocab]` float64 matrix (tests compare it
with transformers' `output_hidden_states` and TransformerLens' `accumulated_resid`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from workbench.results import Result

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from workbench.model import Model

MAX_K = 20
FINAL_TOLERANCE = 1e-3  # refuse when the last lens row is further than this from the logits


@dataclass(frozen=True)
class LogitLens(Result):
    """Top-k tokens and one target's probability/rank from every layer's residual stream."""

    kind: ClassVar[str] = "logit_lens"
    plot_kinds: ClassVar[tuple[str, ...]] = ("target", "top_tokens")

    model_name: str
    prompt: str
    position: int  # non-negative index into the prompt's tokens
    token: str  # the token at `position`
    streams: list[str]  # [L + 1] "resid_pre 0", ..., "resid_post L-1"
    top_tokens: list[list[str]]  # [L + 1][k]
    top_ids: np.ndarray  # [L + 1, k]
    top_probs: np.ndarray  # [L + 1, k]
    target: str
    target_id: int
    target_source: str  # "given", "ioi: indirect object" or "final top-1"
    target_probs: np.ndarray  # [L + 1]
    target_ranks: np.ndarray  # [L + 1], 0 = top token

    def to_frame(self) -> pd.DataFrame:
        """One row per (layer, rank): the stream, token, probability, and the target's numbers."""
        import pandas as pd

        rows = [
            {
                "layer": layer,
                "stream": stream,
                "rank": rank,
                "token": self.top_tokens[layer][rank],
                "token_id": int(self.top_ids[layer, rank]),
                "probability": float(self.top_probs[layer, rank]),
                "target": self.target,
                "target_probability": float(self.target_probs[layer]),
                "target_rank": int(self.target_ranks[layer]),
            }
            for layer, stream in enumerate(self.streams)
            for rank in range(self.top_ids.shape[1])
        ]
        return pd.DataFrame(rows)

    def plot(self, kind: str | None = None, **kwargs: Any) -> go.Figure:
        """`"target"`: the target's probability per layer; `"top_tokens"`: top-k per layer."""
        import plotly.graph_objects as go

        from analysis.statistics.attention_pattern import visible_token

        kind = self.plot_kinds[0] if kind is None else kind
        layers = list(range(len(self.streams)))
        where = f"position {self.position} ({visible_token(self.token)})"
        if kind == "target":
            fig = go.Figure(
                go.Scatter(
                    x=layers,
                    y=self.target_probs,
                    mode="lines+markers",
                    customdata=np.stack([self.target_ranks, layers], axis=1),
                    text=self.streams,
                    hovertemplate="%{text}: p = %{y:.4f}, rank %{customdata[0]}<extra></extra>",
                )
            )
            fig.update_layout(
                title={"text": f"logit lens: p({visible_token(self.target)}) at {where}"},
                xaxis={
                    "title": {"text": "layer (residual stream before block; last = output)"},
                    "tickmode": "array",
                    "tickvals": layers,
                    "ticktext": [str(i) for i in layers],
                },
                yaxis={"title": {"text": "probability (0-1)"}, "range": [0, 1.02]},
                height=320,
                template="plotly_white",
            )
            return fig
        if kind != "top_tokens":
            raise ValueError(f"kind: {kind!r} is not one of {', '.join(self.plot_kinds)}")
        k = self.top_ids.shape[1]
        text = [[visible_token(t) for t in row] for row in self.top_tokens]
        fig = go.Figure(
            go.Heatmap(
                z=self.top_probs,
                x=list(range(k)),
                y=layers,
                text=text,
                texttemplate="%{text}",
                zmin=0.0,
                zmax=1.0,
                colorscale="Blues",
                colorbar={"title": {"text": "probability (0-1)"}},
                hovertemplate="layer %{y}, rank %{x}: %{text} p = %{z:.4f}<extra></extra>",
            )
        )
        fig.update_layout(
            title={"text": f"logit lens: top {k} tokens per layer at {where}"},
            xaxis={"title": {"text": "rank"}, "dtick": 1},
            yaxis={"title": {"text": "layer"}, "dtick": 1, "autorange": "reversed"},
            height=max(260, 34 * len(layers) + 140),
            template="plotly_white",
        )
        return fig


def _check_position(position: Any, n_tokens: int) -> int:
    if isinstance(position, bool) or not isinstance(position, int | np.integer):
        raise ValueError(f"position: {position!r} is not an integer")
    if not -n_tokens <= position < n_tokens:
        raise ValueError(
            f"position: {position} is out of range for a {n_tokens}-token prompt "
            f"({-n_tokens} to {n_tokens - 1})"
        )
    return int(position) % n_tokens


def lens_logits(model: Model, prompt: str, position: int = -1) -> tuple[np.ndarray, Any, int]:
    """`(logits [L + 1, d_vocab] float64, tokens [1, pos], position)` of the logit lens.

    Raises `ValueError` for an encoder or a bad position, `NotImplementedError` when the last
    row does not reproduce the model's own logits.
    """
    import torch

    from workbench.adapters.modules import hf_module
    from workbench.adapters.weight_probes import probe_norm
    from workbench.adapters.weights import normalise

    if not model.is_causal:
        raise ValueError(
            f"logit lens: {model.name} is an encoder; its masked-LM head is untrained in this "
            "checkpoint, so its layers predict nothing meaningful"
        )
    tokens = model.to_tokens(prompt)  # [1, pos]
    position = _check_position(position, tokens.shape[1])
    last = model.n_layers - 1
    names = [f"blocks.{layer}.hook_in" for layer in range(model.n_layers)]
    names.append(f"blocks.{last}.hook_out")
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens, names=names)
    resid = np.stack([cache[name][0, position].double().numpy() for name in names])  # [L+1, d]
    norm = probe_norm(hf_module(model.bridge, "ln_final"), model.d_model)
    unembed = hf_module(model.bridge, "unembed")
    w_u = unembed.weight.detach().to("cpu", torch.float64).numpy().T  # [d_model, d_vocab]
    x_norm, _ = normalise(resid, norm["norm"], norm["eps"])  # [L+1, d_model]
    lens = (norm["gain"] * x_norm + norm["beta"]) @ w_u  # [L+1, d_vocab]
    if getattr(unembed, "bias", None) is not None:
        lens = lens + unembed.bias.detach().to("cpu", torch.float64).numpy()  # [L+1, d_vocab]
    own = logits[0, position].double().numpy()  # [d_vocab]
    off = float(np.abs(lens[-1] - own).max())
    if off > FINAL_TOLERANCE * max(1.0, float(np.abs(own).max())):
        raise NotImplementedError(
            f"logit lens: {model.name}'s logits are not ln_final(x) @ W_U + b_U "
            f"(off by {off:.1e}, e.g. soft-capped), so the lens would be wrong"
        )
    return lens, tokens, position


def _target_id(model: Model, prompt: str, target: Any, task: Any) -> tuple[int | None, str]:
    from analysis.prediction import ioi_names
    from workbench.tasks.ioi import single_token_id

    if target is not None:
        if not isinstance(target, str) or not target:
            raise ValueError(f"target: {target!r} is not a token string")
        ids = model.tokenizer.encode(target, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"target: {target!r} is not one token for {model.name}")
        return int(ids[0]), "given"
    if task not in (None, "ioi"):
        raise ValueError(f"task: {task!r} is not one of ioi (or none)")
    pair = ioi_names(model, prompt) if task == "ioi" else None
    if pair is not None:
        found = single_token_id(model.tokenizer, pair[0])
        if found is not None:
            return int(found), "ioi: indirect object"
    return None, "final top-1"


def logit_lens(
    model: Model,
    prompt: str,
    *,
    position: int = -1,
    k: int = 5,
    target: str | None = None,
    task: str | None = None,
) -> LogitLens:
    """Logit lens at `position` of `prompt` (module docstring).

    Raises `ValueError` for an encoder, a bad position, `k`, target or task.
    """
    import torch

    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k: {k!r} is out of range (1-{MAX_K})")
    target_id, source = _target_id(model, prompt, target, task)
    lens, tokens, position = lens_logits(model, prompt, position)
    probs = torch.softmax(torch.from_numpy(lens), dim=-1)  # [L+1, d_vocab] float64
    top = torch.topk(probs, k, dim=-1)
    if target_id is None:
        target_id = int(top.indices[-1, 0])
    if not 0 <= target_id < lens.shape[1]:
        raise ValueError(f"target: token id {target_id} is outside the vocabulary")
    target_probs = probs[:, target_id]  # [L+1]
    ranks = (probs > target_probs[:, None]).sum(dim=-1)  # [L+1]
    decode = model.tokenizer.decode
    n_layers = model.n_layers
    streams = [f"resid_pre {layer}" for layer in range(n_layers)]
    streams.append(f"resid_post {n_layers - 1}")
    return LogitLens(
        model_name=model.name,
        prompt=prompt,
        position=position,
        token=decode([int(tokens[0, position])]),
        streams=streams,
        top_tokens=[[decode([int(i)]) for i in row] for row in top.indices],
        top_ids=top.indices.numpy(),
        top_probs=top.values.numpy(),
        target=decode([target_id]),
        target_id=target_id,
        target_source=source,
        target_probs=target_probs.numpy(),
        target_ranks=ranks.numpy(),
    )


__all__ = ["MAX_K", "LogitLens", "lens_logits", "logit_lens"]
