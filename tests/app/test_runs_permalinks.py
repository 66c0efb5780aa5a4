"""Run permalinks and navigation in a real browser.

A run saved by another session (a CLI-like run, or another tab) opens from its permalink
`/runs?run=<id>` in a fresh page: every run is listed, the run is picked, its stored figure is
drawn, the address bar keeps the run next to the shared selection and the settings column
shows its config (without the session id). A link naming no run
shows the page's alert. The navigation bar marks the page being shown (`nav-active`).
"""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import attention_stats
from tests.app.browser_helpers import wait_for_figure, wait_until
from workbench.ui import state
from workbench.ui.shared import SESSION_KEY

pytestmark = pytest.mark.browser
PROMPT = "When Mary and John went to the store, John gave a drink to"


def nav_classes(duo) -> dict[str, str]:
    return {
        a.get_attribute("id"): a.get_attribute("class") or ""
        for a in duo.find_elements("[id^='nav-']")
    }


def test_permalink_reopens_a_run_and_nav_marks_the_page(duo, zoo_model):
    result = attention_stats(zoo_model("tiny-ioi"), [PROMPT])
    config = {SESSION_KEY: "f" * 32, "prompt": PROMPT, "mass_block": 4}
    run_id = state.run_store().save(result, model="tiny-ioi", config=config)

    duo.wait_for_page(f"{duo.server_url}/runs?run={run_id}&model=tiny-ioi")
    heat = wait_for_figure(duo, "runs-figure", lambda f: f["data"] and f["data"][0].get("z"))
    expected = result.per_head()["entropy"].to_numpy()
    assert pd.Series(sum(heat["data"][0]["z"], [])).round(5).tolist() == list(expected.round(5))
    duo.wait_for_element("#runs-opened", timeout=15)
    link = duo.find_element("#runs-permalink").get_attribute("href")
    assert link == f"{duo.server_url}/runs?run={run_id}"

    address = "return window.location.pathname + window.location.search"
    kept = f"/runs?model=tiny-ioi&run={run_id}"  # the shell's sync rewrote it, then the page
    wait_until(duo, lambda: duo.driver.execute_script(address) == kept)
    settings = duo.wait_for_element(f"#runs-settings-{run_id}", timeout=15).text
    assert settings.startswith("prompt=When Mary and John") and "mass_block=4" in settings
    assert SESSION_KEY not in settings and "f" * 32 not in settings
    row_link = duo.find_element(f"#runs-link-{run_id}").get_attribute("href")
    assert row_link == link
    wait_until(duo, lambda: "nav-active" in nav_classes(duo)["nav-runs"])
    assert [i for i, c in nav_classes(duo).items() if "nav-active" in c] == ["nav-runs"]
    assert duo.driver.execute_script(address) == kept

    duo.wait_for_page(f"{duo.server_url}/runs?run=../../etc/passwd")
    alert = duo.wait_for_element("#runs-link-alert", timeout=15)
    assert "is not a run id" in alert.text
    duo.wait_for_page(f"{duo.server_url}/runs?run=20000101-000000-deadbeef")
    alert = duo.wait_for_element("#runs-link-alert", timeout=15)
    assert "no saved run '20000101-000000-deadbeef'" in alert.text
    assert run_id in [r.run_id for r in state.run_store().list_runs()]

    duo.find_element("#nav-prompt").click()
    wait_until(duo, lambda: "nav-active" in nav_classes(duo)["nav-prompt"], timeout=20)
    assert "nav-active" not in nav_classes(duo)["nav-runs"]
    assert duo.get_logs() == []
