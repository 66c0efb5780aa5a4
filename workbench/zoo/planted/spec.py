"""Circuit specs for the planted-circuit models: what each head and MLP reads and writes.

A spec works in *feature space*: the residual stream is split into named blocks of orthonormal
feature directions (`Layout`), e.g. `tok` (one-hot token identity), `pos` (one-hot position),
`prev` (the previous token, written by a previous-token head). Every component is given as maps
between blocks:

- `Term(q_block, k_block, q_map, k_map)`: one summand of a head's attention score,
  `score(i, j) = x_i[q_block] @ q_map @ k_map.T @ x_j[k_block]` (`q_map` `[q_size, r]`,
  `k_map` `[k_size, r]`; it takes `r` of the head's `d_head` dimensions);
- `Head(layer, head, terms, v_block, v_map, out_block, o_map)`: the OV circuit copies
  `x_j[v_block] @ v_map @ o_map` into `out_block`;
- `Mlp(layer, in_block, out_block, n_hidden, seed)`: a random MLP (distractor);
- `Spec.unembed_block`: the block the logits read (`logit_t = scale * x[unembed_block][t]`).

Llama specs (`architecture="llama"`) have no position embeddings: positional attention is a
`Term` with `rope_offset` set, realised through the rotary embedding (`compile_llama`).

The block `const` holds one large constant (`CONST`) written by the position embeddings: it
keeps LayerNorm's scale fixed (see `workbench.zoo.planted.compile`) and gives heads a
constant to read (attention sinks and masks). Scores are in nats (the compiler undoes GPT-2's
`1/sqrt(d_head)`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

CONST = 1000.0  # magnitude of the constant feature (sets LayerNorm's scale)


@dataclass(frozen=True)
class Layout:
    """Named blocks of feature directions, in order: `(name, size)`."""

    blocks: tuple[tuple[str, int], ...]

    def slice(self, name: str) -> slice:
        start = 0
        for block, size in self.blocks:
            if block == name:
                return slice(start, start + size)
            start += size
        raise ValueError(f"layout: no block named {name!r}")

    def size(self, name: str) -> int:
        return self.slice(name).stop - self.slice(name).start

    @property
    def n_features(self) -> int:
        return sum(size for _, size in self.blocks)


@dataclass(frozen=True, eq=False)
class Term:
    """One summand of an attention score (see module docstring)."""

    q_block: str
    k_block: str
    q_map: torch.Tensor  # [q_size, r]
    k_map: torch.Tensor  # [k_size, r]
    rope_offset: int | None = None  # Llama only: a rotary previous-token term (see compile_llama)


@dataclass(frozen=True, eq=False)
class Head:
    """An attention head: score terms and an OV copy between blocks."""

    layer: int
    head: int
    terms: tuple[Term, ...]
    v_block: str
    v_map: torch.Tensor  # [v_size, r]
    out_block: str
    o_map: torch.Tensor  # [r, out_size]
    role: str = ""  # what it is for, e.g. "previous-token head" or "distractor"


@dataclass(frozen=True)
class Mlp:
    """A random MLP reading `in_block` and writing `out_block` (a distractor)."""

    layer: int
    in_block: str
    out_block: str
    seed: int
    gain: float = 1.0


@dataclass(frozen=True, eq=False)
class Spec:
    """A whole planted model: shape, layout, components, readout and the ground truth."""

    name: str
    task: str
    description: str
    n_layers: int
    n_heads: int
    d_head: int
    n_ctx: int
    d_mlp: int
    layout: Layout
    heads: tuple[Head, ...]
    mlps: tuple[Mlp, ...]
    unembed_block: str
    unembed_scale: float
    true_edges: tuple[str, ...]
    distractors: tuple[str, ...]  # graph nodes whose outputs nothing on the circuit reads
    notes: dict = field(default_factory=dict)
    architecture: str = "gpt2"  # or "llama"
    hidden: int = 0  # Llama: d_model (GPT-2 always has n_heads * d_head)
    rope_theta: float = 10000.0

    @property
    def d_model(self) -> int:
        return self.hidden or self.n_heads * self.d_head
