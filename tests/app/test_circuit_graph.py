"""Circuit graph in a real browser (issue 16, item 4): an AtP* trace with the IOI corruption
chosen on the page, the default top-20 connected cut, the legend, the current cut marked on
the faithfulness curve with its bootstrap interval, and a click on a head that opens it on the
Heads page; on MiniLM the task defaults to one that fits an encoder.

Saves `artifacts/screenshots/circuit_graph.png`.
"""

from __future__ import annotations

import re
import urllib.parse

import pytest
from selenium.webdriver.common.action_chains import ActionChains

from tests.app.browser_helpers import save_page_screenshot, wait_for_figure, wait_until
from tests.app.test_circuits_page import choose, set_number
from workbench.ui import state

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRACES = """
    const el = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
    if (!el || !el.data) return [];
    const plain = v => v && v._inputArray !== undefined ? plain(v._inputArray)
        : ArrayBuffer.isView(v) ? Array.from(v) : Array.isArray(v) ? v.map(plain) : v;
    return el.data.map(t => ({meta: t.meta || null, showlegend: t.showlegend !== false,
                               customdata: plain(t.customdata) || null}));
"""


def traces(duo, graph_id: str) -> list[dict]:
    """meta, showlegend and customdata of each trace of a graph, as the browser holds them."""
    return duo.driver.execute_script(TRACES, graph_id)


def test_atp_star_trace_legend_cut_marker_and_head_link(duo, screenshot_dir):
    query = urllib.parse.urlencode({"model": "tiny-ioi", "task": "ioi"})
    duo.wait_for_page(f"{duo.server_url}/circuits?{query}")
    duo.wait_for_element("#circuits-run", timeout=20)
    assert duo.find_element("#circuits-corruption-box").is_displayed()
    choose(duo, "circuits-method", "atp*")
    choose(duo, "circuits-corruption", "s1s2")
    set_number(duo, "circuits-n", 4)
    duo.find_element("#circuits-run").click()
    duo.wait_for_contains_text("#circuits-counts", "of 110 edges", timeout=120)

    run = state.run_store().list_runs()[0]
    assert run.config["method"] == "atp*" and run.config["corruption"] == "s1s2"
    stored = state.run_store().load_result(run.run_id)
    cut = stored.prune(top_n=20)  # the default cut
    edges = wait_until(
        duo,
        lambda: [t for t in traces(duo, "circuits-graph") if t["meta"] == "edge"],
        timeout=30,
    )
    assert len(edges) == cut.n_edges
    assert any(t["showlegend"] for t in edges)
    graph = wait_for_figure(duo, "circuits-graph", lambda f: "legend" in f["layout"])
    assert "width ∝ |score|" in graph["layout"]["legend"]["title"]["text"]
    curve = wait_for_figure(duo, "circuits-curve", lambda f: "shapes" in f["layout"])
    assert curve["layout"]["shapes"][0]["x0"] == cut.n_edges
    assert [t for t in traces(duo, "circuits-curve") if t["meta"] == "cut"]
    duo.wait_for_contains_text("#circuits-faithfulness", "bootstrap", timeout=20)
    assert re.search(
        r"\[-?\d\.\d{3}, -?\d\.\d{3}\]", duo.find_element("#circuits-faithfulness").text
    )
    save_page_screenshot(duo, screenshot_dir / "circuit_graph.png")

    # click the first head's node: a link to it on the Heads page
    nodes = traces(duo, "circuits-graph")[-1]["customdata"]
    index = next(i for i, n in enumerate(nodes) if re.fullmatch(r"L\d+H\d+", n))
    layer, head = map(int, re.findall(r"\d+", nodes[index]))
    points = duo.driver.find_elements(
        "css selector", "#circuits-graph .scatterlayer .trace:last-child .points path"
    )
    ActionChains(duo.driver).move_to_element(points[index]).click().perform()
    link = duo.wait_for_element("#circuits-head-link", timeout=20)
    assert f"layer={layer}" in link.get_attribute("href")
    link.click()
    wait_until(duo, lambda: "/heads" in duo.driver.current_url, timeout=20)
    wait_until(
        duo,
        lambda: (
            duo.find_element("#heads-layer").get_attribute("value") == str(layer)
            and duo.find_element("#heads-head").get_attribute("value") == str(head)
        ),
        timeout=30,
    )
    assert duo.get_logs() == []


def test_minilm_defaults_to_a_task_that_fits_an_encoder(duo):
    query = urllib.parse.urlencode({"model": "minilm", "task": "ioi"})
    duo.wait_for_page(f"{duo.server_url}/circuits?{query}")
    duo.wait_for_element("#circuits-run", timeout=60)
    assert duo.find_element("#circuits-task").get_attribute("value") == "similarity"
    assert not duo.find_element("#circuits-corruption-box").is_displayed()
