"""Hostile head grid (issue 16 item 6): forged scope, layer, head, block and click values sent
to the Attention page's grid callbacks get the page's red alert (HTTP 200), never a 500 or
another head than the one named; a good request draws the grid."""

from __future__ import annotations

import json
import uuid

import pytest

from workbench.ui.callback_client import post_callback

PROMPT = "When Mary and John went to the store, John gave a drink to"
QUERY = {"model": "tiny-ioi", "prompt": PROMPT}
GRID = ["attention-grid.figure", "attention-error.children"]
LOCK = ["attention-error.children", "attention-layer.value", "attention-head.value"]


@pytest.fixture(scope="module")
def session():
    return uuid.uuid4().hex


def render(app, session, scope="layer", layer=0, head=0, block="8", query=QUERY):
    inputs = {
        "attention-grid-scope.value": scope,
        "attention-layer.value": layer,
        "attention-head.value": head,
        "attention-block-size.value": block,
    }
    state = {"attention-query.data": query, "session-id.data": session}
    client = app.server.test_client()
    return post_callback(app, client, GRID, inputs, state)["response"]  # raises unless HTTP 200


def click(app, session, point, scope="all", layer=0):
    state = {
        "attention-grid-scope.value": scope,
        "attention-layer.value": layer,
        "attention-block-size.value": "8",
        "attention-query.data": QUERY,
        "session-id.data": session,
    }
    client = app.server.test_client()
    return post_callback(app, client, LOCK, {"attention-grid.clickData": point}, state)["response"]


def test_a_good_request_draws_every_head_with_the_selected_one_outlined(app, session):
    figure = render(app, session, scope="all", layer=1, head=2)["attention-grid"]["figure"]
    assert figure["layout"]["meta"]["heads"][6] == "L1H2"
    assert figure["layout"]["shapes"][0]["name"] == "selected L1H2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"scope": "heads"}, "grid scope: expected one of layer, all, got 'heads'"),
        ({"scope": None}, "grid scope: expected one of layer, all, got None"),
        ({"scope": ["all"]}, "grid scope: expected one of layer, all, got ['all']"),
        ({"layer": 2}, "layer: 2 is out of range for tiny-ioi (2 layers: 0-1)"),
        ({"layer": -1}, "layer: -1 is out of range (0 or more)"),
        ({"layer": True}, "layer: True is not a whole number"),
        ({"layer": "L1"}, "layer: 'L1' is not a whole number"),
        ({"head": 4}, "head: 4 is out of range for tiny-ioi (4 heads: 0-3)"),
        ({"head": 1.5}, "head: 1.5 is not a whole number"),
        ({"block": "7"}, "key block: '7' is not one of 4, 8, 16, 32, 64"),
        ({"query": {"model": "tiny-ioi", "prompt": ""}}, "prompt"),
    ],
)
def test_bad_grid_inputs_get_the_pages_alert(app, session, args, message):
    answer = render(app, session, **args)
    alert = json.dumps(answer["attention-error"]["children"])
    assert "attention-alert" in alert
    assert json.dumps(message)[1:-1] in alert
    assert answer["attention-grid"]["figure"]["layout"].get("shapes") in (None, [])


@pytest.mark.parametrize(
    ("point", "scope", "message"),
    [
        ({"points": [{"x": 0, "y": 0}]}, "all", None),  # the good case: L0H0
        ({"points": []}, "all", "click: the event names no point"),
        ({"points": [{"x": -1, "y": 0}]}, "all", "grid x: -1 is out of range (0 or more)"),
        ({"points": [{"x": "3", "y": 0}]}, "all", "grid x: '3' is not a whole number"),
        ({"points": [{"x": 0, "y": 10**6}]}, "all", "is outside the grid"),
        ({"points": [{"x": 0, "y": 0}]}, "every", "grid scope: expected one of layer, all"),
    ],
)
def test_bad_grid_clicks_get_the_pages_alert(app, session, point, scope, message):
    answer = click(app, session, point, scope=scope)
    if message is None:
        assert answer["attention-layer"]["value"] == 0 and answer["attention-head"]["value"] == 0
        return
    assert "attention-layer" not in answer  # no head is selected
    alert = json.dumps(answer["attention-error"]["children"])
    assert "attention-alert" in alert and json.dumps(message)[1:-1] in alert


def test_a_click_between_thumbnails_selects_nothing(app, session):
    figure = render(app, session, scope="all", layer=0, head=0)["attention-grid"]["figure"]
    (shape,) = figure["layout"]["shapes"]
    gap = int(shape["x1"] + 0.5)  # the column right after L0H0's tile
    answer = click(app, session, {"points": [{"x": gap, "y": 0}]})
    assert "between thumbnails, not on a head" in json.dumps(answer["attention-error"])
