"""Every page loads with no browser console errors, and the navigation keeps the selection."""

from __future__ import annotations

import urllib.parse

import pytest

from workbench.ui.pages import PAGES

pytestmark = pytest.mark.browser
QUERY = {
    "model": "tiny-ioi",
    "prompt": "When Mary and John went to the store",
    "layer": 1,
    "head": 2,
}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.__name__.rsplit(".", 1)[-1])
def test_page_loads_without_console_errors(duo, page):
    duo.wait_for_page(f"{duo.server_url}{page.PAGE['path']}?{urllib.parse.urlencode(QUERY)}")
    duo.wait_for_text_to_equal(
        "h2", page.PAGE["name"] if page.PAGE["path"] != "/" else "Model & prompt", timeout=30
    )
    href = duo.find_element("#nav-heads").get_attribute("href")
    shared = urllib.parse.parse_qs(urllib.parse.urlparse(href).query)
    assert shared["model"] == ["tiny-ioi"] and shared["prompt"] == [QUERY["prompt"]]
    assert duo.get_logs() == []
