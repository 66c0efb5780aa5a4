"""What a decoder predicts next, and which heads write it: top-k, logit difference, per-head DLA.

`predict(model, prompt, *, k=10, task=None) -> Prediction`, one forward pass caching only
every layer's `attn.hook_z` and the final residual (`blocks.{L-1}.hook_out`):

- top-k next tokens at the last position with their probabilities (softmax in float64);
- a logit DIFFERENCE `logit(target) - logit(baseline)`: with `task="ioi"` and an IOI sentence
  (one single-token name once, another twice) target = the indirect object, baseline = the
  subject ("Karen vs Kevin"); otherwise the top-1 vs the top-2 token (`direction` says which);
- per-head direct logit attribution (DLA) of that difference: head (l, h)'s write at the
  last position, `(z[l, -1, h] - b_V) @ W_O[l, h]` (value bias excluded: it is written
  whatever the head attends to; TransformerLens' convention), through the FINAL norm with its scale frozen at
  this prompt's value (LayerNorm: centred; RMSNorm: not), dotted with the unembedding
  direction `W_U[:, target] - W_U[:, baseline]` (final gain folded in). `rest` is everything
  else that passes the final norm (embeddings, MLPs, attention and value biases), `constant` the final
  norm's bias and the unembedding bias along the direction: `sum(head_dla) + rest + constant`
  equals the logit difference (the test checks that, and the heads against TransformerLens'
  own `direct_logit_attribution` on a compatibility-mode bridge);
- with any other `task`, that task's own metric averaged over `TASK_PROMPTS` of its prompts.

Caveats: decoders only. Encoders (MiniLM) are refused: their masked-LM head is untrained in
the bundled checkpoint, so their "logits" mean nothing. Families with a norm after each
attention output (post-attention norms) are refused: head writes do not add up linearly.
Weights come from `workbench.adapters.weights` (probed, float64); the shared model is never
switched into compatibility mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.heads import Head

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from workbench.model import Model

TASK_PROMPTS = 8
MAX_K = 50


@dataclass(frozen=True)
class Prediction:
    """Next-token prediction of one prompt and the per-head DLA of one logit difference."""

    model: str
    prompt: str
    top_tokens: list[str]
    top_ids: list[int]
    top_probs: np.ndarray  # [k]
    target: str
    baseline: str
    direction: str  # "ioi: IO vs S" or "top-1 vs top-2"
    logit_diff: float
    head_dla: np.ndarray  # [layer, head]
    rest: float
    constant: float
    task_metric: dict[str, Any] | None

    def to_frame(self) -> pd.DataFrame:
        """One row per head: layer, head, the head's name and its DLA."""
        import pandas as pd

        n_layers, n_heads = self.head_dla.shape
        return pd.DataFrame(
            [
                {"layer": la, "head": h, "name": str(Head(la, h)), "dla": self.head_dla[la, h]}
                for la in range(n_layers)
                for h in range(n_heads)
            ]
        )

    def plot(self, kind: str = "dla") -> go.Figure:
        """`"dla"`: layer x head map of the DLA; `"top_k"`: bars of the top-k probabilities."""
        import plotly.graph_objects as go

        from analysis.statistics.attention_pattern import visible_token

        if kind == "top_k":
            labels = [visible_token(t) for t in self.top_tokens]
            fig = go.Figure(
                go.Bar(
                    x=self.top_probs,
                    y=labels,
                    orientation="h",
                    hovertemplate="%{y}: %{x:.2%}<extra></extra>",
                )
            )
            fig.update_layout(
                title={"text": f"{self.model}: next-token probabilities (top {len(labels)})"},
                xaxis={"title": {"text": "probability"}, "tickformat": ".0%"},
                yaxis={"autorange": "reversed", "type": "category"},
                height=max(260, 24 * len(labels) + 110),
                template="plotly_white",
            )
            return fig
        if kind != "dla":
            raise ValueError(f"kind: {kind!r} is not one of dla, top_k")
        bound = float(np.abs(self.head_dla).max()) or 1.0
        n_layers, n_heads = self.head_dla.shape
        fig = go.Figure(
            go.Heatmap(
                z=self.head_dla,
                x=list(range(n_heads)),
                y=list(range(n_layers)),
                colorscale="RdBu",
                zmid=0.0,
                zmin=-bound,
                zmax=bound,
                colorbar={"title": {"text": "logits"}},
                hovertemplate="L%{y}H%{x}: %{z:+.3f} logits<extra></extra>",
            )
        )
        target, baseline = visible_token(self.target), visible_token(self.baseline)
        fig.update_layout(
            title={"text": f"direct logit attribution of {target} − {baseline}, per head"},
            xaxis={"title": {"text": "head"}, "dtick": 1},
            yaxis={"title": {"text": "layer"}, "dtick": 1, "autorange": "reversed"},
            height=max(260, 34 * n_layers + 140),
            template="plotly_white",
        )
        return fig


def ioi_names(model: Model, prompt: str) -> tuple[str, str] | None:
    """(IO, S) of an IOI sentence: the single-token names of `prompt` appearing once and
    twice (exactly one of each), else None."""
    import re

    from workbench.tasks.ioi import single_token_names

    known = set(single_token_names(model.tokenizer))
    words = re.findall(r"[A-Za-z]+", prompt)
    counts = {w: words.count(w) for w in dict.fromkeys(words) if w in known}
    once = [w for w, c in counts.items() if c == 1]
    twice = [w for w, c in counts.items() if c == 2]
    return (once[0], twice[0]) if len(once) == 1 and len(twice) == 1 else None


def _token_id(model: Model, name: str) -> int:
    from workbench.tasks.ioi import single_token_id

    found = single_token_id(model.tokenizer, name)
    if found is None:
        raise ValueError(f"prediction: {name!r} is not one token for {model.name}")
    return found


def predict(model: Model, prompt: str, *, k: int = 10, task: str | None = None) -> Prediction:
    """Top-k next tokens, one logit difference and its per-head DLA (module docstring).

    Raises `ValueError` for an encoder, a bad `k` or prompt, an unknown task.
    """
    import torch

    from workbench.adapters import weights

    if not model.is_causal:
        raise ValueError(
            f"prediction: {model.name} is an encoder; its masked-LM head is untrained in this "
            "checkpoint, so it predicts nothing meaningful"
        )
    if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= MAX_K:
        raise ValueError(f"k: {k!r} is out of range (2-{MAX_K})")
    layout = weights.layout(model)
    if layout.post_attention_norm:
        raise NotImplementedError(
            f"prediction: {layout.family} normalises each attention output, so per-head "
            "writes do not add up to the logits"
        )
    tokens = model.to_tokens(prompt)  # [1, pos]
    final = f"blocks.{model.n_layers - 1}.hook_out"
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.n_layers)] + [final]
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens, names=names)
    last = logits[0, -1].double()  # [d_vocab]
    probs = torch.softmax(last, dim=-1)  # [d_vocab]
    top = torch.topk(probs, k)
    top_ids = top.indices.tolist()
    decode = model.tokenizer.decode

    pair = ioi_names(model, prompt) if task == "ioi" else None
    if pair is not None:
        target_id, baseline_id = _token_id(model, pair[0]), _token_id(model, pair[1])
        direction = "ioi: IO vs S"
    else:
        target_id, baseline_id = top_ids[0], top_ids[1]
        direction = "top-1 vs top-2"

    from workbench.adapters.modules import hf_module
    from workbench.adapters.weight_probes import probe_norm

    norm = probe_norm(hf_module(model.bridge, "ln_final"), model.d_model)
    w_u = weights.unembedding_matrix(model)  # [d_model, d_vocab], final gain folded in
    unembed = w_u[:, target_id] - w_u[:, baseline_id]  # [d_model]
    resid = cache[final][0, -1].double().numpy()  # [d_model]
    x_norm, scale = weights.normalise(resid, norm["norm"], norm["eps"])  # [d_model], [1]
    head_dla = np.zeros((model.n_layers, model.n_heads))
    for layer in range(model.n_layers):
        z = cache[f"blocks.{layer}.attn.hook_z"][0, -1].double().numpy()  # [head, d_head]
        for head in range(model.n_heads):
            w = weights.head_weights(model, layer, head)  # W_O centred on LayerNorm models
            # the value bias (ln1's beta folded in) reaches the output whatever the head
            # attends to (pattern rows sum to 1): it goes to `rest`, as TransformerLens'
            # compatibility mode folds it into b_O
            out = (z[head] - w.W_V[-1]) @ w.W_O  # [d_model]
            head_dla[layer, head] = out @ unembed / scale[0]
    total = float(x_norm @ unembed)
    logit_diff = float(last[target_id] - last[baseline_id])
    return Prediction(
        model=model.name,
        prompt=prompt,
        top_tokens=[decode([i]) for i in top_ids],
        top_ids=top_ids,
        top_probs=top.values.numpy(),
        target=decode([target_id]),
        baseline=decode([baseline_id]),
        direction=direction,
        logit_diff=logit_diff,
        head_dla=head_dla,
        rest=total - float(head_dla.sum()),
        constant=logit_diff - total,
        task_metric=None if task in (None, "ioi") else task_metric(model, task),
    )


def task_metric(model: Model, task: str) -> dict[str, Any]:
    """The task's own metric, mean over `TASK_PROMPTS` of its prompts (seed 0)."""
    from workbench.tasks import make_task

    built = make_task(task, model, n=TASK_PROMPTS)
    values = built.evaluate(model)  # [batch]
    return {
        "task": task,
        "metric": built.metric_name,
        "mean": float(values.mean()),
        "n": int(values.numel()),
    }


__all__ = ["MAX_K", "TASK_PROMPTS", "Prediction", "ioi_names", "predict", "task_metric"]
