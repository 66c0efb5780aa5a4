"""Compile a planted-circuit `Spec` into a GPT-2 (`GPT2LMHeadModel`) checkpoint.

Feature space -> weights:

- feature `f` of the layout is the residual direction `basis[f]`, a row of the Helmert basis
  (orthonormal and orthogonal to the all-ones vector), so every feature is zero-mean and
  LayerNorm's centring leaves it alone;
- the position embeddings carry `CONST` along the `const` feature. It dominates the residual
  norm (the other features are O(1)), so LayerNorm divides by an almost constant scale; every
  LayerNorm gain is set to `CONST / sqrt(d_model)`, which makes `ln(x) = x` up to a relative
  error of about `|features|^2 / (2 CONST^2)` (~1e-6 here). Readers of `const` see `CONST`;
  the compiler divides their maps by it;
- GPT-2 stores projections as `Conv1D` (`x @ W + b`, W `[in, out]`): `c_attn` is
  `[d_model, 3 d_model]` (all heads' Q, then K, then V columns), `c_proj` `[d_model, d_model]`;
  attention scores are divided by `sqrt(d_head)` inside the model, so query maps are multiplied
  by it here;
- the unembedding is untied from the token embedding (`tie_word_embeddings=False`).

Every bias is zero; heads and MLPs a spec leaves out get zero weights (they write nothing).
Everything is computed in float64 and stored as float32, with fixed seeds: the same spec gives
bit-identical weights.
"""

from __future__ import annotations

import math

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from workbench.zoo.planted.spec import CONST, Head, Mlp, Spec


def helmert_basis(d_model: int) -> torch.Tensor:
    """`[d_model - 1, d_model]` orthonormal rows, each orthogonal to the all-ones vector."""
    rows = torch.zeros(d_model - 1, d_model, dtype=torch.float64)
    for k in range(1, d_model):
        rows[k - 1, :k] = 1.0
        rows[k - 1, k] = -float(k)
        rows[k - 1] /= math.sqrt(k * (k + 1))
    return rows


class Compiler:
    """Turns a `Spec` into GPT-2 weights (see module docstring)."""

    def __init__(self, spec: Spec) -> None:
        if spec.layout.n_features > spec.d_model - 1:
            raise ValueError(
                f"spec {spec.name}: {spec.layout.n_features} features need d_model > "
                f"{spec.layout.n_features}, got {spec.d_model}"
            )
        self.spec = spec
        self.basis = helmert_basis(spec.d_model)[: spec.layout.n_features]  # [feature, d_model]

    def rows(self, block: str) -> torch.Tensor:
        """`[block_size, d_model]` residual directions of a block."""
        return self.basis[self.spec.layout.slice(block)]

    def _read(self, block: str, mapping: torch.Tensor) -> torch.Tensor:
        """`[d_model, r]` weight reading `block` through `mapping` `[block_size, r]`."""
        scale = 1.0 / CONST if block == "const" else 1.0
        return self.rows(block).T @ mapping.double() * scale

    # ------------------------------------------------------------------ components
    def head_weights(self, head: Head) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """W_Q, W_K, W_V `[d_model, d_head]` and W_O `[d_head, d_model]` of one head."""
        d, dh = self.spec.d_model, self.spec.d_head
        w_q = torch.zeros(d, dh, dtype=torch.float64)
        w_k = torch.zeros(d, dh, dtype=torch.float64)
        col = 0
        for term in head.terms:
            if term.rope_offset is not None:
                raise ValueError(f"spec {self.spec.name}: rotary terms need the Llama compiler")
            r = term.q_map.shape[1]
            if col + r > dh:
                raise ValueError(
                    f"spec {self.spec.name}: head L{head.layer}H{head.head} "
                    f"needs more than d_head={dh} score dimensions"
                )
            w_q[:, col : col + r] = self._read(term.q_block, term.q_map) * math.sqrt(dh)
            w_k[:, col : col + r] = self._read(term.k_block, term.k_map)
            col += r
        r = head.v_map.shape[1]
        w_v = torch.zeros(d, dh, dtype=torch.float64)
        w_v[:, :r] = self._read(head.v_block, head.v_map)
        w_o = torch.zeros(dh, d, dtype=torch.float64)
        w_o[:r] = head.o_map.double() @ self.rows(head.out_block)
        return w_q, w_k, w_v, w_o

    def mlp_weights(self, mlp: Mlp) -> tuple[torch.Tensor, torch.Tensor]:
        """c_fc `[d_model, d_mlp]` and c_proj `[d_mlp, d_model]` of a random distractor MLP."""
        gen = torch.Generator().manual_seed(mlp.seed)
        n_in, n_out, hidden = (
            self.spec.layout.size(mlp.in_block),
            self.spec.layout.size(mlp.out_block),
            self.spec.d_mlp,
        )
        a = torch.randn(n_in, hidden, generator=gen, dtype=torch.float64) / math.sqrt(n_in)
        b = torch.randn(hidden, n_out, generator=gen, dtype=torch.float64) / math.sqrt(hidden)
        return self._read(mlp.in_block, a), b * mlp.gain @ self.rows(mlp.out_block)

    # ------------------------------------------------------------------ GPT-2
    def gpt2_config(self, vocab_size: int) -> GPT2Config:
        s = self.spec
        return GPT2Config(
            vocab_size=vocab_size,
            n_positions=s.n_ctx,
            n_embd=s.d_model,
            n_layer=s.n_layers,
            n_head=s.n_heads,
            n_inner=s.d_mlp,
            activation_function="gelu_new",
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            layer_norm_epsilon=1e-5,
            bos_token_id=0,
            eos_token_id=0,
            pad_token_id=1,
            tie_word_embeddings=False,
        )

    def gpt2_state(self, vocab_size: int) -> dict[str, torch.Tensor]:
        """The full GPT2LMHeadModel state dict (float64; cast on load)."""
        s, d, dh = self.spec, self.spec.d_model, self.spec.d_head
        tok = self.spec.layout.size("tok")
        if tok != vocab_size:
            raise ValueError(f"spec {s.name}: tok block has {tok} features, vocab {vocab_size}")
        gain = torch.full((d,), CONST / math.sqrt(d), dtype=torch.float64)  # [d_model]
        zero = torch.zeros(d, dtype=torch.float64)  # [d_model]
        state = {
            "transformer.wte.weight": self.rows("tok").clone(),  # [vocab, d_model]
            "transformer.wpe.weight": self.rows("pos")
            + CONST * self.rows("const"),  # [n_ctx, d_model]
            "transformer.ln_f.weight": gain,
            "transformer.ln_f.bias": zero,
            "lm_head.weight": s.unembed_scale * self.rows(s.unembed_block),  # [vocab, d_model]
        }
        for layer in range(s.n_layers):
            p = f"transformer.h.{layer}."
            c_attn = torch.zeros(d, 3 * d, dtype=torch.float64)  # [d_model, 3 d_model]
            c_proj = torch.zeros(d, d, dtype=torch.float64)  # [d_model (heads), d_model]
            for head in (h for h in s.heads if h.layer == layer):
                w_q, w_k, w_v, w_o = self.head_weights(head)
                cols = slice(head.head * dh, (head.head + 1) * dh)
                c_attn[:, cols] = w_q
                c_attn[:, d + cols.start : d + cols.stop] = w_k
                c_attn[:, 2 * d + cols.start : 2 * d + cols.stop] = w_v
                c_proj[cols] = w_o
            c_fc = torch.zeros(d, s.d_mlp, dtype=torch.float64)  # [d_model, d_mlp]
            mlp_proj = torch.zeros(s.d_mlp, d, dtype=torch.float64)  # [d_mlp, d_model]
            for mlp in (m for m in s.mlps if m.layer == layer):
                c_fc, mlp_proj = self.mlp_weights(mlp)
            state |= {
                p + "ln_1.weight": gain,
                p + "ln_1.bias": zero,
                p + "ln_2.weight": gain,
                p + "ln_2.bias": zero,
                p + "attn.c_attn.weight": c_attn,
                p + "attn.c_attn.bias": torch.zeros(3 * d, dtype=torch.float64),
                p + "attn.c_proj.weight": c_proj,
                p + "attn.c_proj.bias": zero,
                p + "mlp.c_fc.weight": c_fc,
                p + "mlp.c_fc.bias": torch.zeros(s.d_mlp, dtype=torch.float64),
                p + "mlp.c_proj.weight": mlp_proj,
                p + "mlp.c_proj.bias": zero,
            }
        return state


def gpt2_model(spec: Spec, vocab_size: int) -> GPT2LMHeadModel:
    """A `GPT2LMHeadModel` holding the compiled weights of `spec` (float32, eval mode)."""
    compiler = Compiler(spec)
    model = GPT2LMHeadModel(compiler.gpt2_config(vocab_size))
    return load_compiled(model, compiler.gpt2_state(vocab_size), spec.name)


def load_compiled(model: torch.nn.Module, state: dict, spec_name: str) -> torch.nn.Module:
    """Copy the compiled float64 `state` into `model`'s parameters (in their dtype) and return
    it in eval mode; `ValueError` when the compiler left a parameter unset."""
    params = dict(model.named_parameters())
    missing = sorted(set(params) - set(state))
    if missing:
        raise ValueError(f"spec {spec_name}: compiler left parameters unset: {missing[:3]}")
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value.to(params[name].dtype))
    return model.eval()
