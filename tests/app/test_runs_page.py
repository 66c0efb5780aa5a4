"""Runs page in a real browser: this session's runs by default (all with the switch), reopen a
stored figure, export its table, delete it (only once confirmed: Cancel keeps it); a run index
damaged while the app runs is rebuilt and the page says so, listing every run.

Saves `artifacts/screenshots/runs.png`.
"""

from __future__ import annotations

import io
import json
import os

import pandas as pd
import pytest

from analysis import attention_stats
from tests.app.browser_helpers import save_page_screenshot, wait_for_figure, wait_until
from workbench.store import RunStore
from workbench.ui import state
from workbench.ui.shared import SESSION_KEY

pytestmark = pytest.mark.browser
PROMPT = "When Mary and John went to the store, John gave a drink to"


def choose(duo, select_id: str, value: str) -> None:
    duo.find_element(f"#{select_id}").click()
    duo.wait_for_element(f"[role=option][value='{value}']", timeout=10).click()


def test_history_reopen_export_delete(duo, zoo_model, screenshot_dir):
    duo.wait_for_page(duo.server_url + "/runs")
    duo.wait_for_element("#runs-list", timeout=20)
    session = json.loads(duo.driver.execute_script("return sessionStorage.getItem('session-id')"))
    result = attention_stats(zoo_model("tiny-ioi"), [PROMPT])
    store = state.run_store()
    mine = store.save(result, config={SESSION_KEY: session})
    theirs = store.save(result, config={SESSION_KEY: "x" * 32})
    cli = store.save(result, config={})

    duo.find_element("#runs-refresh").click()
    duo.wait_for_element(f"#runs-row-{mine}", timeout=15)
    assert not duo.find_elements(f"#runs-row-{theirs}") and not duo.find_elements(
        f"#runs-row-{cli}"
    )
    duo.find_element("#runs-mine").click()  # every run in the store
    duo.wait_for_element(f"#runs-row-{cli}", timeout=15)
    duo.find_element("#runs-mine").click()
    wait_until(duo, lambda: not duo.find_elements(f"#runs-row-{cli}"))

    choose(duo, "runs-pick", mine)
    duo.find_element("#runs-open").click()
    heat = wait_for_figure(duo, "runs-figure", lambda f: f["data"] and f["data"][0].get("z"))
    expected = result.per_head()["entropy"].to_numpy()
    assert pd.Series(sum(heat["data"][0]["z"], [])).round(5).tolist() == list(expected.round(5))
    save_page_screenshot(duo, screenshot_dir / "runs.png")

    duo.find_element("#runs-table-csv").click()
    folder = __import__("pathlib").Path(duo.download_path)
    path = wait_until(duo, lambda: next(iter(folder.glob(f"{mine}_main*.csv")), None), timeout=20)
    wait_until(duo, lambda: path.stat().st_size > 0)
    table = pd.read_csv(io.BytesIO(path.read_bytes()))
    assert len(table) == len(result.to_frame()) and "entropy" in table.columns

    duo.find_element("#runs-delete").click()  # only asks: Cancel keeps the run
    duo.wait_for_element("#runs-confirm", timeout=15)
    duo.find_element("#runs-delete-cancel").click()
    duo.wait_for_element("#runs-kept", timeout=15)
    assert mine in [r.run_id for r in store.list_runs()]
    duo.find_element("#runs-delete").click()
    duo.wait_for_element("#runs-delete-confirm", timeout=15).click()
    duo.wait_for_element("#runs-deleted", timeout=15)
    wait_until(duo, lambda: not duo.find_elements(f"#runs-row-{mine}"))
    assert [r.run_id for r in store.list_runs()] == [theirs, cli]
    assert duo.get_logs() == []


def test_damaged_index_is_rebuilt_and_announced(duo, zoo_model, tmp_path):
    duo.wait_for_page(duo.server_url + "/runs")
    duo.wait_for_element("#runs-list", timeout=20)
    session = json.loads(duo.driver.execute_script("return sessionStorage.getItem('session-id')"))
    result = attention_stats(zoo_model("tiny-ioi"), [PROMPT])
    damaged = RunStore(tmp_path / "store")  # a store whose index turns to garbage at rest
    ids = [damaged.save(result, config={SESSION_KEY: session}) for _ in range(2)]
    damaged.close()
    (tmp_path / "store" / "runs.sqlite").write_bytes(os.urandom(4096))
    served = state.run_store().root
    state.configure(store=str(tmp_path / "store"))  # the app opens it next
    try:
        duo.find_element("#runs-refresh").click()
        notice = duo.wait_for_element("#runs-repaired", timeout=20)
        assert "Run index rebuilt" in notice.text and "file is not a database" in notice.text
        for run_id in ids:
            duo.wait_for_element(f"#runs-row-{run_id}", timeout=15)
        assert [r.run_id for r in state.run_store().list_runs()] == ids
        assert list((tmp_path / "store").glob("runs.sqlite.damaged-*"))
        choose(duo, "runs-pick", ids[0])
        duo.find_element("#runs-open").click()
        duo.wait_for_element("#runs-opened", timeout=15)
        assert duo.get_logs() == []
    finally:
        state.configure(store=str(served))
