"""Cancel in a real browser (Debian chromium): the job's progress label tells the truth.

A long attack (1000 steps on 64 prompts, flip, which stops early only on success) is started
and cancelled while it runs: the label reads "cancelled" and no result appears; a short one
runs to the end: the label reads "finished" and its outcome table appears.
"""

from __future__ import annotations

import urllib.parse

import pytest

from tests.app.browser_helpers import wait_until
from workbench.ui import jobs

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROMPT = "When Mary and John went to the store , John gave a drink to"


def _label(duo) -> str:
    return duo.find_element("#attacks-progress-label").text


def _set(duo, element_id: str, value: int) -> None:
    box = duo.find_element(f"#{element_id}")
    duo.clear_input(box)
    box.send_keys(str(value))


def test_cancel_says_cancelled_and_a_finished_job_says_finished(duo):
    query = urllib.parse.urlencode({"model": "tiny-ioi", "prompt": PROMPT})
    duo.wait_for_page(f"{duo.server_url}/attacks?{query}")
    assert duo.wait_for_element("#attacks-progress-label", timeout=20).text == jobs.IDLE
    _set(duo, "attacks-steps", 1000)
    _set(duo, "attacks-prompts", 64)
    duo.find_element("#attacks-run").click()
    cancel = duo.find_element("#attacks-cancel")
    wait_until(duo, cancel.is_enabled, timeout=60, message="the job running")
    cancel.click()
    wait_until(duo, lambda: _label(duo) == jobs.CANCELLED, timeout=60, message="cancelled")
    wait_until(duo, lambda: not cancel.is_enabled(), timeout=30, message="cancel disabled")
    assert duo.find_element("#attacks-run").is_enabled()
    assert not duo.find_elements("#attacks-outcome-0")  # the cancelled job left no result

    _set(duo, "attacks-steps", 1)
    _set(duo, "attacks-prompts", 1)
    duo.find_element("#attacks-run").click()
    wait_until(duo, lambda: _label(duo) == jobs.FINISHED, timeout=120, message="finished")
    duo.wait_for_element("#attacks-outcome-0", timeout=30)
    assert duo.get_logs() == []
