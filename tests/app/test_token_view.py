"""Attention page's coloured-token view (`workbench.ui.token_view`) and the layer/head input
bounds (`workbench.ui.head_limits`).

- Numbers sent (over HTTP, no browser): tiny-ioi L1H2's rows equal transformers' eager
  `output_attentions` on the same tokens (an implementation independent of the bridge); a
  long MiniLM prompt sends only the pattern figure's window rows.
- Bounds: the Layer/Head inputs of the Heads and Attention pages get `max` = n_layers - 1 /
  n_heads - 1 for tiny-ioi (2 x 4) and MiniLM (6 x 12).
- Browser: hovering a token colours every token by its pattern row, the toggle switches to
  its column, and clicking keeps the selection (no server call on hover). Saves
  `artifacts/screenshots/attention-tokens.png` (the token card, query 6 hovered).
"""

from __future__ import annotations

import urllib.parse
import uuid

import numpy as np
import pytest
import torch
import transformers
from selenium.webdriver.common.action_chains import ActionChains

from tests.app.browser_helpers import wait_until
from workbench.ui import token_view
from workbench.ui.callback_client import post_callback
from workbench.zoo import ZOO

PROMPT = "When Mary and John went to the store, John gave a drink to"
LONG = " ".join(["the cat sat on the mat and looked at the dog"] * 13)  # > 128 tokens
ROWS = ["attention-tokens-data.data"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from workbench.ui import create_app

    return create_app(preload=["tiny-ioi"], store=str(tmp_path_factory.mktemp("store")))


@pytest.fixture(scope="module")
def client(app):
    return app.server.test_client()


def sent_rows(app, client, query, layer, head, token=None) -> dict:
    inputs = {"attention-layer.value": layer, "attention-head.value": head}
    state = {
        "attention-block-size.value": "8",
        "attention-query.data": query,
        "session-id.data": uuid.uuid4().hex,
    }
    answer = post_callback(app, client, ROWS, {**inputs, "attention-token.value": token}, state)[
        "response"
    ]
    return answer["attention-tokens-data"]["data"]


def eager_pattern(model, prompt: str, layer: int, head: int) -> np.ndarray:
    """transformers' eager attention of the zoo checkpoint: `[query, key]`."""
    folder = ZOO["tiny-ioi"].path()
    hf = transformers.GPT2LMHeadModel.from_pretrained(folder, attn_implementation="eager")
    with torch.no_grad():
        out = hf.eval()(model.to_tokens(prompt), output_attentions=True)
    return out.attentions[layer][0, head].numpy()  # [query, key]


def test_rows_sent_are_the_models_pattern(app, client, zoo_model):
    model = zoo_model("tiny-ioi")
    sent = sent_rows(app, client, {"model": "tiny-ioi", "prompt": PROMPT}, 1, 2)
    truth = eager_pattern(model, PROMPT, 1, 2)
    n = truth.shape[0]
    assert (sent["head"], sent["n"], sent["first"], sent["count"]) == ("L1H2", n, 0, n)
    np.testing.assert_allclose(token_view.decode_rows(sent), truth, atol=1e-5)
    assert sent["tokens"] == model.to_str_tokens(PROMPT) and sent["gap"]  # word-level
    for query, layer, head, named in (
        ({"model": "tiny-ioi", "prompt": PROMPT}, 1, 9, "head"),
        ({"model": "tiny-ioi", "prompt": PROMPT}, "abc", 0, "layer"),
        (["not", "a", "selection"], 0, 0, "selection"),
    ):
        bad = sent_rows(app, client, query, layer, head)  # HTTP 200, the problem named
        assert "rows" not in bad and named in bad["error"]


def test_long_prompt_sends_the_window_rows_only(app, client, zoo_model):
    model = zoo_model("minilm")
    sent = sent_rows(app, client, {"model": "minilm", "prompt": LONG}, 1, 3, token=100)
    _, cache = model.run_with_cache(LONG, names=["blocks.1.attn.hook_pattern"])
    truth = cache["blocks.1.attn.hook_pattern"][0, 3].numpy()  # [query, key]
    first, count = sent["first"], sent["count"]
    assert truth.shape[0] > token_view.FULL_LIMIT
    assert (first, count, sent["n"]) == (94, 13, truth.shape[0])  # query 100 +- 6
    np.testing.assert_allclose(token_view.decode_rows(sent), truth[94:107], atol=1e-5)


@pytest.mark.parametrize("prefix", ["heads", "attention"])
def test_layer_and_head_inputs_are_bounded_by_the_model(app, client, prefix):
    outputs = [f"{prefix}-layer.max", f"{prefix}-head.max"]
    for name, bounds in (("tiny-ioi", (1, 3)), ("minilm", (5, 11))):
        query = {"model": name, "prompt": PROMPT}
        answer = post_callback(app, client, outputs, {f"{prefix}-query.data": query})
        got = answer["response"]
        assert (got[f"{prefix}-layer"]["max"], got[f"{prefix}-head"]["max"]) == bounds
    bad = {"model": "no-such-model", "prompt": PROMPT}
    answer = post_callback(app, client, outputs, {f"{prefix}-query.data": bad})
    assert "response" not in answer or not answer["response"]  # nothing changed, no 500


CALLS = (
    "return performance.getEntriesByType('resource')"
    ".filter(e => e.name.includes('_dash-update-component')).length"
)


def painted(duo) -> tuple[list, list]:
    """The `data-w` weight of every token span (None: not coloured) and their alphas."""
    return duo.driver.execute_script(
        "const spans = Array.from(document.querySelectorAll('#attention-tokens-text .wb-token'));"
        "return [spans.map(s => s.dataset.w === undefined ? null : Number(s.dataset.w)),"
        "        spans.map(s => s.style.backgroundColor)];"
    )


def alphas(colours: list[str]) -> np.ndarray:
    """Background alphas (`rgb(...)`: opaque; no colour: 0)."""
    return np.array(
        [
            (float(c.rsplit(",", 1)[1].rstrip(")")) if c.startswith("rgba") else 1.0) if c else 0.0
            for c in colours
        ]
    )


@pytest.mark.browser
def test_hovering_a_token_colours_the_others_by_its_pattern(duo, zoo_model, screenshot_dir):
    model = zoo_model("tiny-ioi")
    query = {"model": "tiny-ioi", "prompt": PROMPT, "layer": 1, "head": 2}
    duo.wait_for_page(f"{duo.server_url}/attention?{urllib.parse.urlencode(query)}")
    duo.wait_for_element("#attention-tokens-text.wb-tokens-L1H2", timeout=30)
    _, cache = model.run_with_cache(PROMPT, names=["blocks.1.attn.hook_pattern"])
    truth = cache["blocks.1.attn.hook_pattern"][0, 2].numpy()  # [query, key]
    spans = duo.driver.find_elements("css selector", "#attention-tokens-text .wb-token")
    assert len(spans) == truth.shape[0]

    before = duo.driver.execute_script(CALLS)
    ActionChains(duo.driver).move_to_element(spans[6]).perform()
    duo.wait_for_contains_text("#attention-tokens-readout", "query 6:", timeout=5)
    assert duo.driver.execute_script(CALLS) == before  # hovering asks the server nothing
    weights, colours = painted(duo)
    np.testing.assert_allclose(np.array(weights, dtype=float), truth[6], atol=1e-5)
    np.testing.assert_allclose(alphas(colours), truth[6], atol=0.005)  # Chrome keeps 8-bit alpha
    card = duo.find_element("#attention-tokens-text").find_element("xpath", "..")
    card.screenshot(str(screenshot_dir / "attention-tokens.png"))

    toggle = duo.driver.find_elements("css selector", "#attention-tokens-direction label")
    toggle[1].click()  # "queries → hovered key"
    spans[3].click()  # keys direction: column 3, kept after the pointer leaves
    ActionChains(duo.driver).move_to_element(duo.find_element("#attention-error")).perform()
    duo.wait_for_contains_text("#attention-tokens-readout", "key 3:", timeout=5)
    weights, colours = painted(duo)
    np.testing.assert_allclose(np.array(weights, dtype=float), truth[:, 3], atol=1e-5)
    np.testing.assert_allclose(alphas(colours), truth[:, 3], atol=0.005)  # Chrome keeps 8-bit alpha
    wait_until(duo, lambda: duo.get_logs() == [], message="no browser errors")
