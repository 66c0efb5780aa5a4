"""Every head at once in a real browser: the Attention page's grid of pattern thumbnails
(this layer, then all heads); clicking a thumbnail selects that head, which is then outlined
in the grid and on the layer x head map.

Saves `artifacts/screenshots/attention_grid.png`.
"""

from __future__ import annotations

import urllib.parse

import pytest

from analysis.statistics.pattern_grid import grid_layout
from tests.app.browser_helpers import save_page_screenshot, wait_for_figure, wait_until
from workbench.heads import Head

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PROMPT = "When Mary and John went to the store, John gave a drink to"


def click_tile(duo, layout, head: Head) -> None:
    x, y = layout.origin(layout.heads.index(head))
    duo.driver.execute_script(
        "document.querySelector('#attention-grid .js-plotly-plot')"
        ".emit('plotly_click', {points: [arguments[0]]});",
        {"x": x + 1, "y": y + 1, "curveNumber": 0},
    )


def outlined(figure: dict) -> list[str]:
    return [s.get("name", "") for s in figure["layout"].get("shapes") or []]


def test_clicking_a_thumbnail_selects_that_head(duo, zoo_model, screenshot_dir):
    model = zoo_model("tiny-ioi")
    n = model.to_tokens(PROMPT).shape[1]
    query = urllib.parse.urlencode({"model": "tiny-ioi", "prompt": PROMPT, "layer": 0, "head": 0})
    duo.wait_for_page(f"{duo.server_url}/attention?{query}")
    grid = wait_for_figure(duo, "attention-grid", lambda f: "selected L0H0" in outlined(f))
    assert grid["layout"]["meta"]["heads"] == ["L0H0", "L0H1", "L0H2", "L0H3"]

    click_tile(duo, grid_layout(2, 4, "layer", 0, n, n), Head(0, 3))
    wait_for_figure(duo, "attention-pattern", lambda f: "L0H3" in str(f["layout"]["title"]))
    wait_for_figure(duo, "attention-grid", lambda f: "selected L0H3" in outlined(f))
    wait_for_figure(duo, "attention-heads", lambda f: "selected L0H3" in outlined(f))

    # all heads: a real click on the scope control, then a thumbnail of the other layer
    duo.driver.find_element("xpath", "//label[contains(., 'all heads')]").click()
    grid = wait_for_figure(duo, "attention-grid", lambda f: f["layout"]["meta"]["scope"] == "all")
    assert len(grid["layout"]["meta"]["heads"]) == 8
    click_tile(duo, grid_layout(2, 4, "all", 0, n, n), Head(1, 2))
    wait_for_figure(duo, "attention-pattern", lambda f: "L1H2" in str(f["layout"]["title"]))
    wait_for_figure(duo, "attention-heads", lambda f: "selected L1H2" in outlined(f))
    wait_until(duo, lambda: "layer=1" in duo.driver.current_url)
    save_page_screenshot(duo, screenshot_dir / "attention_grid.png")
    assert duo.find_element("#attention-error").text == ""
    assert duo.get_logs() == []
