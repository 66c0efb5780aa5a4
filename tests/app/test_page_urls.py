"""Page settings in the URL and run "reopen" links, in a real browser.

The Circuits page opened with its settings in the URL shows them; a control changed by the
user reaches the address bar (not the navigation links, which carry only the shared
selection) and survives a reload. A circuit run of this browser session, listed on the Runs
page, has a "reopen on Circuits" link that opens the Circuits page with the run's settings
and draws that run (the address bar keeps `run=<id>`).
"""

from __future__ import annotations

import urllib.parse

import pytest
from selenium.webdriver.common.keys import Keys

from tests.app.browser_helpers import wait_for_figure, wait_until
from workbench.ui import state
from workbench.ui.shared import SESSION_KEY

pytestmark = pytest.mark.browser


def address_query(duo) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlparse(duo.driver.current_url).query)


def href_query(duo, element_id: str) -> dict[str, list[str]]:
    href = duo.find_element(f"#{element_id}").get_attribute("href")
    return urllib.parse.parse_qs(urllib.parse.urlparse(href).query)


def test_settings_reach_the_url_and_survive_a_reload(duo):
    query = "model=tiny-ioi&task=ioi&method=path&n=8&threshold=0.3&reference=1&bogus=1"
    duo.wait_for_page(f"{duo.server_url}/circuits?{query}")
    box = duo.wait_for_element("#circuits-n", timeout=15)
    wait_until(duo, lambda: duo.find_element("#circuits-method").get_attribute("value") == "path")
    assert box.get_attribute("value") == "8"
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE, "12")
    wait_until(duo, lambda: address_query(duo).get("n") == ["12"])
    shown = address_query(duo)
    assert shown["method"] == ["path"] and shown["threshold"] == ["0.3"] and "bogus" not in shown
    assert shown["reference"] == ["1"] and shown["model"] == ["tiny-ioi"]
    assert href_query(duo, "nav-heads") == {"model": ["tiny-ioi"], "task": ["ioi"]}

    duo.driver.refresh()
    wait_until(duo, lambda: duo.find_element("#circuits-n").get_attribute("value") == "12")
    assert duo.find_element("#circuits-method").get_attribute("value") == "path"
    assert duo.find_element("#circuits-reference").is_selected()
    assert duo.get_logs() == []


def test_a_runs_reopen_link_opens_the_circuit_on_its_page(duo, zoo_model):
    from circuits import trace
    from workbench.tasks import make_task

    duo.wait_for_page(f"{duo.server_url}/runs?model=tiny-ioi")
    session = wait_until(
        duo, lambda: duo.driver.execute_script("return sessionStorage.getItem('session-id')")
    ).strip('"')
    model = zoo_model("tiny-ioi")
    circuit = trace(model, make_task("ioi", model, n=4), method="eap")
    config = {"task": "ioi", "method": "eap", "n_prompts": 4, "reference": False}
    config |= {"corruption": "s1s2", SESSION_KEY: session}
    with state.run_store().begin_run(kind="circuit", model="tiny-ioi", config=config) as run:
        run.write_result(circuit)

    duo.find_element("#runs-refresh").click()
    link = duo.wait_for_element(f"#runs-reopen-{run.run_id}", timeout=15)
    assert link.text == "reopen on Circuits"
    link.click()
    graph = wait_for_figure(duo, "circuits-graph", lambda f: len(f["data"]) > 1, timeout=20)
    assert graph["data"]
    counts = duo.find_element("#circuits-counts").text
    assert f"of {len(circuit.edges)} edges" in counts and "(eap on ioi)" in counts
    assert duo.find_element("#circuits-n").get_attribute("value") == "4"
    assert duo.find_element("#circuits-corruption").get_attribute("value") == "s1s2"
    shown = address_query(duo)
    assert shown["run"] == [run.run_id] and shown["n"] == ["4"] and shown["method"] == ["eap"]
    assert "run" not in href_query(duo, "nav-runs")
    assert duo.get_logs() == []


def test_job_pages_open_without_an_alert(duo):
    """A fresh load of a page with a background job (no `run=` in the URL) shows no alert:
    Dash's first call of a page added by the router marks the empty job store as changed."""
    for page in ("attacks", "guidance", "circuits"):
        duo.wait_for_page(f"{duo.server_url}/{page}?model=tiny-ioi")
        duo.wait_for_element(f"#{page}-run", timeout=20)
        wait_until(duo, duo._wait_for_callbacks, timeout=30, message=f"{page}: callbacks done")
        alerts = [e.text for e in duo.find_elements(".mantine-Alert-root")]
        assert alerts == [], (page, alerts)
