"""Heads page in a real browser: SVD spectrum, score decomposition of a clicked pair and
taxonomy figures hold the library's numbers; a taxonomy click selects the head.

Saves `artifacts/screenshots/heads.png`.
"""

from __future__ import annotations

import urllib.parse

import numpy as np
import pytest

from analysis import decompose_score, head_taxonomy, qk_ov_svd
from tests.app.browser_helpers import save_page_screenshot, wait_for_figure, wait_until

pytestmark = pytest.mark.browser
PROMPT = "When Mary and John went to the store, John gave a drink to"


def emit_click(duo, graph_id: str, point: dict) -> None:
    duo.driver.execute_script(
        f"document.querySelector('#{graph_id} .js-plotly-plot')"
        ".emit('plotly_click', {points: [arguments[0]]});",
        point,
    )


def test_head_anatomy_flow(duo, zoo_model, screenshot_dir):
    model = zoo_model("tiny-ioi")
    query = urllib.parse.urlencode({"model": "tiny-ioi", "prompt": PROMPT, "layer": 1, "head": 0})
    duo.wait_for_page(f"{duo.server_url}/heads?{query}")

    svd = qk_ov_svd(model, 1, 0, n_components=3, top_tokens=5)
    spectrum = wait_for_figure(duo, "heads-spectrum", lambda f: "L1H0" in str(f["layout"]))
    np.testing.assert_allclose(spectrum["data"][0]["y"], svd.qk_singular_values, rtol=1e-9)

    wait_for_figure(duo, "heads-pattern", lambda f: "L1H0" in str(f["layout"]))
    emit_click(duo, "heads-pattern", {"x": 13, "y": 14, "curveNumber": 0})
    expected = decompose_score(model, PROMPT, 1, 0, 14, 13)
    bars = wait_for_figure(
        duo, "heads-decomposition", lambda f: f["data"] and f["data"][0].get("y")
    )
    np.testing.assert_allclose(bars["data"][0]["y"], expected.terms, rtol=1e-9, atol=1e-12)
    wait_for_figure(duo, "heads-upstream", lambda f: f["data"] and f["data"][0]["type"] == "bar")

    taxonomy = head_taxonomy(model)
    heat = wait_for_figure(duo, "heads-taxonomy", lambda f: f["data"] and f["data"][0].get("z"))
    assert heat["data"][0]["x"] == [f"L{r.layer}H{r.head}" for r in taxonomy.scores.itertuples()]
    wait_for_figure(duo, "heads-clusters", lambda f: f["data"])
    save_page_screenshot(duo, screenshot_dir / "heads.png")

    emit_click(duo, "heads-taxonomy", {"x": "L0H3", "y": "sink", "curveNumber": 0})
    wait_for_figure(duo, "heads-spectrum", lambda f: "L0H3" in str(f["layout"]))
    wait_until(
        duo, lambda: "layer=0" in duo.driver.current_url and "head=3" in duo.driver.current_url
    )
    assert duo.get_logs() == []


def test_out_of_range_head_is_a_clear_message(duo):
    query = urllib.parse.urlencode({"model": "tiny-ioi", "prompt": PROMPT, "layer": 5, "head": 0})
    duo.wait_for_page(f"{duo.server_url}/heads?{query}")
    duo.wait_for_contains_text("#heads-alert", "layer: 5 is out of range for tiny-ioi", timeout=20)
