"""`analysis.prediction.predict` on tiny-ioi against references outside it: transformers'
own GPT-2 forward (float64 softmax) for the top-k, and TransformerLens' own
`direct_logit_attribution` (unit="head", on a separate compatibility-mode bridge) for the
per-head DLA of the IO - S logit difference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.prediction import ioi_names, predict
from workbench.zoo import ZOO

PROMPT = "When Mary and John went to the store, John gave a drink to"


@pytest.fixture(scope="module")
def result(zoo_model):
    return predict(zoo_model("tiny-ioi"), PROMPT, k=5, task="ioi")


def test_top_k_matches_transformers_own_forward(zoo_model, result):
    from transformers import GPT2LMHeadModel

    model = zoo_model("tiny-ioi")
    hf = GPT2LMHeadModel.from_pretrained(ZOO["tiny-ioi"].path(), attn_implementation="eager")
    with torch.no_grad():
        logits = hf.eval()(model.to_tokens(PROMPT)).logits[0, -1].double()  # [d_vocab]
    probs = torch.softmax(logits, dim=-1)  # [d_vocab]
    expected = torch.topk(probs, 5)
    assert result.top_ids == expected.indices.tolist()
    np.testing.assert_allclose(result.top_probs, expected.values.numpy(), atol=1e-5)
    io, s = (model.tokenizer.encode(" " + n, add_special_tokens=False)[0] for n in ("Mary", "John"))
    assert result.logit_diff == pytest.approx(float(logits[io] - logits[s]), abs=1e-4)
    assert (result.target, result.baseline, result.direction) == ("Mary", "John", "ioi: IO vs S")


def test_head_dla_matches_transformer_lens_direct_logit_attribution(zoo_model, result):
    from transformer_lens import TransformerBridge
    from transformer_lens.tools.analysis import direct_logit_attribution

    model = zoo_model("tiny-ioi")
    bridge = TransformerBridge.boot_transformers(str(ZOO["tiny-ioi"].path()), device="cpu")
    bridge.enable_compatibility_mode()
    bridge.eval()
    tokenizer = model.tokenizer
    io, s = (tokenizer.encode(" " + n, add_special_tokens=False)[0] for n in ("Mary", "John"))
    dla = direct_logit_attribution(
        bridge,
        model.to_tokens(PROMPT),
        answer_tokens=torch.tensor([io]),
        incorrect_tokens=torch.tensor([s]),
        unit="head",
    )
    values = dla.attribution.reshape(len(dla.labels), -1)[:, 0].detach().double().numpy()
    by_label = dict(zip(dla.labels, values, strict=True))
    ours = {f"L{la}H{h}": result.head_dla[la, h] for la in range(2) for h in range(4)}
    assert set(ours) <= set(by_label)
    np.testing.assert_allclose(
        [ours[k] for k in sorted(ours)], [by_label[k] for k in sorted(ours)], atol=1e-4
    )
    # the decomposition is complete: heads + rest + the constant terms = the logit difference
    total = result.head_dla.sum() + result.rest + result.constant
    assert total == pytest.approx(result.logit_diff, abs=1e-9)
    assert abs(result.constant) < 0.5 and np.abs(result.head_dla).max() > 1.0


def test_ioi_names_and_the_fallback_direction(zoo_model):
    model = zoo_model("tiny-ioi")
    assert ioi_names(model, PROMPT) == ("Mary", "John")
    assert ioi_names(model, "When Mary and John went to the store") is None
    other = predict(model, "When Mary and John went to the store", k=3, task="ioi")
    assert other.direction == "top-1 vs top-2"
    assert (other.target, other.baseline) == tuple(other.top_tokens[:2])
    assert other.logit_diff >= 0
