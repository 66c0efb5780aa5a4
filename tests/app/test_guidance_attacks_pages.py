"""Guidance and Attacks pages in a real browser: side-by-side generations equal to
`analysis.steering.guidance.guide`; a background attack whose stored result drives the loss curve,
the adversarial-token table and the before/after patterns; a head search filling the heads.

Saves `artifacts/screenshots/guidance.png` and `artifacts/screenshots/attacks.png`.
"""

from __future__ import annotations

import re
import urllib.parse

import numpy as np
import pytest

from analysis.steering.guidance import guide
from analysis.steering.head_perturbation import HeadPerturbation
from tests.app.browser_helpers import save_page_screenshot, wait_for_figure, wait_until
from workbench.ui import state

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PROMPT = "When Mary and John went to the store , John gave a drink to"


def open_page(duo, page: str, **extra):
    query = urllib.parse.urlencode({"model": "tiny-ioi", "prompt": PROMPT, **extra})
    duo.wait_for_page(f"{duo.server_url}/{page}?{query}")


def test_guided_and_plain_generations_side_by_side(duo, zoo_model, screenshot_dir):
    open_page(duo, "guidance", layer=1, head=2)
    duo.wait_for_element("#guidance-generate", timeout=20).click()
    duo.wait_for_contains_text("#guidance-guided", " ", timeout=30)
    model = zoo_model("tiny-ioi")
    p = HeadPerturbation(heads=((1, 2),), method="identity", u=1.0)
    plain = guide(model, PROMPT, p, w=0.0, max_new_tokens=8)
    guided = guide(model, PROMPT, p, w=1.5, max_new_tokens=8)
    wait_until(duo, lambda: duo.find_element("#guidance-guided").text == guided.text.strip())
    assert duo.find_element("#guidance-plain").text == plain.text.strip()
    shift = wait_for_figure(duo, "guidance-shift", lambda f: f["data"] and f["data"][0].get("y"))
    np.testing.assert_allclose(shift["data"][0]["y"], guided.shift_chosen.numpy(), rtol=1e-5)
    save_page_screenshot(duo, screenshot_dir / "guidance.png")
    assert duo.get_logs() == []


def test_head_search_runs_in_the_background(duo):
    open_page(duo, "guidance")
    duo.wait_for_element("#guidance-run", timeout=20).click()
    pills = wait_until(
        duo,
        lambda: duo.find_elements(".mantine-MultiSelect-pill"),
        timeout=120,
        message="searched heads shown",
    )
    names = [pill.text for pill in pills]
    assert names and all(re.fullmatch(r"L[01]H[0-3]", n) for n in names), names


def test_attack_flow(duo, screenshot_dir):
    open_page(duo, "attacks")
    duo.wait_for_element("#attacks-run", timeout=20).click()
    duo.wait_for_element("#attacks-outcome-0", timeout=180)
    runs = [r for r in state.run_store().list_runs() if r.kind == "attack"]
    result = state.run_store().load_result(runs[-1].run_id)
    assert duo.find_element("#attacks-outcome-0").text.endswith(result.prompts["adversarial"][0])
    loss = wait_for_figure(duo, "attacks-loss", lambda f: len(f["data"]) == len(result.curves))
    np.testing.assert_allclose(loss["data"][0]["y"], result.curves["0"], rtol=1e-6)
    before = wait_for_figure(duo, "attacks-before", lambda f: "before" in str(f["layout"]))
    after = wait_for_figure(duo, "attacks-after", lambda f: "after" in str(f["layout"]))
    assert len(after["data"][0]["z"]) > len(before["data"][0]["z"])  # the adversarial tokens
    save_page_screenshot(duo, screenshot_dir / "attacks.png")
    assert duo.get_logs() == []
