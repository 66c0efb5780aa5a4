"""Head anatomy on every supported model family, against transformers' own float64 attention.

Each family is a tiny random checkpoint (2 layers, 4 heads, d_model 64) written with
`save_pretrained` (`save_checkpoint`), its norm gains and all biases randomised so that folding
them matters, and loaded by folder through `workbench.load_model`, as a user would.

The reference is independent of TransformerLens, of the bridge and of the probing in
`workbench.adapters.weights`: the same folder loaded by transformers in float64 with eager
attention, whose own `eager_attention_forward` (module global, patched to record its inputs)
hands over each layer's rotated (and, on Qwen-3, q/k-normed) query, key and value, its scaling
and soft-cap; Falcon's eager path does not call it, so its own `apply_rotary_pos_emb` and
`_split_heads` are recorded instead. `output_hidden_states` gives each layer's input. OPT's HF
code multiplies q by `scaling` after `q_proj` (and passes scaling=1.0), so its recorded query is
divided by the module's `scaling` to compare with the raw projection.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import transformers

from analysis.anatomy.head_svd import qk_ov_svd
from analysis.anatomy.residual import prompt_tokens
from analysis.anatomy.score_decomposition import decompose_score, upstream_contributions
from analysis.anatomy.taxonomy import _detection_scores
from tests.integration.adapters.family_checkpoints import eager_patterns, save_checkpoint
from workbench import load_model
from workbench.adapters import weights

T = transformers
PROMPT = "When Mary and John went to the store, John gave a drink to"
COMMON = {"vocab_size": 2048, "num_hidden_layers": 2, "max_position_embeddings": 128}
LLAMA = {**COMMON, "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128}
FAMILIES = {
    "gpt2": (T.GPT2Config, T.GPT2LMHeadModel, {"n_embd": 64, "n_layer": 2, "n_head": 4}),
    "gpt_neox": (T.GPTNeoXConfig, T.GPTNeoXForCausalLM, {**LLAMA, "rotary_pct": 0.25}),
    "llama": (T.LlamaConfig, T.LlamaForCausalLM, {**LLAMA, "num_key_value_heads": 2}),
    "qwen2": (T.Qwen2Config, T.Qwen2ForCausalLM, {**LLAMA, "num_key_value_heads": 2}),
    "qwen3": (
        T.Qwen3Config,
        T.Qwen3ForCausalLM,
        {**LLAMA, "num_key_value_heads": 2, "head_dim": 16},
    ),
    "mistral": (
        T.MistralConfig,
        T.MistralForCausalLM,
        {**LLAMA, "num_key_value_heads": 2, "sliding_window": None},
    ),
    "gemma": (
        T.GemmaConfig,
        T.GemmaForCausalLM,
        {**LLAMA, "num_key_value_heads": 1, "head_dim": 16},
    ),
    "gemma2": (
        T.Gemma2Config,
        T.Gemma2ForCausalLM,
        {
            **LLAMA,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "query_pre_attn_scalar": 24,
            "attn_logit_softcapping": 3.0,
            "sliding_window": 64,  # longer than the prompt: every layer sees all keys
        },
    ),
    "phi3": (
        T.Phi3Config,
        T.Phi3ForCausalLM,
        {**LLAMA, "num_key_value_heads": 4, "pad_token_id": 0},
    ),
    "opt": (
        T.OPTConfig,
        T.OPTForCausalLM,
        {**COMMON, "hidden_size": 64, "num_attention_heads": 4, "ffn_dim": 128},
    ),
    "gptj": (
        T.GPTJConfig,
        T.GPTJForCausalLM,
        {"n_embd": 64, "n_layer": 2, "n_head": 4, "rotary_dim": 8},
    ),
    "falcon": (
        T.FalconConfig,
        T.FalconForCausalLM,
        {
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "new_decoder_architecture": False,
            "multi_query": True,
            "parallel_attn": True,
            "alibi": False,
        },
    ),
    "bert": (
        T.BertConfig,
        T.BertForMaskedLM,
        {**COMMON, "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128},
    ),
}
REFUSED = {
    "falcon-alibi": (
        "falcon",
        {"alibi": True},
        NotImplementedError,
        "Falcon with ALiBi adds a position bias",
    ),
    "opt-post-ln": ("opt", {"do_layer_norm_before": False}, NotImplementedError, "post-LN OPT"),
}
TOL = 1e-5  # relative; cos/sin tables and Gemma's norms are computed in float32 by HF itself


@dataclass
class Reference:
    hidden: list  # per layer: the layer's input [pos, d_model], float64
    calls: (
        list  # per layer: dict q [head, pos, d_head], k, v [kv_head, pos, d_head], scaling, softcap
    )
    q_scale: float  # what HF multiplied the projected q by before the call (OPT: scaling)


def _vocab_kwargs(family: str) -> dict:
    return {} if "vocab_size" in FAMILIES[family][2] else {"vocab_size": 2048}


def _build(folder, family: str, **overrides):
    config_class, model_class, kwargs = FAMILIES[family]
    torch.manual_seed(0)
    model = model_class(config_class(**{**_vocab_kwargs(family), **kwargs, **overrides}))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name.lower() or "ln" in name.lower() or name.endswith("bias"):
                p.add_(0.2 * torch.randn_like(p))  # norm gains, norm biases, projection biases
    return save_checkpoint(model, folder)


@torch.no_grad()
def _reference(folder, family: str, tokens: torch.Tensor, monkeypatch) -> Reference:
    """transformers' own float64 eager attention inputs for `tokens` (module docstring)."""
    auto = T.AutoModelForMaskedLM if family == "bert" else T.AutoModelForCausalLM
    hf = auto.from_pretrained(folder, attn_implementation="eager", dtype=torch.float64).eval()
    calls: list[dict] = []
    if family == "falcon":
        module = sys.modules[type(hf).__module__]
        rotary, split = module.apply_rotary_pos_emb, module.FalconAttention._split_heads

        def split_heads(self, fused):
            q, k, v = split(self, fused)  # [batch, pos, head, d_head]
            calls.append({"v": v[0].transpose(0, 1), "scaling": self.inv_norm_factor})
            return q, k, v

        def rotate(q, k, cos, sin, unsqueeze_dim=1):
            q, k = rotary(q, k, cos, sin, unsqueeze_dim)  # [batch, head, pos, d_head]
            calls[-1].update(q=q[0], k=k[0], softcap=None)
            return q, k

        monkeypatch.setattr(module, "apply_rotary_pos_emb", rotate)
        monkeypatch.setattr(module.FalconAttention, "_split_heads", split_heads)
    else:
        attention = next(m for m in hf.modules() if type(m).__name__.endswith("Attention"))
        module = sys.modules[type(attention).__module__]
        eager = module.eager_attention_forward

        def record(mod, query, key, value, attention_mask, scaling=None, dropout=0.0, **kw):
            out = eager(
                mod, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kw
            )
            calls.append(
                {
                    "q": query[0],
                    "k": key[0],
                    "v": value[0],
                    "scaling": query.shape[-1] ** -0.5 if scaling is None else scaling,
                    "softcap": kw.get("softcap"),
                    "pattern": out[1][0],  # [head, query, key] the eager softmax
                }
            )
            return out

        monkeypatch.setattr(module, "eager_attention_forward", record)
    out = hf(tokens, output_hidden_states=True)
    hidden = [h[0].numpy() for h in out.hidden_states[: hf.config.num_hidden_layers]]
    q_scale = 1.0
    if family == "opt":  # HF scales q after q_proj and passes scaling=1.0
        q_scale = next(m for m in hf.modules() if type(m).__name__ == "OPTAttention").scaling
    calls = [{k: v.numpy() if torch.is_tensor(v) else v for k, v in c.items()} for c in calls]
    return Reference(hidden=hidden, calls=calls, q_scale=q_scale)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """`cases(family)` -> (workbench Model, tokens [1, pos], Reference), built once."""
    made = {}

    def get(family: str):
        if family not in made:
            folder = _build(tmp_path_factory.mktemp(family), family)
            model = load_model(str(folder))
            tokens = prompt_tokens(model, PROMPT)
            with pytest.MonkeyPatch.context() as mp:
                reference = _reference(folder, family, tokens, mp)
            made[family] = (model, tokens, reference, folder)
        return made[family]

    return get


def _ours(model, w: weights.HeadWeights, x: np.ndarray, which: str) -> np.ndarray:
    """Our q (k, v) of every position from the probed weights: norm, q/k-norm, RoPE."""
    norm, eps = weights.input_norm(model, w.layer)
    x_aug = np.hstack([weights.normalise(x, norm, eps)[0], np.ones((len(x), 1))])
    out = x_aug @ {"q": w.W_Q, "k": w.W_K, "v": w.W_V}[which]  # [pos, d_head]
    if which == "v":
        return out
    gain = w.q_norm_gain if which == "q" else w.k_norm_gain
    if gain is not None:
        out = gain * out / np.sqrt((out**2).mean(-1, keepdims=True) + w.qk_norm_eps)
    if w.rotary:
        cos, sin = weights.rotary_cos_sin(model, len(x))
        rot = weights.rotation_matrices(cos, sin, d_head=w.d_head, style=w.rotary_style)
        out = np.einsum("pd,pde->pe", out, rot)  # [pos, d_head]
    return out


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_probed_weights_reproduce_hf_query_key_value(cases, family):
    model, _, ref, _ = cases(family)
    worst = 0.0
    for layer in range(model.n_layers):
        call = ref.calls[layer]
        for head in range(model.n_heads):
            w = weights.head_weights(model, layer, head)
            x = ref.hidden[layer]  # [pos, d_model]
            worst = max(
                worst,
                _rel(_ours(model, w, x, "q"), call["q"][head] / ref.q_scale),
                _rel(_ours(model, w, x, "k"), call["k"][w.kv_head]),
                _rel(_ours(model, w, x, "v"), call["v"][w.kv_head]),
            )
    assert worst < TOL, f"{family}: q/k/v off by {worst:.2e} (relative)"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_score_decomposition_sums_to_hf_scores_and_eager_pattern(cases, family):
    model, tokens, ref, folder = cases(family)
    n = tokens.shape[1]
    pairs = [(n - 1, 1), (n - 1, n - 2), (n // 2, 2), (n // 2, n // 2)]
    if not model.is_causal:
        pairs.append((1, n - 1))
    for layer in range(model.n_layers):
        call = ref.calls[layer]
        for head in (0, model.n_heads - 1):
            w = weights.head_weights(model, layer, head)
            raw = call["q"][head] @ call["k"][w.kv_head].T / ref.q_scale  # [query, key]
            for query, key in pairs:
                d = decompose_score(model, tokens, layer, head, query, key)
                scale = max(abs(raw[query, key]), 1e-3 * np.abs(raw).max())
                assert abs(d.terms.sum() - raw[query, key]) / scale < 1e-4, (layer, head, query)
    if family == "bert":
        return  # eager_patterns loads decoders; BERT's raw scores are checked above
    x = ref.hidden[1]
    patterns = eager_patterns(folder, tokens)  # float32 eager, output_attentions
    for head in range(model.n_heads):
        w = weights.head_weights(model, 1, head)
        scores = _ours(model, w, x, "q") @ _ours(model, w, x, "k").T  # [query, key]
        logits = scores * ref.calls[1]["scaling"] * ref.q_scale
        if ref.calls[1]["softcap"]:
            cap = ref.calls[1]["softcap"]
            logits = cap * np.tanh(logits / cap)
        logits = np.where(np.tril(np.ones((n, n), dtype=bool)), logits, -np.inf)
        pattern = np.exp(logits - logits.max(-1, keepdims=True))
        pattern /= pattern.sum(-1, keepdims=True)
        assert np.abs(pattern - patterns[1][head].numpy()).max() < 1e-5, (family, head)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_head_svd_and_centring(cases, family):
    model, *_ = cases(family)
    head = model.n_heads - 1
    result = qk_ov_svd(model, 1, head, n_components=1, top_tokens=2)
    w = weights.head_weights(model, 1, head)
    w_q = w.W_Q if w.q_norm_gain is None else w.W_Q * w.q_norm_gain
    w_k = w.W_K if w.k_norm_gain is None else w.W_K * w.k_norm_gain
    w_o = w.W_O if w.post_norm_gain is None else w.W_O * w.post_norm_gain
    d = w.d_head
    qk = np.linalg.svd(w_q @ w_k.T, compute_uv=False)[:d]
    ov = np.linalg.svd(w.W_V[:-1] @ w_o, compute_uv=False)[:d]
    np.testing.assert_allclose(result.qk_singular_values, qk, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.ov_singular_values, ov, rtol=1e-9, atol=1e-12)
    if w.norm == "layernorm":  # reading rows and W_O's output have no all-ones component
        for mat in (w.W_Q[:-1], w.W_K[:-1], w.W_V[:-1]):
            assert np.abs(mat.sum(0)).max() < 1e-12 * np.abs(mat).sum()
        assert np.abs(w.W_O.sum(-1)).max() < 1e-12 * np.abs(w.W_O).sum()
    assert ("RoPE" in result.weights_note) == w.rotary
    if family == "gpt_neox":
        assert w.rotary_dim == 4 and "rotary on 4 of 16 dims" in result.weights_note
    if family == "gptj":
        assert (w.rotary_dim, w.rotary_style) == (8, "interleaved")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_upstream_contributions_add_up_or_refuse(cases, family):
    model, tokens, *_ = cases(family)
    n = tokens.shape[1]
    d = decompose_score(model, tokens, 1, 0, n - 1, n - 2)
    if family == "gemma2":
        with pytest.raises(NotImplementedError, match="post-attention norms"):
            upstream_contributions(model, d)
        return
    every = list(range(len(d.terms)))
    up = upstream_contributions(model, d, components=every)
    sums = up.contributions.groupby("side").contribution.sum()
    for side in ("query", "key"):
        assert sums[side] == pytest.approx(d.score, rel=1e-5, abs=1e-6 * np.abs(d.terms).sum())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_taxonomy_detection_reads_the_eager_pattern(cases, family):
    """Previous-token scores of the taxonomy equal the mean of the eager pattern's q -> q-1."""
    model, tokens, _, folder = cases(family)
    scores = _detection_scores(model, tokens)["previous_token"]  # [layer, head]
    assert scores.shape == (model.n_layers, model.n_heads)
    if family == "bert":  # eager_patterns loads decoders: BERT's float64 eager softmax instead
        inputs = [call["pattern"] for call in cases(family)[2].calls]
    else:
        inputs = [p.numpy() for p in eager_patterns(folder, tokens)]
    for layer, pattern in enumerate(inputs):
        expected = np.diagonal(pattern, offset=-1, axis1=1, axis2=2).mean(-1)  # [head]
        np.testing.assert_allclose(scores[layer], expected, atol=1e-5)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_variants_that_cannot_be_represented_are_refused(tmp_path, case):
    family, overrides, error, message = REFUSED[case]
    model = load_model(str(_build(tmp_path, family, **overrides)))
    with pytest.raises(error, match=message):
        qk_ov_svd(model, 0, 0)


def test_unknown_family_is_refused(tmp_path):
    config = T.StableLmConfig(**LLAMA, num_key_value_heads=4, partial_rotary_factor=0.25)
    torch.manual_seed(0)
    model = load_model(str(save_checkpoint(T.StableLmForCausalLM(config), tmp_path)))
    with pytest.raises(ValueError, match=r"head anatomy supports the families .* \(stablelm\)"):
        weights.head_weights(model, 0, 0)
