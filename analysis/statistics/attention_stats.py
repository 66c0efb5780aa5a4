"""`attention_stats(model, prompts)`: per-query statistics of every attention head.

One forward pass per batch of prompts with the statistics attention installed in every layer
(`workbench.adapters.statistics_attention`), so no layer materialises an n x n pattern: memory
per layer is
O(n x chunk) on the chunked CPU path and O(n) for the statistics kept. The pass stops at the
last layer's attention output (a hook raises), so no logits are computed. Prompts are tokenised one
by one (so a batch row is exactly the prompt's own tokens), sorted by length, right-padded into
batches of `batch_size`, and the statistics scattered back in the order given.

Caveats:
- Statistics at real positions do not depend on the batch: decoders never see right padding
  (causal), encoders mask it (`key_lengths`). They can still differ from a one-prompt run in the
  last float32 bits, because padded shapes change the summation order.
- The statistics are those of the model's raw HuggingFace attention (RoPE-rotated q/k, grouped
  key/value heads); see `workbench.adapters.statistics_attention` for what fires and what is
  refused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from analysis.statistics.head_stats import SCALAR_COLUMNS, HeadStats
from kernels import STAT_NAMES, AttentionStats, distance_buckets
from workbench.adapters.statistics_attention import statistics_attention
from workbench.model import Model

_HISTOGRAMS = ("distance_hist", "block_mass")


def attention_stats(
    model: Model,
    prompts: str | Sequence[str],
    *,
    backend: str = "auto",
    stats: Iterable[str] | None = None,
    batch_size: int = 8,
    sink_tokens: int = 1,
    mass_block: int = 64,
    progress: bool = False,
) -> HeadStats:
    """Entropy, sink mass, max probability, mean distance, sum p^2, lse (and histograms) of
    every (prompt, layer, head, query), from one statistics-attention forward pass per batch.

    Args:
        model: a loaded `workbench.Model`.
        prompts: one prompt or a list of prompts (each non-empty, within the model's context).
        backend: kernel backend, "auto" (Triton on CUDA, chunked torch on CPU), "triton",
            "chunked", "augmented" (CPU flash kernel plus augmented values; falls back to
            chunked for what it cannot serve exactly) or "reference" (float64 eager, for
            checks).
        stats: statistic names from `kernels.STAT_NAMES`; None -> `kernels.DEFAULT_STATS`
            (every scalar plus "distance_hist"); add "block_mass" for block-mass maps.
        batch_size: prompts per forward pass.
        sink_tokens: `sink` is the mass on the first `sink_tokens` keys.
        mass_block: key-block width of "block_mass".
        progress: show a progress bar over batches.

    Raises:
        ValueError naming the argument: empty prompt list, empty prompt, a prompt longer than
        the context, unknown statistic or backend, bad batch_size / sink_tokens / mass_block.
    """
    prompt_list = _check_prompts(prompts)
    names = _check_stats(stats)
    for arg, value in (
        ("batch_size", batch_size),
        ("sink_tokens", sink_tokens),
        ("mass_block", mass_block),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg}: expected an integer >= 1, got {value!r}")
    _check_backend(backend)
    token_rows = [_prompt_tokens(model, i, p) for i, p in enumerate(prompt_list)]  # [pos] each
    lengths = [len(row) for row in token_rows]
    storage = _Storage(model, lengths, names, mass_block)
    order = sorted(range(len(token_rows)), key=lambda i: lengths[i])
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    with statistics_attention(
        model, backend=backend, stats=names, sink_tokens=sink_tokens, mass_block=mass_block
    ) as attention:
        for batch in tqdm(batches, desc="attention stats", disable=not progress):
            tokens = _pad([token_rows[i] for i in batch], model)  # [batch, pos]
            batch_lengths = torch.tensor([lengths[i] for i in batch], device=tokens.device)
            _forward_through_last_attention(
                model, tokens, _padding_mask(model, tokens, batch_lengths)
            )
            storage.write(batch, attention.take())
    return HeadStats(
        model_name=model.name,
        prompts=prompt_list,
        tokens=[model.to_str_tokens(row) for row in token_rows],
        **storage.tensors,
        config={
            "backend": backend,
            "stats": list(names),
            "sink_tokens": sink_tokens,
            "mass_block": mass_block,
            "batch_size": batch_size,
            "device": str(model.device),
            "is_causal": model.is_causal,
            "n_key_value_heads": model.n_key_value_heads,
        },
    )


class _LastAttentionDone(Exception):
    """Raised from the last layer's attention output hook: nothing after it is needed."""


def _stop(tensor: torch.Tensor, *, hook: Any) -> None:
    raise _LastAttentionDone


def _forward_through_last_attention(
    model: Model, tokens: torch.Tensor, attention_mask: torch.Tensor | None
) -> None:
    """Run the model up to the last layer's attention output, then stop: the last MLP, the
    final norm and the unembedding (a 30k-vocab MLM head on MiniLM) are skipped."""
    last = f"blocks.{model.n_layers - 1}.attn.hook_out"
    hooks = {last: _stop} if last in model.hook_names else {}
    with torch.no_grad(), model.intervene(hooks), contextlib.suppress(_LastAttentionDone):
        model.bridge(tokens, attention_mask=attention_mask)


class _Storage:
    """NaN-filled `[prompt, layer, head, query(, bucket)]` tensors that batches are written into."""

    def __init__(self, model: Model, lengths: list[int], names: tuple[str, ...], mass_block: int):
        self.lengths = lengths
        shape = (len(lengths), model.n_layers, model.n_heads, max(lengths))
        extra = {
            "distance_hist": distance_buckets(max(lengths)),
            "block_mass": -(-max(lengths) // mass_block),
        }
        self.tensors: dict[str, torch.Tensor] = {
            name: torch.full((*shape, extra[name]) if name in extra else shape, torch.nan)
            for name in names
        }

    def write(self, batch: list[int], per_layer: list[AttentionStats]) -> None:
        for layer, layer_stats in enumerate(per_layer):
            for name, target in self.tensors.items():
                values = getattr(layer_stats, name).float().cpu()  # [batch, head, query(, b)]
                for row, prompt in enumerate(batch):
                    n = self.lengths[prompt]
                    if name in _HISTOGRAMS:
                        target[prompt, layer, :, :n] = 0.0  # buckets this batch cannot reach
                        target[prompt, layer, :, :n, : values.shape[-1]] = values[row, :, :n]
                    else:
                        target[prompt, layer, :, :n] = values[row, :, :n]


def _check_prompts(prompts: Any) -> list[str]:
    prompt_list = [prompts] if isinstance(prompts, str) else prompts
    if not isinstance(prompt_list, Sequence) or isinstance(prompt_list, bytes):
        raise ValueError(f"prompts: expected a string or a list of strings, got {prompts!r}")
    if len(prompt_list) == 0:
        raise ValueError("prompts: got an empty list of prompts")
    for i, prompt in enumerate(prompt_list):
        if not isinstance(prompt, str):
            raise ValueError(f"prompts[{i}]: expected a string, got {type(prompt).__name__}")
        if not prompt.strip():
            raise ValueError(f"prompts[{i}]: empty prompt (nothing to tokenise)")
    return list(prompt_list)


def _check_stats(stats: Iterable[str] | None) -> tuple[str, ...]:
    if stats is None:
        from kernels import DEFAULT_STATS

        return tuple(DEFAULT_STATS)
    if isinstance(stats, str):
        stats = [stats]
    wanted = list(stats)
    unknown = [name for name in wanted if name not in STAT_NAMES]
    if unknown:
        raise ValueError(f"stats: unknown statistic(s) {unknown}; choose from {list(STAT_NAMES)}")
    if not wanted:
        raise ValueError("stats: asked for no statistic")
    return tuple(name for name in STAT_NAMES if name in wanted)


def _check_backend(backend: Any) -> None:
    from kernels.contract import BACKENDS

    if backend not in BACKENDS:
        raise ValueError(f"backend: unknown backend {backend!r}; choose from {list(BACKENDS)}")


def _prompt_tokens(model: Model, index: int, prompt: str) -> torch.Tensor:
    try:
        return model.to_tokens(prompt)[0]  # [pos]
    except ValueError as err:
        raise ValueError(f"prompts[{index}]: {str(err).removeprefix('prompt: ')}") from err


def _pad(rows: list[torch.Tensor], model: Model) -> torch.Tensor:
    """Right-pad token rows into `[batch, pos]` with the tokenizer's pad id (0 if it has none)."""
    pad_id = model.tokenizer.pad_token_id
    return torch.nn.utils.rnn.pad_sequence(
        rows, batch_first=True, padding_value=0 if pad_id is None else pad_id
    ).to(model.device)


def _padding_mask(model: Model, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor | None:
    """`[batch, pos]` mask of real tokens for encoders; None for decoders, like `Model.forward`
    (causal attention never lets a real query see right padding)."""
    if model.is_causal:
        return None
    positions = torch.arange(tokens.shape[1], device=tokens.device)  # [pos]
    return (positions[None, :] < lengths[:, None]).long()  # [batch, pos]


__all__ = ["HeadStats", "SCALAR_COLUMNS", "attention_stats"]
