"""`analysis.logit_lens` on tiny-ioi against references outside it: the model's own final
logits, transformers' `output_hidden_states=True` pushed through the HF model's own `ln_f`
and `lm_head` (separately loaded GPT-2 and Llama checkpoints, no TransformerLens), and TransformerLens'
own `ActivationCache.accumulated_resid(apply_ln=True)` on a separate compatibility-mode bridge
(compared in log-probabilities: compatibility mode centres the unembedding, which shifts every
logit of a position by one constant)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.logit_lens import lens_logits, logit_lens
from workbench.zoo import ZOO

PROMPT = "When Mary and John went to the store, John gave a drink to"


def _log_softmax(x) -> np.ndarray:
    return torch.log_softmax(torch.as_tensor(x).double(), dim=-1).numpy()


@pytest.fixture(scope="module")
def tiny_ioi(zoo_model):
    return zoo_model("tiny-ioi")


FINAL_NORM = {"tiny-ioi": "transformer.ln_f", "tiny-induction": "model.norm"}  # LN, RMSNorm
PROMPTS = {"tiny-ioi": PROMPT, "tiny-induction": "one two three four . one two three"}


@pytest.mark.parametrize(
    ("name", "position"), [("tiny-ioi", -1), ("tiny-ioi", 3), ("tiny-induction", -1)]
)
def test_every_layer_matches_transformers_hidden_states(zoo_model, name, position):
    from transformers import AutoModelForCausalLM

    model = zoo_model(name)
    hf = AutoModelForCausalLM.from_pretrained(ZOO[name].path(), attn_implementation="eager")
    final_norm = hf.eval().get_submodule(FINAL_NORM[name])
    lens, tokens, pos = lens_logits(model, PROMPTS[name], position)
    assert lens.shape == (model.n_layers + 1, hf.config.vocab_size)
    with torch.no_grad():
        out = hf(tokens, output_hidden_states=True)
        # the last hidden state is already after the final norm: the lens' last row is the logits
        rows = [hf.lm_head(final_norm(h[0, pos])) for h in out.hidden_states[:-1]]
        expected = torch.stack([*rows, out.logits[0, pos]]).double().numpy()  # [L+1, d_vocab]
        own = model(tokens)[0, pos].double().numpy()  # [d_vocab]
    np.testing.assert_allclose(lens, expected, atol=1e-5)
    np.testing.assert_allclose(lens[-1], own, atol=1e-5)


def test_matches_transformer_lens_accumulated_resid(tiny_ioi):
    from transformer_lens import TransformerBridge

    lens, tokens, pos = lens_logits(tiny_ioi, PROMPT)
    bridge = TransformerBridge.boot_transformers(str(ZOO["tiny-ioi"].path()), device="cpu")
    bridge.enable_compatibility_mode()
    bridge.eval()
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens)
        stack, labels = cache.accumulated_resid(apply_ln=True, pos_slice=pos, return_labels=True)
        tl = stack[:, 0] @ bridge.W_U + bridge.b_U  # [L+1, d_vocab]
    assert labels == ["0_pre", "1_pre", "final_post"]
    np.testing.assert_allclose(_log_softmax(lens), _log_softmax(tl), atol=1e-5)


def test_result_reports_top_k_and_the_target_per_layer(tiny_ioi):
    result = logit_lens(tiny_ioi, PROMPT, k=3, task="ioi")
    lens, _, _ = lens_logits(tiny_ioi, PROMPT)
    probs = np.exp(_log_softmax(lens))  # [L+1, d_vocab]
    assert (result.target, result.target_source) == ("Mary", "ioi: indirect object")
    assert result.streams == ["resid_pre 0", "resid_pre 1", "resid_post 1"]
    assert result.position == len(tiny_ioi.to_str_tokens(tiny_ioi.to_tokens(PROMPT))) - 1
    np.testing.assert_allclose(result.target_probs, probs[:, result.target_id], atol=1e-12)
    ranks = [int((row > row[result.target_id]).sum()) for row in probs]
    assert result.target_ranks.tolist() == ranks
    np.testing.assert_allclose(result.top_probs, -np.sort(-probs, axis=-1)[:, :3], atol=1e-12)
    assert result.target_ranks[-1] == 0 and result.target_ranks[0] > 0  # Mary emerges late
    # without a task the target is the model's own final top-1 at that position
    plain = logit_lens(tiny_ioi, PROMPT, position=2, k=2)
    assert plain.target_source == "final top-1" and plain.target_ranks[-1] == 0
    given = logit_lens(tiny_ioi, PROMPT, k=2, target=" John")
    assert (given.target, given.target_source) == ("John", "given")
    frame = result.to_frame()
    assert len(frame) == 3 * 3 and set(frame["target_rank"]) == set(ranks)
    assert result.plot("top_tokens").data[0].type == "heatmap"
