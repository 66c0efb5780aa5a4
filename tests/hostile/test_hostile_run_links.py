"""Hostile run permalinks (`/runs?run=<id>`): the Runs page's link callback over HTTP.

Malformed, path-like, huge and forged ids, ids of runs in another store, of unpublished runs
and of none at all each get HTTP 200 with the page's red alert naming the problem (never a
500, never a path of the server), and the store is left as it was. A good id opens the stored
figure and picks the run.
"""

from __future__ import annotations

import json

import pytest

from analysis import attention_stats
from workbench.store import RunStore
from workbench.ui.callback_client import post_callback
from workbench.ui.shared import SESSION_KEY

SESSION = "c0ffee00" * 4
LINK_OUT = ["runs-figure.figure", "runs-status.children", "runs-pick.value"]
NOT_AN_ID = "is not a run id"
NO_RUN = "no saved run"


@pytest.fixture(scope="module")
def served(zoo_model, tmp_path_factory):
    """The dashboard on a store with one published run, one unpublished, plus another store."""
    from workbench.ui import create_app

    result = attention_stats(zoo_model("tiny-ioi"), ["When Mary and John went to the store"])
    root = tmp_path_factory.mktemp("links") / "store"
    store = RunStore(root)
    good = store.save(result, config={SESSION_KEY: SESSION, "prompt": "x"})
    pending = store.begin_run(kind=result.kind, model="tiny-ioi", config={})
    other = RunStore(tmp_path_factory.mktemp("other") / "store").save(result, config={})
    jobs = str(tmp_path_factory.mktemp("jobs"))
    app = create_app(preload=[], store=str(root), jobs_folder=jobs)
    yield {
        "app": app,
        "client": app.server.test_client(),
        "root": root,
        "good": good,
        "pending": pending.run_id,
        "other": other,
    }
    pending.abort()


def _open(served, link, session=SESSION) -> dict:
    answer = post_callback(
        served["app"],
        served["client"],
        LINK_OUT,
        {"runs-link.data": link},
        {"session-id.data": session},
    )
    return answer["response"]


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ("../../etc/passwd", NOT_AN_ID),
        ("/etc/passwd", NOT_AN_ID),
        ("..", NOT_AN_ID),
        (".hidden", NOT_AN_ID),
        ("runs/../runs.sqlite", NOT_AN_ID),
        ("a\\b", NOT_AN_ID),
        ("%2e%2e%2fetc", NOT_AN_ID),
        ("run\x00id", NOT_AN_ID),
        ("", NOT_AN_ID),
        ("x" * 65, NOT_AN_ID),
        ("9" * 200_000, NOT_AN_ID),
        (["20000101-000000-deadbeef"], NOT_AN_ID),
        ({"$gt": ""}, NOT_AN_ID),
        (12345, NOT_AN_ID),
        ("20000101-000000-deadbeef", NO_RUN),
        ("runs.sqlite", NO_RUN),
        ("staging", NO_RUN),
    ],
    ids=[
        "dotdot-path",
        "absolute-path",
        "dotdot",
        "hidden-name",
        "nested-path",
        "backslash",
        "url-encoded",
        "nul-byte",
        "empty",
        "too-long",
        "huge",
        "list",
        "object",
        "int",
        "unknown-id",
        "store-file-name",
        "store-folder-name",
    ],
)
def test_bad_links_get_the_page_alert(served, link, message):
    before = sorted(p.name for p in (served["root"] / "runs").iterdir())
    response = _open(served, link)
    shown = json.dumps(response["runs-status"]["children"])
    assert message in shown and "Cannot open that link" in shown
    assert str(served["root"]) not in shown
    assert "runs-figure" not in response and response["runs-pick"]["value"] is None
    assert sorted(p.name for p in (served["root"] / "runs").iterdir()) == before


@pytest.mark.parametrize("which", ["other", "pending"], ids=["other-store", "unpublished"])
def test_runs_outside_this_store_are_not_opened(served, which):
    response = _open(served, served[which])
    assert f"no saved run {served[which]!r}" in json.dumps(response["runs-status"]["children"])
    assert "runs-figure" not in response


def test_a_forged_session_is_refused_even_with_a_good_link(served):
    response = _open(served, served["good"], session="../x")
    assert "malformed session id" in json.dumps(response["runs-status"]["children"])


def test_a_good_link_opens_the_stored_figure(served):
    response = _open(served, served["good"])
    assert response["runs-pick"]["value"] == served["good"]
    assert response["runs-figure"]["figure"]["data"][0]["z"]
    assert f"/runs?run={served['good']}" in json.dumps(response["runs-status"]["children"])


def _find(component, wanted: str):
    """The component with id `wanted` in a layout tree (None if absent)."""
    if getattr(component, "id", None) == wanted:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children]:
        if hasattr(child, "to_plotly_json") and (found := _find(child, wanted)) is not None:
            return found
    return None


@pytest.mark.parametrize(
    ("query", "stored", "mine"),
    [
        ({"run": "../x"}, "../x", False),
        ({"run": ["a", "b"]}, "['a', 'b']", False),
        ({}, None, True),
    ],
    ids=["path", "repeated-key", "none"],
)
def test_the_layout_keeps_the_raw_link_for_the_callback_to_judge(query, stored, mine):
    from workbench.ui.pages import runs

    page = runs.layout(**query)
    assert _find(page, "runs-link").data == stored
    assert _find(page, "runs-mine").checked is mine  # a link lists every run


# Delete's second step ("Delete for good"): it deletes only the run Delete asked about, and
# only while that run is still the one chosen and listed.
CONFIRM_OUT = ["runs-status.children", "runs-list.children", "runs-pick.data"]


def _confirm(served, pending, picked, clicks=1, session=SESSION) -> dict:
    inputs = {"runs-delete-confirm.n_clicks": clicks, "runs-delete-cancel.n_clicks": None}
    state = {
        "runs-delete-pending.data": pending,
        "runs-pick.value": picked,
        "runs-mine.checked": False,
        "session-id.data": session,
    }
    return post_callback(served["app"], served["client"], CONFIRM_OUT, inputs, state)


@pytest.mark.parametrize(
    ("pending", "picked", "message"),
    [
        (None, "good", "press Delete again"),
        ("20000101-000000-deadbeef", "good", "press Delete again"),
        ("good", "../../etc/passwd", "is not among the listed runs"),
        ("good", ["good"], "choose one of the listed runs first"),
        ("other", "other", "is not among the listed runs"),
    ],
    ids=["nothing-asked", "asked-about-another", "path-picked", "list-picked", "other-store"],
)
def test_confirm_deletes_nothing_it_was_not_asked_about(served, pending, picked, message):
    name = {"good": served["good"], "other": served["other"]}
    pending, picked = (
        name.get(pending, pending),
        name.get(picked, picked) if isinstance(picked, str) else picked,
    )
    response = _confirm(served, pending, picked)["response"]
    assert message in json.dumps(response["runs-status"]["children"])
    assert served["good"] in [r.run_id for r in RunStore(served["root"]).list_runs()]


def test_confirm_without_a_click_changes_nothing(served):
    answer = _confirm(served, served["good"], served["good"], clicks=None)
    assert answer.get("response", {}) == {}  # every output left as it was
    assert served["good"] in [r.run_id for r in RunStore(served["root"]).list_runs()]


def test_confirm_deletes_the_run_it_was_asked_about(served, zoo_model):
    result = attention_stats(zoo_model("tiny-ioi"), ["When Mary and John went"])
    doomed = RunStore(served["root"]).save(result, config={SESSION_KEY: SESSION})
    response = _confirm(served, doomed, doomed)["response"]
    assert f"deleted {doomed}" in json.dumps(response["runs-status"]["children"])
    assert doomed not in [o["value"] for o in response["runs-pick"]["data"]]
    assert doomed not in [r.run_id for r in RunStore(served["root"]).list_runs()]
