"""Compile a planted-circuit `Spec` into a Llama (`LlamaForCausalLM`) checkpoint.

Same feature-space conventions as `compile` (Helmert basis, one large constant feature that
pins RMSNorm's scale, every norm gain `CONST / sqrt(d_model)` so `norm(x) = x`), with what
Llama changes:

- no position embeddings: the constant rides on every token embedding, and positional
  attention comes from the rotary embedding. A `Term` with `rope_offset=o` uses the
  highest-frequency rotary pairs: key `(1, 0)`, query `a_p (cos o θ_p, -sin o θ_p)` in pair p
  (transformers rotates pair `(x_p, x_{p + d_head/2})` by `+pos θ_p`),
  so the score is `sum_p a_p cos(θ_p (i - j - o))`, largest at `j = i - o`. The amplitudes
  `ROPE_AMPLITUDES` were chosen by a small linear program for `rope_theta = 1e20`, head_dim
  128 and 44 positions (margin 0.326 of the peak; `rope_margin` re-checks it);
- every other term lives in rotary pairs whose frequency is so low (`θ_p * n_ctx < 1e-4`)
  that they barely rotate within the context: content matching is position-independent up
  to a relative 1e-4, identically in every run;
- projections are `nn.Linear` (`W` `[out, in]`), the MLP is SwiGLU
  (`down(silu(gate(x)) * up(x))`; distractors only), no biases, untied unembedding.
"""

from __future__ import annotations

import math

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from workbench.zoo.planted.compile import Compiler, load_compiled
from workbench.zoo.planted.spec import CONST, Head, Spec

ROPE_AMPLITUDES = (0.677, 0.108, 0.059, 0.157)


def inv_freq(spec: Spec) -> torch.Tensor:
    """`[d_head / 2]` rotary frequencies, as transformers' default rope computes them."""
    exponents = torch.arange(0, spec.d_head, 2, dtype=torch.float64) / spec.d_head
    return 1.0 / spec.rope_theta**exponents


def rope_margin(spec: Spec, offset: int = 1) -> float:
    """Peak score minus the best other distance, for unit total amplitude."""
    theta = inv_freq(spec)[: len(ROPE_AMPLITUDES)]  # [K]
    amps = torch.tensor(ROPE_AMPLITUDES, dtype=torch.float64)  # [K]
    dist = torch.arange(spec.n_ctx, dtype=torch.float64)  # [n_ctx]
    score = (amps[:, None] * torch.cos(theta[:, None] * (dist - offset))).sum(0)  # [n_ctx]
    return float(score[offset] - torch.cat([score[:offset], score[offset + 1 :]]).max())


class LlamaCompiler(Compiler):
    """Turns a Llama `Spec` into `LlamaForCausalLM` weights (see module docstring)."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)  # the residual basis, `rows` and `_read` are GPT-2's
        half = spec.d_head // 2
        still = (inv_freq(spec) * spec.n_ctx < 1e-4).nonzero()[:, 0].tolist()
        self.still_dims = [p for p in still] + [p + half for p in still]  # non-rotating dims

    def head_weights(self, head: Head) -> tuple[torch.Tensor, ...]:
        """W_Q, W_K, W_V `[d_model, d_head]`, W_O `[d_head, d_model]`."""
        d, dh = self.spec.d_model, self.spec.d_head
        w_q = torch.zeros(d, dh, dtype=torch.float64)
        w_k = torch.zeros(d, dh, dtype=torch.float64)
        free = list(self.still_dims)
        theta = inv_freq(self.spec)
        for term in head.terms:
            if term.rope_offset is not None:
                scale = float(term.q_map.reshape(-1)[0])  # peak score (nats)
                q_const = self._read("const", torch.ones(1, 1))[:, 0]  # [d_model]
                for p, amp in enumerate(ROPE_AMPLITUDES):
                    angle = -term.rope_offset * float(theta[p])
                    w_q[:, p] = q_const * amp * scale * math.cos(angle) * math.sqrt(dh)
                    w_q[:, p + dh // 2] = q_const * amp * scale * math.sin(angle) * math.sqrt(dh)
                    w_k[:, p] = q_const
                continue
            r = term.q_map.shape[1]
            if r > len(free):
                raise ValueError(f"spec {self.spec.name}: not enough non-rotating dimensions")
            cols, free = free[:r], free[r:]
            w_q[:, cols] = self._read(term.q_block, term.q_map) * math.sqrt(dh)
            w_k[:, cols] = self._read(term.k_block, term.k_map)
        r = head.v_map.shape[1]
        w_v = torch.zeros(d, dh, dtype=torch.float64)
        w_v[:, :r] = self._read(head.v_block, head.v_map)
        w_o = torch.zeros(dh, d, dtype=torch.float64)
        w_o[:r] = head.o_map.double() @ self.rows(head.out_block)
        return w_q, w_k, w_v, w_o

    def config(self, vocab_size: int) -> LlamaConfig:
        s = self.spec
        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=s.d_model,
            intermediate_size=s.d_mlp,
            num_hidden_layers=s.n_layers,
            num_attention_heads=s.n_heads,
            num_key_value_heads=s.n_heads,
            head_dim=s.d_head,
            max_position_embeddings=s.n_ctx,
            rms_norm_eps=1e-6,
            rope_parameters={"rope_theta": s.rope_theta, "rope_type": "default"},
            hidden_act="silu",
            attention_bias=False,
            mlp_bias=False,
            bos_token_id=0,
            eos_token_id=0,
            pad_token_id=1,
            tie_word_embeddings=False,
        )

    def state(self, vocab_size: int) -> dict[str, torch.Tensor]:
        """The LlamaForCausalLM state dict (float64; cast on load)."""
        s, d, dh = self.spec, self.spec.d_model, self.spec.d_head
        gain = torch.full((d,), CONST / math.sqrt(d), dtype=torch.float64)  # [d_model]
        state = {
            # [vocab, d_model]: the constant rides on every token
            "model.embed_tokens.weight": self.rows("tok") + CONST * self.rows("const"),
            "model.norm.weight": gain,
            "lm_head.weight": s.unembed_scale * self.rows(s.unembed_block),
        }
        for layer in range(s.n_layers):
            p = f"model.layers.{layer}."
            proj = {n: torch.zeros(s.n_heads * dh, d, dtype=torch.float64) for n in "qkv"}
            o_proj = torch.zeros(d, s.n_heads * dh, dtype=torch.float64)
            for head in (h for h in s.heads if h.layer == layer):
                w_q, w_k, w_v, w_o = self.head_weights(head)
                rows = slice(head.head * dh, (head.head + 1) * dh)
                proj["q"][rows], proj["k"][rows], proj["v"][rows] = w_q.T, w_k.T, w_v.T
                o_proj[:, rows] = w_o.T
            mlp = {
                "gate": torch.zeros(s.d_mlp, d, dtype=torch.float64),
                "up": torch.zeros(s.d_mlp, d, dtype=torch.float64),
                "down": torch.zeros(d, s.d_mlp, dtype=torch.float64),
            }
            for m in (m for m in s.mlps if m.layer == layer):
                gen = torch.Generator().manual_seed(m.seed)
                n_in, n_out = s.layout.size(m.in_block), s.layout.size(m.out_block)
                for name in ("gate", "up"):
                    a = torch.randn(n_in, s.d_mlp, generator=gen, dtype=torch.float64)
                    mlp[name] = self._read(m.in_block, a / math.sqrt(n_in)).T
                b = torch.randn(s.d_mlp, n_out, generator=gen, dtype=torch.float64)
                mlp["down"] = (b * m.gain / math.sqrt(s.d_mlp) @ self.rows(m.out_block)).T
            state |= {
                p + "input_layernorm.weight": gain,
                p + "post_attention_layernorm.weight": gain,
                p + "self_attn.q_proj.weight": proj["q"],
                p + "self_attn.k_proj.weight": proj["k"],
                p + "self_attn.v_proj.weight": proj["v"],
                p + "self_attn.o_proj.weight": o_proj,
                p + "mlp.gate_proj.weight": mlp["gate"],
                p + "mlp.up_proj.weight": mlp["up"],
                p + "mlp.down_proj.weight": mlp["down"],
            }
        return state


def llama_model(spec: Spec, vocab_size: int) -> LlamaForCausalLM:
    """A `LlamaForCausalLM` holding the compiled weights of `spec` (float32, eval mode)."""
    compiler = LlamaCompiler(spec)
    model = LlamaForCausalLM(compiler.config(vocab_size))
    return load_compiled(model, compiler.state(vocab_size), spec.name)
