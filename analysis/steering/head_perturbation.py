"""Perturbations of chosen attention heads: SoftPAG pattern interpolation and head ablation.

`HeadPerturbation(heads=..., method=..., u=..., tau=...)` describes one perturbation;
`.hooks(model)` turns it into hook functions for `model.intervene(...)` and
`perturbed(model, perturbation)` is the matching context manager.

Pattern methods act on `blocks.L.attn.hook_pattern` `[batch, head, query, key]` with the SoftPAG
interpolation `A <- (1 - u) A + u T` (Ahn et al.'s perturbed-attention guidance, softened as in
HeadHunter/SoftPAG), where the target `T` is:

- `identity`: each query attends only to itself (`T = I`);
- `uniform`: equal weight on every visible key (causal prefix for decoders; non-padding keys
  for encoders when an `attention_mask` is given);
- `mean_query`: the mean of the head's own rows. Causality is kept by averaging each row `i`
  over the valid query rows `j <= i` only (a running mean): every such row `A_j` lives on keys
  `<= j <= i`, so the mean is a valid causal row without renormalisation. Encoders average over
  all non-padding query rows;
- `temperature`: `softmax(log(A) / tau)` over the keys where `A > 0`, which equals
  `softmax(scores / tau)` on the visible keys (keys whose weight underflowed to exactly 0 stay
  excluded). `tau > 1` flattens a head, `tau < 1` sharpens it.

Every target is a valid attention row (non-negative, sums to 1, causal, no padding keys), so
the interpolation is too. `u = 0` leaves the pattern bit-for-bit unchanged.

Ablation methods act on `blocks.L.attn.hook_z` `[batch, pos, head, d_head]`: `zero` sets the
head's output to 0, `mean` replaces it by its mean over the batch and positions of the same
forward pass (or of `reference_tokens` when given; decoders' right padding is included in the
per-forward mean).

Caveat: some bridges (BERT, so MiniLM) delegate attention to the HuggingFace module and fire
`hook_pattern` after it ran, so pattern edits cannot reach the output. `.hooks()` detects that
with a tiny probe forward and, for those layers, rebuilds the pattern as
softmax(q k^T / sqrt(d_head)) from `hook_q`/`hook_k` (with `attention_mask` for padding), checks
that it reproduces `hook_z`, and adds `u (T - A) v` to the chosen heads' `hook_z` instead. A
model whose attention is not plain scaled dot-product (relative position biases, other scales)
fails that check with a `ValueError`.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from workbench.heads import Head, parse_heads

if TYPE_CHECKING:
    from workbench.model import Model

PATTERN_METHODS = ("identity", "uniform", "mean_query", "temperature")
ABLATION_METHODS = ("zero", "mean")
METHODS = PATTERN_METHODS + ABLATION_METHODS


def pattern_hook_name(layer: int) -> str:
    """The TransformerBridge hook holding layer `layer`'s attention pattern."""
    return f"blocks.{layer}.attn.hook_pattern"


def z_hook_name(layer: int) -> str:
    """The hook holding layer `layer`'s per-head attention outputs (z)."""
    return f"blocks.{layer}.attn.hook_z"


def visible_keys(
    n_query: int,
    n_key: int,
    *,
    causal: bool,
    key_mask: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Boolean `[batch or 1, 1, query, key]` mask of the keys each query may attend to."""
    query = torch.arange(n_query, device=device)[:, None]  # [query, 1]
    key = torch.arange(n_key, device=device)[None, :]  # [1, key]
    offset = n_key - n_query  # queries are the last n_query positions (no KV cache: 0)
    vis = (key <= query + offset) if causal else torch.ones(n_query, n_key, dtype=torch.bool)
    vis = vis.to(device)[None, None]  # [1, 1, query, key]
    if key_mask is not None:
        vis = vis & key_mask.to(device=device, dtype=torch.bool)[:, None, None, :]
    return vis


def target_pattern(
    pattern: torch.Tensor,
    method: str,
    *,
    causal: bool,
    key_mask: torch.Tensor | None = None,
    tau: float = 2.0,
) -> torch.Tensor:
    """The SoftPAG target `T` `[batch, head, query, key]` for `pattern` (see module docstring).

    Rows whose query has no visible key of its own (padding queries of an encoder) keep `A`.
    """
    if method not in PATTERN_METHODS:
        raise ValueError(
            f"method: {method!r} is not a pattern target; choose from {PATTERN_METHODS}"
        )
    _, _, n_query, n_key = pattern.shape
    vis = visible_keys(n_query, n_key, causal=causal, key_mask=key_mask, device=pattern.device)
    vis_f = vis.to(pattern.dtype)  # [batch or 1, 1, query, key]
    n_vis = vis_f.sum(-1, keepdim=True)  # [batch or 1, 1, query, 1]
    if method == "identity":
        query = torch.arange(n_query, device=pattern.device)[:, None] + (n_key - n_query)
        eye = (torch.arange(n_key, device=pattern.device)[None, :] == query).to(pattern.dtype)
        target = eye[None, None] * vis_f  # [batch or 1, 1, query, key]: key == query position
        self_visible = target.sum(-1, keepdim=True) > 0  # [batch or 1, 1, query, 1]
        return torch.where(self_visible, target, pattern).expand_as(pattern)
    if method == "uniform":
        uniform = vis_f / n_vis.clamp_min(1)  # [batch or 1, 1, query, key]
        return torch.where(n_vis > 0, uniform, pattern).expand_as(pattern)
    if method == "temperature":
        if not tau > 0:
            raise ValueError(f"tau: temperature must be > 0, got {tau}")
        log_p = torch.where(pattern > 0, pattern.log(), -math.inf)  # [batch, head, query, key]
        return torch.softmax(log_p / tau, dim=-1)
    return _mean_query_target(pattern, causal=causal, key_mask=key_mask, vis_f=vis_f)


def _mean_query_target(
    pattern: torch.Tensor, *, causal: bool, key_mask: torch.Tensor | None, vis_f: torch.Tensor
) -> torch.Tensor:
    """Each row replaced by the mean of the valid query rows it may see (see module docstring)."""
    batch, _, n_query, n_key = pattern.shape
    if key_mask is None:
        valid_q = torch.ones(batch, n_query, device=pattern.device, dtype=pattern.dtype)
    else:
        valid_q = key_mask[:, n_key - n_query :].to(pattern.device, pattern.dtype)  # [batch, query]
    weights = valid_q[:, None, :, None]  # [batch, 1, query, 1]
    if causal:
        summed = (pattern * weights).cumsum(dim=2)  # [batch, head, query, key]
        counts = weights.cumsum(dim=2)  # [batch, 1, query, 1]
        mean = summed / counts.clamp_min(1)
        return torch.where(counts > 0, mean, pattern)
    mean = (pattern * weights).sum(2, keepdim=True) / weights.sum(2, keepdim=True).clamp_min(1)
    mean = mean * vis_f  # [batch, head, query, key]: drop padding keys (already ~0)
    total = mean.sum(-1, keepdim=True)  # [batch, head, query, 1]
    return torch.where(total > 0, mean / total.clamp_min(1e-30), pattern)


def soft_perturb(
    pattern: torch.Tensor,
    method: str,
    u: float,
    *,
    causal: bool,
    key_mask: torch.Tensor | None = None,
    tau: float = 2.0,
) -> torch.Tensor:
    """SoftPAG interpolation `(1 - u) A + u T` of a `[batch, head, query, key]` pattern."""
    target = target_pattern(pattern, method, causal=causal, key_mask=key_mask, tau=tau)
    return (1.0 - u) * pattern + u * target


@dataclass(frozen=True)
class HeadPerturbation:
    """A perturbation of `heads` (`Head`s, or anything `parse_heads` reads: `"L1H0, L1H3"`,
    `[(1, 0)]`); see the module docstring for methods.

    `u` (in [0, 1]) is the SoftPAG strength for pattern methods and the ablation strength
    (`z <- (1-u) z + u z_ablated`) for ablations.
    """

    heads: tuple[Head, ...]
    method: str = "identity"
    u: float = 1.0
    tau: float = 2.0
    reference_tokens: torch.Tensor | None = None  # [batch, pos] for method="mean"

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", parse_heads(self.heads))
        if self.method not in METHODS:
            raise ValueError(f"method: unknown perturbation {self.method!r}; choose from {METHODS}")
        if not 0.0 <= float(self.u) <= 1.0:
            raise ValueError(f"u: perturbation strength must be in [0, 1], got {self.u}")
        if not self.tau > 0:
            raise ValueError(f"tau: temperature must be > 0, got {self.tau}")

    def by_layer(self) -> dict[int, list[int]]:
        """The perturbed heads grouped by layer: {layer: sorted head indices}."""
        layers: dict[int, list[int]] = {}
        for layer, head in self.heads:
            layers.setdefault(layer, []).append(head)
        return {layer: sorted(set(h)) for layer, h in sorted(layers.items())}

    def check(self, model: Model) -> None:
        """Raise `ValueError` for heads outside `model`."""
        for head in self.heads:
            model.check_head(head)

    def hooks(
        self, model: Model, *, attention_mask: torch.Tensor | None = None
    ) -> list[tuple[str, object]]:
        """(hook name, fn) pairs for `model.intervene`. `attention_mask` `[batch, pos]` marks
        real tokens for encoders (padding keys get no weight from the targets)."""
        self.check(model)
        if self.method in ABLATION_METHODS:
            return self._ablation_hooks(model)
        hooks = []
        for layer, heads in self.by_layer().items():
            if pattern_edits_take_effect(model, layer):
                hooks.append(
                    (pattern_hook_name(layer), self._pattern_fn(heads, model, attention_mask))
                )
            else:
                hooks += self._z_route_hooks(layer, heads, model, attention_mask)
        return hooks

    def _z_route_hooks(self, layer: int, heads: list[int], model: Model, attention_mask):
        """For bridges that fire hook_pattern after the HF attention ran (BERT): rebuild the
        pattern from hook_q/hook_k, check that it reproduces hook_z, and add
        `u * (T - A) @ v` to the chosen heads' z (so u = 0 leaves z bit-for-bit unchanged)."""
        seen: dict[str, torch.Tensor] = {}
        index = torch.tensor(heads)

        def keeper(name: str):
            def keep(x: torch.Tensor, *, hook) -> None:
                seen[name] = x  # [batch, pos, head or kv head, d_head]

            return keep

        def rewrite(z: torch.Tensor, *, hook) -> torch.Tensor:
            idx = index.to(z.device)
            group = model.n_heads // seen["hook_k"].shape[2]  # query heads per key/value head
            k, v = (seen[n].repeat_interleave(group, dim=2) for n in ("hook_k", "hook_v"))
            q, k, v = (t.index_select(2, idx).transpose(1, 2) for t in (seen["hook_q"], k, v))
            scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5  # [batch, head, query, key]
            n = scores.shape[-1]
            mask = attention_mask.to(z.device) if attention_mask is not None else None
            vis = visible_keys(n, n, causal=model.is_causal, key_mask=mask, device=z.device)
            pattern = torch.softmax(scores.masked_fill(~vis, -torch.inf), dim=-1)
            old = (pattern @ v).transpose(1, 2)  # [batch, pos, chosen head, d_head]
            if not torch.allclose(old, z.index_select(2, idx), rtol=1e-3, atol=1e-4):
                raise ValueError(
                    f"method: cannot rebuild {model.name}'s layer-{layer} attention from q and k "
                    "(pass attention_mask for padded batches; else use 'zero' or 'mean')"
                )
            target = target_pattern(
                pattern, self.method, causal=model.is_causal, key_mask=mask, tau=self.tau
            )
            shift = ((target - pattern) @ v).transpose(1, 2)  # [batch, pos, chosen head, d_head]
            return z.index_add(2, idx, (self.u * shift).to(z.dtype))

        prefix = f"blocks.{layer}.attn."
        recorders = [(prefix + name, keeper(name)) for name in ("hook_q", "hook_k", "hook_v")]
        return [*recorders, (prefix + "hook_z", rewrite)]

    def _pattern_fn(self, heads: list[int], model: Model, attention_mask: torch.Tensor | None):
        index = torch.tensor(heads)
        causal = model.is_causal

        def perturb_pattern(pattern: torch.Tensor, *, hook) -> torch.Tensor:
            idx = index.to(pattern.device)
            chosen = pattern.index_select(1, idx)  # [batch, chosen head, query, key]
            mask = attention_mask
            if mask is not None and mask.shape[0] != pattern.shape[0]:
                raise ValueError("attention_mask: batch size differs from the model input")
            new = soft_perturb(
                chosen, self.method, self.u, causal=causal, key_mask=mask, tau=self.tau
            )
            return pattern.index_copy(1, idx, new.to(pattern.dtype))

        return perturb_pattern

    def _ablation_hooks(self, model: Model) -> list[tuple[str, object]]:
        reference: dict[int, torch.Tensor] = {}
        if self.method == "mean" and self.reference_tokens is not None:
            names = [z_hook_name(layer) for layer in self.by_layer()]
            with torch.no_grad():
                _, cache = model.run_with_cache(self.reference_tokens, names=names)
            for layer in self.by_layer():
                reference[layer] = cache[z_hook_name(layer)].mean(dim=(0, 1))  # [head, d_head]
        return [
            (z_hook_name(layer), self._ablation_fn(heads, reference.get(layer)))
            for layer, heads in self.by_layer().items()
        ]

    def _ablation_fn(self, heads: list[int], reference: torch.Tensor | None):
        index = torch.tensor(heads)

        def ablate_heads(z: torch.Tensor, *, hook) -> torch.Tensor:
            idx = index.to(z.device)
            chosen = z.index_select(2, idx)  # [batch, pos, chosen head, d_head]
            if self.method == "zero":
                ablated = torch.zeros_like(chosen)
            elif reference is not None:
                ablated = reference.to(z.device, z.dtype)[idx].expand_as(chosen)
            else:
                ablated = chosen.mean(dim=(0, 1), keepdim=True).expand_as(chosen)
            return z.index_copy(2, idx, (1.0 - self.u) * chosen + self.u * ablated)

        return ablate_heads


@contextlib.contextmanager
def perturbed(
    model: Model, perturbation: HeadPerturbation, *, attention_mask: torch.Tensor | None = None
) -> Iterator[Model]:
    """`with perturbed(model, p): ...` runs the body with `p`'s hooks installed."""
    with model.intervene(perturbation.hooks(model, attention_mask=attention_mask)):
        yield model


_PROBED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@torch.no_grad()
def pattern_edits_take_effect(model: Model, layer: int) -> bool:
    """Whether an edit returned by `hook_pattern` at `layer` changes the head outputs (`hook_z`).

    Probed once per (model, layer) with a 4-token forward; the answer is cached."""
    known = _PROBED.setdefault(model, {})
    if layer not in known:
        tokens = torch.arange(2, 6, device=model.device)[None] % model.d_vocab  # [1, pos]
        name, z_name = pattern_hook_name(layer), z_hook_name(layer)
        _, clean = model.run_with_cache(tokens, names=[z_name])

        def flat(pattern: torch.Tensor, *, hook) -> torch.Tensor:
            return target_pattern(pattern, "uniform", causal=model.is_causal)

        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the bridge warns when it discards the edit
            with model.intervene([(name, flat)]):
                _, edited = model.run_with_cache(tokens, names=[z_name])
        known[layer] = not torch.equal(clean[z_name], edited[z_name])
    return known[layer]


__all__ = [
    "ABLATION_METHODS",
    "METHODS",
    "PATTERN_METHODS",
    "HeadPerturbation",
    "parse_heads",
    "pattern_edits_take_effect",
    "perturbed",
    "soft_perturb",
    "target_pattern",
    "visible_keys",
]
