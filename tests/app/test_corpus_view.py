"""Attention page's Corpus section in a real browser: a corpus-stats run stored by
`analysis.statistics.corpus_stats(...)` is listed for its model only, and its heatmap (any
statistic and aggregate) and one head's distance histogram hold the stored numbers.

Saves `artifacts/screenshots/attention-corpus.png`.
"""

from __future__ import annotations

import urllib.parse

import numpy as np
import pytest

from analysis.statistics.corpus_stats import corpus_stats
from tests.app.browser_helpers import save_page_screenshot, wait_for_figure, wait_until
from workbench.ui import state

pytestmark = pytest.mark.browser
PROMPTS = [
    "When Mary and John went to the store, John gave a drink to Mary",
    "When Tom and Anna went to the park, Anna gave a ball to Tom",
    "After Kate and Paul met at the office, Paul handed a letter to Kate",
    "When Lisa and Mark sat in the garden, Mark passed the book to Lisa",
    "Then Sam and Emma arrived at the house, and Emma gave the keys to Sam",
]


def shown_options(duo, value: str | None = None) -> list:
    """The options of the open dropdown (Mantine keeps every Select's options mounted)."""
    selector = "[role=option]" + (f"[value='{value}']" if value else "")
    return [e for e in duo.find_elements(selector) if e.is_displayed()]


def choose(duo, select_id: str, value: str) -> None:
    duo.find_element(f"#{select_id}").click()
    wait_until(duo, lambda: shown_options(duo, value))[0].click()


def z_of(figure: dict) -> np.ndarray:
    return np.asarray(figure["data"][0]["z"], dtype=float)  # [layer, head]


def test_corpus_run_heatmap_and_histogram_hold_the_stored_numbers(duo, zoo_model, screenshot_dir):
    query = urllib.parse.urlencode({"model": "tiny-ioi", "layer": 1, "head": 2})
    duo.wait_for_page(f"{duo.server_url}/attention?{query}")
    duo.wait_for_contains_text("#attention-corpus-error", "No corpus-stats runs for tiny-ioi")

    store = state.run_store()
    computed = corpus_stats(zoo_model("tiny-ioi"), PROMPTS, docs_per_shard=2, store=store)
    other_model = store.save(computed, model="tiny-induction", config={})
    stored = store.load_result(computed.run_id)
    duo.find_element("#attention-corpus-refresh").click()
    heads = wait_for_figure(
        duo, "attention-corpus-heads", lambda f: f["data"] and len(f["data"][0]["z"]) == 2
    )
    expected = stored.per_head.pivot(index="layer", columns="head", values="entropy_mean")
    np.testing.assert_allclose(z_of(heads), expected.to_numpy(), rtol=1e-12)

    tokens = sum(len(zoo_model("tiny-ioi").to_str_tokens(p)) for p in PROMPTS)
    counts = duo.find_element("#attention-corpus-counts").text
    assert f"5 documents · {tokens} queries per head" in counts, counts
    duo.find_element("#attention-corpus-run").click()
    shown = [e.get_attribute("value") for e in wait_until(duo, lambda: shown_options(duo))]
    assert shown == [computed.run_id] and other_model not in shown
    duo.find_element("#attention-corpus-run").click()  # close the dropdown

    distance = wait_for_figure(duo, "attention-corpus-distance", lambda f: f["data"])
    assert [trace["name"] for trace in distance["data"]] == ["L1H2"]
    np.testing.assert_allclose(distance["data"][0]["y"], stored.distance_hist[1, 2], rtol=1e-12)

    choose(duo, "attention-corpus-stat", "sink")
    choose(duo, "attention-corpus-aggregate", "q95")
    heads = wait_for_figure(duo, "attention-corpus-heads", lambda f: "q95 sink" in str(f["layout"]))
    expected = stored.per_head.pivot(index="layer", columns="head", values="sink_q95")
    np.testing.assert_allclose(z_of(heads), expected.to_numpy(), rtol=1e-12)
    choose(duo, "attention-corpus-stat", "mean_distance")
    choose(duo, "attention-corpus-aggregate", "q50")
    heads = wait_for_figure(duo, "attention-corpus-heads", lambda f: "q50 mean_distance" in str(f))
    expected = stored.per_head.pivot(index="layer", columns="head", values="mean_distance_q50")
    np.testing.assert_allclose(z_of(heads), expected.to_numpy(), rtol=1e-12)

    # clicking a corpus cell selects that head for the whole page
    duo.driver.execute_script(
        "document.querySelector('#attention-corpus-heads .js-plotly-plot')"
        ".emit('plotly_click', {points: [{x: 3, y: 0, curveNumber: 0}]});"
    )
    distance = wait_for_figure(duo, "attention-corpus-distance", lambda f: "L0H3" in str(f))
    np.testing.assert_allclose(distance["data"][0]["y"], stored.distance_hist[0, 3], rtol=1e-12)
    wait_until(duo, lambda: duo.find_element("#attention-head").get_attribute("value") == "3")
    save_page_screenshot(duo, screenshot_dir / "attention-corpus.png")
    assert duo.get_logs() == []
