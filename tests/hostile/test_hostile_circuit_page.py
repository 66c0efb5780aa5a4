"""Hostile input to the Circuits page's new controls (issue 16, item 4), over HTTP (Flask's
test client, no browser): the top-N cut, a clicked graph node, the IOI corruption and the
task that must fit the model. Every bad value is answered with HTTP 200 and the page's alert
naming the problem (or, for the background trace, the `ValueError` the page shows)."""

from __future__ import annotations

import base64
import uuid

import pytest
import torch

from circuits.circuit import Circuit
from circuits.graph import Graph
from workbench.cli import main
from workbench.ui import circuit_runs
from workbench.ui.callback_client import post_callback
from workbench.ui.pages import circuits as page

GRAPH_OUTPUTS = [
    "circuits-graph.figure",
    "circuits-curve.figure",
    "circuits-roc.figure",
    "circuits-error.children",
]
TOP_OUTPUTS = [*GRAPH_OUTPUTS, "circuits-top.error"]
LINK_OUTPUTS = ["circuits-node-link.children", "circuits-error.children"]


@pytest.fixture(scope="module")
def session(app, client):
    """A session holding an imported 110-edge circuit (scores 1..110)."""
    session = uuid.uuid4().hex
    graph = Graph("tiny-ioi", 2, 4, 4, True, True, None)
    circuit = Circuit.from_scores(
        graph, task="ioi", method="test", scores=torch.arange(1, 111, dtype=torch.float64)
    )
    contents = "data:application/json;base64," + base64.b64encode(
        circuit.to_json().encode()
    ).decode("ascii")
    body = post_callback(
        app,
        client,
        GRAPH_OUTPUTS,
        {
            "circuits-job.data": None,
            "circuits-upload.contents": contents,
            "circuits-threshold.value": 0,
        },
        {"circuits-upload.filename": "toy.json", "session-id.data": session},
        changed=["circuits-upload.contents"],
    )["response"]
    assert body["circuits-error"]["children"] is None
    return session


def set_top(app, client, session, top):
    return post_callback(
        app,
        client,
        TOP_OUTPUTS,
        {"circuits-top.value": top},
        {"circuits-threshold.value": 0, "session-id.data": session},
    )["response"]


def edges_drawn(body) -> int:
    return sum(t.get("meta") == "edge" for t in body["circuits-graph"]["figure"]["data"])


@pytest.mark.parametrize(
    ("top", "message"),
    [
        ("abc", "top N edges: 'abc' is not a whole number"),
        (2.5, "top N edges: 2.5 is not a whole number"),
        (-1, "top N edges: -1 is out of range (0-100000)"),
        (10**9, "top N edges: 1000000000 is out of range (0-100000)"),
        ([5], "top N edges: [5] is not a whole number"),
        (True, "top N edges: True is not a whole number"),
    ],
)
def test_bad_top_n_is_an_alert(app, client, session, top, message):
    body = set_top(app, client, session, top)
    assert message in str(body["circuits-error"]["children"])
    assert message in body["circuits-top"]["error"]  # also under the input
    assert "circuits-graph" not in body  # the graph is left as it was


def test_top_n_cuts_a_connected_circuit_and_cleared_means_all(app, client, session):
    body = set_top(app, client, session, 3)
    assert body["circuits-error"]["children"] is None
    assert 1 <= edges_drawn(body) <= 3
    counts = post_callback(
        app,
        client,
        ["circuits-counts.children", "circuits-error.children"],
        {"circuits-threshold.drag_value": 0, "circuits-graph.figure": None},
        {"session-id.data": session},
    )["response"]
    assert f"{edges_drawn(body)} of 110 edges" in counts["circuits-counts"]["children"]
    assert edges_drawn(set_top(app, client, session, "")) == 110
    assert edges_drawn(set_top(app, client, session, 10**5)) == 110  # above the count: all


@pytest.mark.parametrize(
    ("click", "message"),
    [
        ("garbage", "node: the event names no point"),
        ({"points": []}, "node: the event names no point"),
        ({"points": [{"customdata": 5}]}, "node: '5' is not a node of the circuit graph"),
        ({"points": [{"customdata": "x" * 500}]}, "is not a node of the circuit graph"),
        ({"points": [{"customdata": "L1Hx"}]}, "node: 'L1Hx' is not a node of the circuit graph"),
    ],
)
def test_bad_node_click_is_an_alert(app, client, click, message):
    body = post_callback(
        app, client, LINK_OUTPUTS, {"circuits-graph.clickData": click}, {"circuits-query.data": {}}
    )["response"]
    assert message in str(body["circuits-error"]["children"])


def test_head_click_links_to_the_heads_page_and_other_nodes_explain(app, client):
    query = {"model": "tiny-ioi", "prompt": "Mary and John"}
    link = post_callback(
        app,
        client,
        LINK_OUTPUTS,
        {"circuits-graph.clickData": {"points": [{"customdata": "L1H2"}]}},
        {"circuits-query.data": query},
    )["response"]["circuits-node-link"]["children"]
    href = link["props"]["href"]
    assert href.startswith("/heads?") and "layer=1" in href and "head=2" in href
    assert "model=tiny-ioi" in href
    note = post_callback(
        app,
        client,
        LINK_OUTPUTS,
        {"circuits-graph.clickData": {"points": [{"customdata": "MLP0"}]}},
        {"circuits-query.data": query},
    )["response"]["circuits-node-link"]["children"]
    assert "MLP0 is not a head" in str(note)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"task_name": "ioi", "corruption": "zzz"}, "corruption: unknown corruption 'zzz'"),
        ({"task_name": "similarity"}, "task: similarity needs an encoder; tiny-ioi"),
        ({"task_name": "ioi", "method": "atp**"}, "method: unknown method 'atp**'"),
    ],
)
def test_bad_trace_options_are_value_errors(options, message):
    settings = {"task_name": "ioi", "method": "atp*", "n_prompts": 2, "reference": False}
    with pytest.raises(ValueError, match=message.replace("*", r"\*")):
        circuit_runs.trace_job(
            lambda _: None,
            session=uuid.uuid4().hex,
            model_name="tiny-ioi",
            **{**settings, **options},
        )


@pytest.mark.parametrize(
    ("model", "asked", "tasks", "chosen"),
    [
        ("minilm", "ioi", ["similarity"], "similarity"),
        ("tiny-ioi", "similarity", ["ioi", "induction", "lookup"], "ioi"),
        ("tiny-ioi", "induction", ["ioi", "induction", "lookup"], "induction"),
    ],
)
def test_task_default_fits_the_model(app, model, asked, tasks, chosen):
    assert circuit_runs.tasks_for(model) == (tasks, "similarity" if model == "minilm" else "ioi")
    layout = page.layout(model=model, task=asked)
    select = _find(layout, "circuits-task")
    assert select.data == tasks and select.value == chosen
    box = _find(layout, "circuits-corruption-box")
    assert (box.style == {}) is (chosen == "ioi")


def test_atp_star_is_offered_on_the_page_and_the_cli():
    from workbench.cli.circuit import CLI_METHODS

    assert "atp*" in page.METHODS and "atp*" in CLI_METHODS


def _find(component, component_id):
    if getattr(component, "id", None) == component_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and hasattr(child, "to_plotly_json"):
            found = _find(child, component_id)
            if found is not None:
                return found
    return None


@pytest.mark.parametrize(
    ("method", "code", "expected"),
    [
        ("atp*", 0, "atp* circuit of tiny-ioi on ioi: 110 of 110 edges"),
        ("atp**", 2, "argument --method: invalid choice: 'atp**'"),
    ],
)
def test_cli_offers_atp_star(capsys, method, code, expected):
    assert (
        main(["circuit", "tiny-ioi", "ioi", "--method", method, "--n", "2", "--show", "1"]) == code
    )
    out, err = capsys.readouterr()
    if code:
        assert len(err.strip().splitlines()) == 1 and expected in err
    else:
        assert out.startswith(expected)
