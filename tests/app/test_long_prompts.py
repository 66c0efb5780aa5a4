"""Long prompts on the Attention page in a real browser (issue 16): a 300-token MiniLM
prompt is drawn as a block-max overview plus a full-resolution window holding the model's
own numbers; a click on the window locks exactly the query clicked; the hover readout names
both tokens from the one token list; a `token` beyond the prompt is cleared with a note;
the colour scale comes from the URL.

Saves `artifacts/screenshots/attention-long-prompt.png`.
"""

from __future__ import annotations

import urllib.parse

import numpy as np
import pytest

from tests.app.browser_helpers import save_page_screenshot, wait_for_figure, wait_until

pytestmark = pytest.mark.browser
LONG = " ".join(["the cat sat on the mat and looked at the dog"] * 27)


def open_page(duo, **query):
    duo.wait_for_page(f"{duo.server_url}/attention?{urllib.parse.urlencode(query)}")


def windowed(fig) -> bool:
    return len(fig["data"]) == 2 and fig["layout"].get("meta", {}).get("view") == "overview+window"


def test_long_prompt_window_holds_the_models_numbers_and_clicks_lock_that_query(
    duo, zoo_model, screenshot_dir
):
    model = zoo_model("minilm")
    n = model.to_tokens(LONG).shape[1]
    assert 200 < n < 512
    open_page(duo, model="minilm", prompt=LONG, layer=1, head=3, token=150)
    fig = wait_for_figure(duo, "attention-pattern", windowed, timeout=60)
    _, cache = model.run_with_cache(LONG, names=["blocks.1.attn.hook_pattern"])
    truth = cache["blocks.1.attn.hook_pattern"][0, 3].numpy()  # [query, key]
    rows = fig["data"][1]["y"]
    assert rows[0] <= 150 <= rows[-1]
    np.testing.assert_allclose(
        np.asarray(fig["data"][1]["z"], dtype=float), truth[rows[0] : rows[-1] + 1], atol=1e-5
    )
    # click (query 147, key 40) on the window through plotly's own event path
    duo.driver.execute_script(
        "const el = document.querySelector('#attention-pattern .js-plotly-plot');"
        "el.emit('plotly_click', {points: [{x: 40, y: 147, curveNumber: 1}]});"
    )
    wait_until(duo, lambda: duo.find_element("#attention-token").get_attribute("value") == "147")
    fig = wait_for_figure(
        duo, "attention-pattern", lambda f: windowed(f) and 141 in f["data"][1]["y"]
    )
    assert fig["data"][1]["y"][0] == 141  # the window re-centred on the clicked query
    # the hover readout is built in the browser from the figure's one token list
    duo.driver.execute_script(
        "const el = document.querySelector('#attention-pattern .js-plotly-plot');"
        "el.emit('plotly_hover', {points: [{x: 40, y: 147, z: 0.25, curveNumber: 1}]});"
    )
    labels = fig["layout"]["meta"]["labels"]
    duo.wait_for_contains_text("#attention-hover", f"query {labels[147]}", timeout=10)
    assert f"key {labels[40]}" in duo.find_element("#attention-hover").text
    save_page_screenshot(duo, screenshot_dir / "attention-long-prompt.png")
    assert duo.get_logs() == []


def test_stale_token_is_cleared_and_the_scale_comes_from_the_url(duo):
    prompt = "When Mary and John went to the store, John gave a drink to"
    open_page(duo, model="tiny-ioi", prompt=prompt, layer=0, head=1, token=50, scale="log")
    duo.wait_for_contains_text("#attention-stale", "query token 50 is beyond this", timeout=20)
    fig = wait_for_figure(duo, "attention-pattern", lambda f: "L0H1" in str(f["layout"]))
    assert fig["layout"]["meta"]["scale"] == "log"
    assert duo.find_element("#attention-error").text == ""
    assert duo.find_element("#attention-pattern-loading") is not None
