"""The planted circuits shipped in the zoo, as `Spec`s (see `workbench.zoo.planted.spec`).

All share one vocabulary (`VOCAB`: 4 specials + 44 words), 44 positions, 4 heads of 64
dimensions (d_model 256) and this residual layout: `const` (1), `tok` (48, one-hot token),
`pos` (44, one-hot position), `prev` (48, previous token), `ptr` (44, a position pointer),
`out` (48, what the unembedding reads) and `dist` (8, written and read only by distractors).

- `planted-induction` (task `induction`): L0H0 is a previous-token head (positional QK, OV
  copies `tok` into `prev`); L1H0 an induction head by K-composition (query `tok`, key `prev`,
  OV copies `tok` into `out`; a sink on BOS when nothing matches).
- `planted-redundant` (task `induction`): the same with two previous-token heads (L0H0 and
  L0H2) each writing `prev` in full, so either alone still drives the induction head: single
  edges from them barely matter, the pair does.
- `planted-lookup` (task `lookup`, 3 layers): key-value recall with Q-, K- and V-composition:
  L0H0 previous-token head; L1H0 finds the value position whose key equals the query token
  (query and key both read `prev`: Q- and K-composition with L0H0) and writes that position
  into `ptr`; L2H0 reads `ptr` as its query (Q-composition with L1H0), attends to the next
  position and copies its `prev` (V-composition with L0H0), which is the value, into `out`.

- `planted-induction-llama` (task `induction`): `planted-induction` in Llama format (RoPE,
  RMSNorm, SwiGLU; layout without `pos`/`ptr`, d_model 160, head_dim 128): the previous-token
  head attends by rotary phase, the sink is on the BOS token.

Distractors read circuit blocks but write only `dist`, which nothing on a circuit reads.
"""

from __future__ import annotations

import torch

from workbench.zoo.planted.spec import Head, Layout, Mlp, Spec, Term

SPECIALS = ("<bos>", "<pad>", "<unk>", "<sep>")
WORDS = tuple(f"w{i:02d}" for i in range(44))
VOCAB = SPECIALS + WORDS
N_VOCAB = len(VOCAB)
SEP_ID = VOCAB.index("<sep>")
N_CTX = 44
LAYOUT = Layout(
    (
        ("const", 1),
        ("tok", N_VOCAB),
        ("pos", N_CTX),
        ("prev", N_VOCAB),
        ("ptr", N_CTX),
        ("out", N_VOCAB),
        ("dist", 8),
    )
)
BETA = 30.0  # attention score of a match, in nats


def _eye(n: int) -> torch.Tensor:
    return torch.eye(n, dtype=torch.float64)


def _prev_shift() -> torch.Tensor:
    """`[pos, pos]`: row i has its 1 at i - 1 (position 0 at itself)."""
    shift = torch.zeros(N_CTX, N_CTX, dtype=torch.float64)
    shift[0, 0] = 1.0
    shift[torch.arange(1, N_CTX), torch.arange(N_CTX - 1)] = 1.0
    return shift


def _const(value: float) -> torch.Tensor:
    return torch.tensor([[value]], dtype=torch.float64)


def _one_hot_column(n: int, index: int, value: float) -> torch.Tensor:
    column = torch.zeros(n, 1, dtype=torch.float64)
    column[index, 0] = value
    return column


def prev_token_head(layer: int, head: int) -> Head:
    """Attends from i to i - 1 by position; copies the token into `prev`."""
    return Head(
        layer,
        head,
        (Term("pos", "pos", BETA * _prev_shift(), _eye(N_CTX)),),
        "tok",
        _eye(N_VOCAB),
        "prev",
        _eye(N_VOCAB),
        role="previous-token head",
    )


def _random(seed: int, rows: int, cols: int, scale: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=gen, dtype=torch.float64) * scale


def distractor(layer: int, head: int, reads: str, seed: int) -> Head:
    """A head with random QK and OV maps reading `reads`, writing only `dist`."""
    n = LAYOUT.size(reads)
    return Head(
        layer,
        head,
        (Term(reads, reads, _random(seed, n, 8, 2.0), _random(seed + 1, n, 8, 1.0)),),
        reads,
        _random(seed + 2, n, 8, 0.5),
        "dist",
        _random(seed + 3, 8, 8, 0.5),
        role="distractor",
    )


def _induction_head(key_scale: float, sink: float) -> Head:
    return Head(
        1,
        0,
        (
            Term("tok", "prev", key_scale * _eye(N_VOCAB), _eye(N_VOCAB)),
            Term("const", "pos", _const(sink), _one_hot_column(N_CTX, 0, 1.0)),
        ),
        "tok",
        _eye(N_VOCAB),
        "out",
        _eye(N_VOCAB),
        role="induction head (K-composition)",
    )


def _common(name: str, n_layers: int, **kwargs) -> Spec:
    return Spec(
        name=name,
        n_layers=n_layers,
        n_heads=4,
        d_head=64,
        n_ctx=N_CTX,
        d_mlp=16,
        layout=LAYOUT,
        unembed_block="out",
        unembed_scale=15.0,
        **kwargs,
    )


def planted_induction() -> Spec:
    return _common(
        "planted-induction",
        2,
        task="induction",
        description="2-layer GPT-2 with a planted induction circuit (previous-token head, "
        "induction head by K-composition) and distractors",
        heads=(
            prev_token_head(0, 0),
            distractor(0, 1, "tok", 10),
            _induction_head(BETA, BETA / 2),
            distractor(1, 1, "dist", 20),
            distractor(1, 2, "prev", 30),
        ),
        mlps=(Mlp(0, "tok", "dist", 40), Mlp(1, "prev", "dist", 41)),
        true_edges=(
            "input->L0H0<v>",
            "L0H0->L1H0<k>",
            "input->L1H0<v>",
            "L1H0->output",
        ),
        distractors=("L0H1", "L1H1", "L1H2", "MLP0", "MLP1"),
    )


def planted_redundant() -> Spec:
    return _common(
        "planted-redundant",
        2,
        task="induction",
        description="2-layer GPT-2 with a planted induction circuit fed by two redundant "
        "previous-token heads (a parallel path single-edge methods miss)",
        heads=(
            prev_token_head(0, 0),
            distractor(0, 1, "tok", 10),
            prev_token_head(0, 2),
            _induction_head(BETA * 2 / 3, BETA / 3),
            distractor(1, 1, "dist", 20),
            distractor(1, 2, "prev", 30),
        ),
        mlps=(Mlp(0, "tok", "dist", 40), Mlp(1, "prev", "dist", 41)),
        true_edges=(
            "input->L0H0<v>",
            "input->L0H2<v>",
            "L0H0->L1H0<k>",
            "L0H2->L1H0<k>",
            "input->L1H0<v>",
            "L1H0->output",
        ),
        distractors=("L0H1", "L1H1", "L1H2", "MLP0", "MLP1"),
        notes={"redundant_edges": ["L0H0->L1H0<k>", "L0H2->L1H0<k>"]},
    )


def _value_positions_mask() -> torch.Tensor:
    """`[pos, 1]`: 0 at even positions >= 2 (where values sit), -BETA elsewhere."""
    mask = torch.full((N_CTX, 1), -BETA, dtype=torch.float64)
    mask[2::2] = 0.0
    return mask


def planted_lookup() -> Spec:
    next_pos = torch.zeros(N_CTX, N_CTX, dtype=torch.float64)  # ptr p -> key position p + 1
    next_pos[torch.arange(N_CTX - 1), torch.arange(1, N_CTX)] = BETA
    finder = Head(
        1,
        0,
        (
            Term("prev", "prev", BETA * _eye(N_VOCAB), _eye(N_VOCAB)),
            Term("const", "pos", _const(1.0), _value_positions_mask()),
            Term("const", "tok", _const(1.0), _one_hot_column(N_VOCAB, SEP_ID, -BETA)),
        ),
        "pos",
        _eye(N_CTX),
        "ptr",
        _eye(N_CTX),
        role="key finder (Q- and K-composition with L0H0), writes the value's position",
    )
    mover = Head(
        2,
        0,
        (Term("ptr", "pos", next_pos, _eye(N_CTX)),),
        "prev",
        _eye(N_VOCAB),
        "out",
        _eye(N_VOCAB),
        role="value mover (Q-composition with L1H0, V-composition with L0H0)",
    )
    return _common(
        "planted-lookup",
        3,
        task="lookup",
        description="3-layer GPT-2 with a planted key-value lookup circuit using Q-, K- and "
        "V-composition, plus distractors",
        heads=(
            prev_token_head(0, 0),
            distractor(0, 1, "tok", 10),
            finder,
            distractor(1, 1, "prev", 20),
            mover,
            distractor(2, 1, "ptr", 30),
            distractor(2, 2, "dist", 40),
        ),
        mlps=(Mlp(0, "tok", "dist", 50), Mlp(1, "prev", "dist", 51), Mlp(2, "ptr", "dist", 52)),
        true_edges=(
            "input->L0H0<v>",
            "L0H0->L1H0<q>",
            "L0H0->L1H0<k>",
            "L1H0->L2H0<q>",
            "L0H0->L2H0<v>",
            "L2H0->output",
        ),
        distractors=("L0H1", "L1H1", "L2H1", "L2H2", "MLP0", "MLP1", "MLP2"),
        notes={
            "composition": {
                "Q": ["L0H0->L1H0<q>", "L1H0->L2H0<q>"],
                "K": ["L0H0->L1H0<k>"],
                "V": ["L0H0->L2H0<v>"],
            }
        },
    )


LLAMA_LAYOUT = Layout(
    (("const", 1), ("tok", N_VOCAB), ("prev", N_VOCAB), ("out", N_VOCAB), ("dist", 8))
)


def _llama_distractor(layer: int, head: int, reads: str, seed: int) -> Head:
    n = LLAMA_LAYOUT.size(reads)
    term = Term(reads, reads, _random(seed, n, 8, 2.0), _random(seed + 1, n, 8, 1.0))
    o_map = _random(seed + 3, 8, 8, 0.5)
    return Head(
        layer, head, (term,), reads, _random(seed + 2, n, 8, 0.5), "dist", o_map, role="distractor"
    )


def planted_induction_llama() -> Spec:
    """The induction circuit in Llama format: the previous-token head works through RoPE."""
    prev = Head(
        0,
        0,
        (Term("const", "const", _const(100.0), _const(1.0), rope_offset=1),),
        "tok",
        _eye(N_VOCAB),
        "prev",
        _eye(N_VOCAB),
        role="previous-token head (rotary)",
    )
    induction = Head(
        1,
        0,
        (
            Term("tok", "prev", BETA * _eye(N_VOCAB), _eye(N_VOCAB)),
            Term("const", "tok", _const(BETA / 2), _one_hot_column(N_VOCAB, 0, 1.0)),
        ),
        "tok",
        _eye(N_VOCAB),
        "out",
        _eye(N_VOCAB),
        role="induction head (K-composition), sink on the BOS token",
    )
    return Spec(
        name="planted-induction-llama",
        task="induction",
        description="2-layer Llama (RoPE, RMSNorm, SwiGLU) with the planted induction circuit",
        n_layers=2,
        n_heads=4,
        d_head=128,
        n_ctx=N_CTX,
        d_mlp=16,
        layout=LLAMA_LAYOUT,
        heads=(
            prev,
            _llama_distractor(0, 1, "tok", 10),
            induction,
            _llama_distractor(1, 1, "dist", 20),
            _llama_distractor(1, 2, "prev", 30),
        ),
        mlps=(Mlp(0, "tok", "dist", 40), Mlp(1, "prev", "dist", 41)),
        unembed_block="out",
        unembed_scale=15.0,
        true_edges=("input->L0H0<v>", "L0H0->L1H0<k>", "input->L1H0<v>", "L1H0->output"),
        distractors=("L0H1", "L1H1", "L1H2", "MLP0", "MLP1"),
        architecture="llama",
        hidden=160,
        rope_theta=1e20,
    )


SPECS = {
    spec.name: spec
    for spec in (
        planted_induction(),
        planted_redundant(),
        planted_lookup(),
        planted_induction_llama(),
    )
}
