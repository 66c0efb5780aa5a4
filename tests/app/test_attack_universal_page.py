"""The Attacks page's universal mode in a real browser: a tiny universal attack runs as a
background job (its counts set from the page's address), and the page shows the stored run's span, its held-out success rate with the
95% interval beside the random baseline's, the bar chart of those rates and one row per
held-out prompt."""

from __future__ import annotations

import urllib.parse

import pytest

from tests.app.browser_helpers import wait_for_figure, wait_until
from workbench.ui import state

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PROMPT = "When Mary and John went to the store , John gave a drink to"


def test_universal_attack_shows_rate_interval_and_baseline(duo):
    counts = {"uni_search": 2, "uni_heldout": 3, "uni_steps": 1, "uni_nadv": 3}
    query = urllib.parse.urlencode({"model": "tiny-ioi", "prompt": PROMPT, **counts})
    duo.wait_for_page(f"{duo.server_url}/attacks?{query}")
    duo.wait_for_element("#attacks-uni-run", timeout=20)
    duo.find_element("#attacks-uni-run").click()
    duo.wait_for_element("#attacks-uni-rate-baseline_rate", timeout=60)
    [run] = [r for r in state.run_store().list_runs() if r.kind == "universal_attack"]
    result = state.run_store().load_result(run.run_id)
    assert (result.n_search, result.n_held_out, len(result.span_tokens)) == (2, 3, 3)
    assert result.steps_used <= 1
    for name in ("success", "baseline_rate"):
        ci = getattr(result, name)
        cells = duo.find_element(f"#attacks-uni-rate-{name}").text
        assert f"{ci['estimate']:.1%}" in cells and f"{ci['low']:.1%} – {ci['high']:.1%}" in cells
    assert repr(result.span_text) == duo.find_element("#attacks-uni-span-text").text
    assert len(duo.find_elements("[id^=attacks-uni-outcome-]")) == 3
    figure = wait_for_figure(
        duo, "attacks-uni-rates-figure", lambda f: f["data"] and f["data"][0].get("x")
    )
    assert figure["data"][0]["x"] == pytest.approx(list(result.rates()["estimate"]))
    assert "random span (one draw)" in figure["data"][0]["y"]
    assert "bootstrap intervals" in figure["layout"]["title"]["text"]
    label = "#attacks-uni-progress-label"
    wait_until(duo, lambda: duo.find_element(label).text == "finished", message="finished")
    assert duo.get_logs() == []
