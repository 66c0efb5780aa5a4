"""Circuits page in a real browser: a background trace with progress, the graph and its live
counts, faithfulness and ROC figures equal to the stored run, JSON export/import, Cancel.

Saves `artifacts/screenshots/circuits.png`.
"""

from __future__ import annotations

import json
import urllib.parse

import numpy as np
import pytest
import torch
from selenium.webdriver.common.keys import Keys

from circuits import Circuit
from tests.app.browser_helpers import save_page_screenshot, wait_for_figure, wait_until
from workbench.ui import state

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def open_page(duo):
    query = urllib.parse.urlencode({"model": "tiny-ioi", "task": "ioi"})
    duo.wait_for_page(f"{duo.server_url}/circuits?{query}")
    duo.wait_for_element("#circuits-run", timeout=20)


def choose(duo, select_id: str, value: str) -> None:
    duo.find_element(f"#{select_id}").click()
    option = duo.wait_for_element(f"[role=option][value='{value}']", timeout=10)
    option.click()


def set_number(duo, input_id: str, value: int) -> None:
    box = duo.find_element(f"#{input_id}")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE, str(value))
    wait_until(duo, lambda: box.get_attribute("value") == str(value))


def test_trace_in_the_background_then_prune_live(duo, screenshot_dir):
    open_page(duo)
    set_number(duo, "circuits-n", 8)
    duo.find_element("#circuits-reference").click()
    duo.find_element("#circuits-run").click()
    duo.wait_for_contains_text("#circuits-counts", "110 edges", timeout=120)

    runs = state.run_store().list_runs()
    assert [r.kind for r in runs] == ["circuit"]
    stored = state.run_store().load_result(runs[0].run_id)
    assert isinstance(stored, Circuit) and stored.method == "eap"
    curve = state.run_store().load_table(runs[0].run_id, "faithfulness")
    shown = wait_for_figure(duo, "circuits-curve", lambda f: f["data"] and f["data"][0].get("x"))
    np.testing.assert_allclose(shown["data"][0]["y"], curve["faithfulness"], atol=1e-9)
    roc = wait_for_figure(duo, "circuits-roc", lambda f: "AUC" in str(f["layout"]))
    assert f"{runs[0].config['roc_auc']:.3f}" in roc["layout"]["title"]["text"]
    graph = wait_for_figure(duo, "circuits-graph", lambda f: len(f["data"]) > 1)
    default_cut = stored.prune(top_n=20)  # the page's default cut: top 20, connected
    assert len(graph["data"]) == default_cut.n_edges + 1  # one line per kept edge, the nodes
    save_page_screenshot(duo, screenshot_dir / "circuits.png")

    # the slider: move it by keyboard; counts and graph follow
    handle = duo.find_element("#circuits-threshold [role=slider]")
    handle.click()
    for _ in range(30):
        handle.send_keys("\ue014")  # arrow right: +0.01 of max |score| each
    threshold = 0.3 * float(stored.scores.abs().max())
    expected = stored.prune(threshold=threshold)
    duo.wait_for_contains_text("#circuits-counts", f"{expected.n_edges} of 110 edges", timeout=20)
    wait_for_figure(duo, "circuits-graph", lambda f: len(f["data"]) == expected.n_edges + 1)
    assert duo.get_logs() == []


def test_json_export_and_import_round_trip(duo, tmp_path):
    open_page(duo)
    data = state.run_store().list_runs()
    circuit = state.run_store().load_result(data[0].run_id).prune(top_n=5, connected=False)
    path = tmp_path / "five.json"
    path.write_text(circuit.to_json())
    duo.find_element("#circuits-upload input[type=file]").send_keys(str(path))
    duo.wait_for_contains_text("#circuits-counts", "5 of 110 edges", timeout=20)

    duo.find_element("#circuits-json").click()
    folder = __import__("pathlib").Path(duo.download_path)
    exported = wait_until(duo, lambda: next(iter(folder.glob("circuit_*.json")), None), timeout=20)
    wait_until(duo, lambda: exported.stat().st_size > 0)
    back = Circuit.from_json(exported.read_text())
    assert back.kept_edges == circuit.kept_edges
    torch.testing.assert_close(back.scores, circuit.scores)

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"not": "a circuit"}))
    duo.find_element("#circuits-upload input[type=file]").send_keys(str(bad))
    duo.wait_for_contains_text("#circuits-alert", "is not a circuit JSON", timeout=20)


def test_progress_then_cancel(duo):
    open_page(duo)
    choose(duo, "circuits-method", "exhaustive")
    set_number(duo, "circuits-n", 128)
    before = len(state.run_store().list_runs())
    duo.find_element("#circuits-run").click()
    wait_until(
        duo,
        lambda: (
            "tracing (exhaustive): " in duo.find_element("#circuits-progress-label").text
            and not duo.find_element("#circuits-progress-label").text.startswith(
                "tracing (exhaustive): 0/"
            )
        ),
        timeout=120,
        message="progress reported",
    )
    assert duo.find_element("#circuits-run").get_attribute("disabled")
    duo.find_element("#circuits-cancel").click()
    wait_until(
        duo, lambda: not duo.find_element("#circuits-run").get_attribute("disabled"), timeout=30
    )
    assert len(state.run_store().list_runs()) == before  # nothing published
