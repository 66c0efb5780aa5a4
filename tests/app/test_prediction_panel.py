"""The prediction panel of the Model & prompt page in a real browser (issue 16): top-k next
tokens, the IOI logit difference and the per-head DLA hold `analysis.prediction`'s numbers
(themselves checked against transformers and TransformerLens in
tests/integration/analysis/test_prediction.py); "Use task prompt" with induction fills the
prompt instead of doing nothing.
"""

from __future__ import annotations

import urllib.parse

import numpy as np
import pytest

from analysis.prediction import predict
from tests.app.browser_helpers import wait_for_figure, wait_until

pytestmark = pytest.mark.browser
PROMPT = "When Mary and John went to the store, John gave a drink to"


def test_prediction_panel_shows_the_ioi_logit_difference_and_head_dla(duo, zoo_model):
    query = urllib.parse.urlencode({"model": "tiny-ioi", "prompt": PROMPT, "task": "ioi"})
    duo.wait_for_page(f"{duo.server_url}/?{query}")
    expected = predict(zoo_model("tiny-ioi"), PROMPT, k=10, task="ioi")
    duo.wait_for_contains_text(
        "#prompt-logit-diff", f"Mary − John = {expected.logit_diff:+.3f}", timeout=30
    )
    assert duo.find_element("#prompt-top-token").text == "Mary"
    topk = wait_for_figure(
        duo, "prompt-topk", lambda f: f["data"] and f["data"][0]["type"] == "bar"
    )
    np.testing.assert_allclose(np.asarray(topk["data"][0]["x"], dtype=float), expected.top_probs)
    dla = wait_for_figure(
        duo, "prompt-dla", lambda f: f["data"] and f["data"][0]["type"] == "heatmap"
    )
    np.testing.assert_allclose(np.asarray(dla["data"][0]["z"], dtype=float), expected.head_dla)
    assert duo.get_logs() == []


def test_use_task_prompt_with_induction_fills_the_prompt(duo):
    query = urllib.parse.urlencode({"model": "tiny-ioi", "prompt": PROMPT, "task": "induction"})
    duo.wait_for_page(f"{duo.server_url}/?{query}")
    duo.wait_for_contains_text("#prompt-task-metric", "task induction:", timeout=30)
    duo.find_element("#prompt-use-task").click()
    wait_until(duo, lambda: duo.find_element("#prompt-text").get_attribute("value") != PROMPT)
    assert len(duo.find_element("#prompt-text").get_attribute("value").split()) > 10


def test_logit_lens_panel_shows_every_layer_and_follows_the_position(duo, zoo_model):
    from analysis.logit_lens import logit_lens

    query = urllib.parse.urlencode({"model": "tiny-ioi", "prompt": PROMPT, "task": "ioi"})
    duo.wait_for_page(f"{duo.server_url}/?{query}")
    expected = logit_lens(zoo_model("tiny-ioi"), PROMPT, k=5, task="ioi")
    duo.wait_for_contains_text("#prompt-lens-target-token", "Mary", timeout=30)
    target = wait_for_figure(
        duo, "prompt-lens-target", lambda f: f["data"] and f["data"][0]["type"] == "scatter"
    )
    np.testing.assert_allclose(
        np.asarray(target["data"][0]["y"], dtype=float), expected.target_probs
    )
    assert target["data"][0]["x"] == [0, 1, 2]
    top = wait_for_figure(
        duo, "prompt-lens-top", lambda f: f["data"] and f["data"][0]["type"] == "heatmap"
    )
    np.testing.assert_allclose(np.asarray(top["data"][0]["z"], dtype=float), expected.top_probs)
    assert duo.find_element("#prompt-lens-summary").text.startswith(
        f"position {expected.position} "
    )
    duo.find_element("#prompt-lens-position").send_keys("3")
    wait_until(
        duo,
        lambda: duo.find_element("#prompt-lens-summary").text.startswith("position 3 "),
        timeout=30,
    )
    assert duo.get_logs() == []
