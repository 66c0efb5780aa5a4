"""Attention page in a real browser: heatmap and pattern data match the library, hover
previews, click locks, figure export downloads, bad inputs as alerts.

Saves `artifacts/screenshots/attention.png`.
"""

from __future__ import annotations

import time
import urllib.parse
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains

from analysis.statistics.attention_stats import attention_stats
from tests.app.browser_helpers import save_page_screenshot, wait_for_figure, wait_until
from workbench.ui import state

pytestmark = pytest.mark.browser
PROMPT = "When Mary and John went to the store, John gave a drink to"


def open_page(duo, **query):
    query = {"model": "tiny-ioi", "prompt": PROMPT, **query}
    duo.wait_for_page(f"{duo.server_url}/attention?{urllib.parse.urlencode(query)}")


def test_heatmap_and_pattern_hold_the_librarys_numbers(duo, zoo_model, screenshot_dir):
    open_page(duo, layer=1, head=2)
    model = zoo_model("tiny-ioi")
    expected = attention_stats(model, [PROMPT]).per_head()
    heads = wait_for_figure(
        duo, "attention-heads", lambda f: f["data"] and len(f["data"][0].get("z") or []) == 2
    )
    z = np.asarray(heads["data"][0]["z"], dtype=float)  # [layer, head]
    np.testing.assert_allclose(z.ravel(), expected["entropy"].to_numpy(), atol=1e-5)

    _, cache = model.run_with_cache(PROMPT, names=["blocks.1.attn.hook_pattern"])
    truth = cache["blocks.1.attn.hook_pattern"][0, 2].numpy()  # [query, key]
    pattern = wait_for_figure(duo, "attention-pattern", lambda f: "L1H2" in str(f["layout"]))
    np.testing.assert_allclose(np.asarray(pattern["data"][0]["z"], dtype=float), truth, atol=1e-5)
    ticks = pattern["layout"]["xaxis"]["ticktext"]
    assert ticks[0] == "0:<bos>" and ticks[1] == "1:When"
    wait_for_figure(
        duo, "attention-distance", lambda f: f["data"] and f["data"][0]["type"] == "bar"
    )
    wait_for_figure(
        duo, "attention-block", lambda f: f["data"] and f["data"][0]["type"] == "heatmap"
    )
    save_page_screenshot(duo, screenshot_dir / "attention.png")

    duo.find_element("#attention-save").click()
    saved = duo.wait_for_element("#attention-saved-id", timeout=20).text.removeprefix("saved ")
    stored = state.run_store().load_result(saved)
    np.testing.assert_allclose(stored.per_head()["entropy"], expected["entropy"], atol=1e-6)
    assert duo.get_logs() == []


def test_click_locks_the_head_and_the_selection_reaches_the_url(duo):
    open_page(duo, layer=0, head=0)
    wait_for_figure(duo, "attention-pattern", lambda f: "L0H0" in str(f["layout"]))
    # click the cell of layer 1, head 3 through plotly's own event path
    duo.driver.execute_script(
        "const el = document.querySelector('#attention-heads .js-plotly-plot');"
        "el.emit('plotly_click', {points: [{x: 3, y: 1, curveNumber: 0}]});"
    )
    wait_for_figure(duo, "attention-pattern", lambda f: "L1H3" in str(f["layout"]))
    query = lambda: urllib.parse.parse_qs(urllib.parse.urlparse(duo.driver.current_url).query)  # noqa: E731
    wait_until(duo, lambda: query().get("layer") == ["1"] and query().get("head") == ["3"])
    assert query()["prompt"] == [PROMPT]


def test_hover_previews_without_locking(duo):
    open_page(duo, layer=0, head=1)
    wait_for_figure(duo, "attention-pattern", lambda f: "L0H1" in str(f["layout"]))
    graph = duo.find_element("#attention-heads .nsewdrag")
    ActionChains(duo.driver).move_to_element_with_offset(graph, 5, 5).perform()
    preview = wait_for_figure(duo, "attention-pattern", lambda f: "preview" in str(f["layout"]))
    assert "L0H0" in str(preview["layout"]["title"])
    assert duo.find_element("#attention-head").get_attribute("value") == "1"


def test_export_downloads_valid_png_and_svg(duo):
    open_page(duo, layer=0, head=1)
    wait_for_figure(duo, "attention-pattern", lambda f: "L0H1" in str(f["layout"]))
    folder = duo.download_path
    for fmt, check in (
        ("png", lambda b: b[:8] == b"\x89PNG\r\n\x1a\n"),
        ("svg", lambda b: ET.fromstring(b).tag.endswith("svg")),
    ):
        duo.find_element(f"#attention-pattern-export-{fmt}").click()
        path = wait_until(
            duo,
            lambda fmt=fmt: next(iter(__import__("pathlib").Path(folder).glob(f"*.{fmt}")), None),
            timeout=30,
        )
        time.sleep(0.3)  # let chromium finish writing
        data = path.read_bytes()
        assert path.name.startswith("attention-pattern_tiny-ioi_L0H1")
        assert check(data), path


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"head": 9}, "head: 9 is out of range for tiny-ioi (4 heads"),
        ({"model": "/no/such/checkpoint"}, "outside the folders this dashboard opens"),
        ({"prompt": "word " * 400}, "longer than tiny-ioi's context"),
    ],
)
def test_bad_inputs_show_a_message_and_the_server_keeps_serving(duo, query, message):
    open_page(duo, **query)
    duo.wait_for_contains_text("#attention-alert", message, timeout=20)
    open_page(duo, layer=0, head=0)
    wait_for_figure(duo, "attention-pattern", lambda f: "L0H0" in str(f["layout"]))
