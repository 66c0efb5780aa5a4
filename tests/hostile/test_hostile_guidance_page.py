"""Hostile input to the Guidance page's head search, over HTTP (no browser).

The objective selector, the prompt and round counts and the job's answer are checked by
ordinary callbacks before (and after) the background job: every bad value is answered with
HTTP 200 and the page's red alert naming it (never a 500, never a started job). A search that
selects no heads (ioi_top1 on tiny-ioi, whose plain answers are all right) shows a visible note
and the held-out table, not an error.
"""

from __future__ import annotations

import base64
import json
import uuid

import numpy as np
import pytest

from workbench.ui.callback_client import post_callback
from workbench.ui.guidance_search import search_job

PROMPT = "When Mary and John went to the store, John gave a drink to"
QUERY = {"model": "tiny-ioi", "prompt": PROMPT}
REQUEST_OUTPUTS = ["guidance-search-request.data", "guidance-error.children"]
SHOW_OUTPUTS = [
    "guidance-heads.value",
    "guidance-search-note.children",
    "guidance-comparison.figure",
    "guidance-comparison-table.children",
    "guidance-error.children",
]
OK = {
    "guidance-objective.value": "ioi_logprob",
    "guidance-prompts.value": 16,
    "guidance-rounds.value": 2,
    "guidance-method.value": "identity",
    "guidance-u.value": 1.0,
    "guidance-w.value": 1.5,
}
NOT_ONE_OF = "is not one of induction_copy, ioi_logit_diff, ioi_logprob, ioi_top1"


@pytest.fixture(scope="module")
def session():
    return uuid.uuid4().hex


def request_search(app, client, session, values):
    state = {**OK, "guidance-query.data": QUERY, "session-id.data": session}
    state.update(values)  # same keys, same order: Dash reads the states by position
    body = post_callback(app, client, REQUEST_OUTPUTS, {"guidance-run.n_clicks": 1}, state)
    return body["response"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"guidance-objective.value": "nope"}, f"objective: 'nope' {NOT_ONE_OF}"),
        ({"guidance-objective.value": ""}, f"objective: '' {NOT_ONE_OF}"),
        ({"guidance-objective.value": None}, f"objective: None {NOT_ONE_OF}"),
        ({"guidance-objective.value": 3}, f"objective: 3 {NOT_ONE_OF}"),
        ({"guidance-objective.value": ["ioi_top1"]}, f"objective: ['ioi_top1'] {NOT_ONE_OF}"),
        ({"guidance-objective.value": {"name": "ioi_top1"}}, "objective: {'name': 'ioi_top1'}"),
        ({"guidance-objective.value": "IOI_TOP1"}, f"objective: 'IOI_TOP1' {NOT_ONE_OF}"),
        ({"guidance-objective.value": "x" * 5000}, f"objective: '{'x' * 36}... {NOT_ONE_OF}"),
        ({"guidance-prompts.value": 2}, "objective prompts: 2 is out of range (4-64)"),
        ({"guidance-prompts.value": 10_000}, "objective prompts: 10000 is out of range (4-64)"),
        ({"guidance-prompts.value": "many"}, "objective prompts: 'many' is not a whole number"),
        ({"guidance-prompts.value": 8.5}, "objective prompts: 8.5 is not a whole number"),
        ({"guidance-rounds.value": 0}, "rounds: 0 is out of range (1-4)"),
        ({"guidance-rounds.value": None}, "rounds: None is not a whole number"),
        ({"guidance-w.value": "abc"}, "w: 'abc' is not a number"),
        ({"session-id.data": "../etc"}, "session: missing or malformed session id"),
    ],
)
def test_bad_search_requests_are_alerts_and_start_nothing(app, client, session, values, message):
    response = request_search(app, client, session, values)
    assert "guidance-search-request" not in response  # no_update: no job is started
    alert = json.dumps(response["guidance-error"]["children"])
    assert message in alert
    assert "guidance-alert" in alert


def test_a_good_search_request_is_passed_to_the_job(app, client, session):
    response = request_search(app, client, session, {"guidance-objective.value": "ioi_top1"})
    assert response["guidance-error"]["children"] is None
    assert response["guidance-search-request"]["data"] == {
        "session": session,
        "model_name": "tiny-ioi",
        "objective": "ioi_top1",
        "n": 16,
        "rounds": 2,
        "method": "identity",
        "u": 1.0,
        "w": 1.5,
    }


@pytest.mark.parametrize(
    ("objective", "shown"),
    [
        ("ioi_logprob", "log p(IO) under the guided distribution (nats)"),
        ("ioi_logit_diff", "INFLATED by construction"),
        ("nope", f"objective: 'nope' {NOT_ONE_OF}"),
        (7, f"objective: 7 {NOT_ONE_OF}"),
    ],
)
def test_objective_help_names_the_unit_or_the_bad_value(app, client, objective, shown):
    body = post_callback(
        app, client, ["guidance-objective-help.children"], {"guidance-objective.value": objective}
    )
    assert shown in body["response"]["guidance-objective-help"]["children"]


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"error": "objective: no IOI task for this model"}, "objective: no IOI task for this"),
        ({"run_id": "nope"}, "run: 'nope' is not a head_search run of this session"),
        ({"run_id": 5}, "head search: the job's answer names no run"),
        ("a string", "head search: the job's answer names no run"),
    ],
)
def test_forged_job_answers_are_alerts(app, client, session, job, message):
    body = post_callback(
        app, client, SHOW_OUTPUTS, {"guidance-job.data": job}, {"session-id.data": session}
    )
    response = body["response"]
    assert "guidance-heads" not in response  # the user's heads are left alone
    assert message in json.dumps(response["guidance-error"]["children"])


def test_another_sessions_search_is_refused(app, client, session):
    run_id = _no_heads_run(session)
    body = post_callback(
        app,
        client,
        SHOW_OUTPUTS,
        {"guidance-job.data": {"run_id": run_id}},
        {"session-id.data": uuid.uuid4().hex},
    )
    alert = json.dumps(body["response"]["guidance-error"]["children"])
    assert f"run: '{run_id}' is not a head_search run of this session" in alert


def _no_heads_run(session: str) -> str:
    return search_job(
        lambda _progress: None,
        session=session,
        model_name="tiny-ioi",
        objective="ioi_top1",
        n=8,
        rounds=1,
        method="identity",
        u=1.0,
        w=1.5,
    )


def test_a_search_that_selects_no_heads_shows_a_note_not_an_error(app, client, session):
    body = post_callback(
        app,
        client,
        SHOW_OUTPUTS,
        {"guidance-job.data": {"run_id": _no_heads_run(session)}},
        {"session-id.data": session},
    )
    response = body["response"]
    assert response["guidance-error"]["children"] is None
    assert response["guidance-heads"]["value"] == []
    note = json.dumps(response["guidance-search-note"]["children"])
    assert "HeadHunter selected no heads" in note
    table = json.dumps(response["guidance-comparison-table"]["children"])
    for setting in ("no_guidance", "searched_heads", "layer_guidance"):
        assert f"guidance-comparison-{setting}" in table
    assert "guidance-comparison-random_heads" not in table  # no draws of zero heads
    assert "none selected" in table
    figure = response["guidance-comparison"]["figure"]
    assert figure["layout"]["yaxis"]["title"]["text"].startswith("IOI top-1 accuracy")
    means = figure["data"][0]["y"]  # plotly sends arrays base64-encoded
    values = np.frombuffer(base64.b64decode(means["bdata"]), dtype=means["dtype"])
    assert values.tolist() == [1.0, 1.0, 1.0]  # the final tiny-ioi is always right
