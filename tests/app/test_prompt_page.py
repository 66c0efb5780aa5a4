"""Model & prompt page in a real browser: tokens, bad inputs as alerts, selection in the URL.

Saves `artifacts/screenshots/prompt.png`.
"""

from __future__ import annotations

import urllib.parse

import pytest
from selenium.webdriver.common.keys import Keys

from tests.app.browser_helpers import save_page_screenshot, wait_until

pytestmark = pytest.mark.browser


def set_prompt(duo, text: str) -> None:
    box = duo.find_element("#prompt-text")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    if text:
        duo.driver.execute_script(
            "const el = arguments[0]; const setter = Object.getOwnPropertyDescriptor("
            "HTMLTextAreaElement.prototype, 'value').set; setter.call(el, arguments[1]);"
            "el.dispatchEvent(new Event('input', {bubbles: true}));",
            box,
            text,
        )


def test_tokens_of_the_default_prompt(duo, screenshot_dir):
    duo.wait_for_page(duo.server_url + "/")
    duo.wait_for_element("#prompt-token-0", timeout=20)
    assert duo.find_element("#prompt-token-0").text.endswith("<bos>")
    count = duo.find_element("#prompt-count").text
    assert "tiny-ioi" in count and "2 layers × 4 heads" in count
    save_page_screenshot(duo, screenshot_dir / "prompt.png")
    assert duo.get_logs() == []


def test_typed_prompt_goes_into_the_url_and_the_nav_links(duo):
    duo.wait_for_page(duo.server_url + "/")
    duo.wait_for_element("#prompt-token-0", timeout=20)
    set_prompt(duo, "When Anna and Bob went home")
    duo.wait_for_contains_text("#prompt-count", "tokens", timeout=10)

    def query():
        return urllib.parse.parse_qs(urllib.parse.urlparse(duo.driver.current_url).query)

    wait_until(duo, lambda: query().get("prompt") == ["When Anna and Bob went home"])
    assert query()["model"] == ["tiny-ioi"]
    href = duo.find_element("#nav-attention").get_attribute("href")
    assert "/attention?" in href and "Anna" in urllib.parse.unquote_plus(href)


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("", "empty prompt"),
        ("word " * 400, "longer than tiny-ioi's context"),
    ],
)
def test_bad_prompts_show_a_clear_message(duo, prompt, message):
    duo.wait_for_page(duo.server_url + "/")
    duo.wait_for_element("#prompt-token-0", timeout=20)
    set_prompt(duo, prompt)
    duo.wait_for_contains_text("#prompt-error", message, timeout=15)
    assert "Traceback" not in duo.find_element("#prompt-summary").text
    set_prompt(duo, "Mary and John")  # the server still answers
    duo.wait_for_element("#prompt-token-2", timeout=15)


def test_missing_model_path_shows_a_clear_message(duo):
    duo.wait_for_page(duo.server_url + "/")
    duo.find_element("#prompt-path").send_keys("/no/such/checkpoint")
    duo.find_element("#prompt-load").click()
    duo.wait_for_contains_text("#prompt-load-status", "outside the folders", timeout=15)
    assert duo.get_logs() == []
