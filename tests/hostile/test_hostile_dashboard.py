"""Hostile requests to the dashboard's callbacks, over HTTP (Flask's test client, no browser).

Issue 12, items 1 and 7: a figure export renders only the figure the server drew for the
session (never one the request carries: a loopback URL or `file://` image in it is neither
fetched nor read), and every malformed callback input (hover/click events without points or
out of range, forged formats, thresholds, counts, job answers, page state) is answered with
HTTP 200 and the page's alert naming the problem, never a 500 and never another head's figure.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import uuid

import plotly.graph_objects as go
import pytest

from workbench.export import FIGURE_FORMATS, figure_bytes
from workbench.ui import state
from workbench.ui.callback_client import post_callback
from workbench.ui.components import NOTHING_TO_EXPORT

PROMPT = "When Mary and John went to the store, John gave a drink to"
QUERY = {"model": "tiny-ioi", "prompt": PROMPT}
HEAD_OUTPUTS = [
    "attention-pattern.figure",
    "attention-along.figure",
    "attention-distance.figure",
    "attention-block.figure",
    "attention-error.children",
]
EXPORT_CLICKS = {f"attention-pattern-export-{fmt}.n_clicks": None for fmt in FIGURE_FORMATS} | {
    "attention-pattern-export-png.n_clicks": 1
}
EXPORT_OUTPUTS = ["attention-pattern-download.data", "attention-pattern-export-message.children"]
HEAD_INPUTS = {
    "attention-layer.value": 0,
    "attention-head.value": 1,
    "attention-token.value": None,
    "attention-stat.value": "entropy",
    "attention-block-size.value": "8",
    "attention-heads.hoverData": None,
}
PNG_1x1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def session():
    return uuid.uuid4().hex


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(PNG_1x1)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def loopback():
    """A tiny HTTP server on 127.0.0.1 that records every request it gets."""
    handler = type("Recorder", (_Recorder,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def local_image(tmp_path):
    path = tmp_path / "secret-image.png"
    path.write_bytes(PNG_1x1)
    return path


def call(app, client, outputs, inputs, state=None, changed=None):
    return post_callback(app, client, outputs, inputs, state, changed=changed)["response"]


def alert_text(response: dict, component: str) -> str:
    return json.dumps(response[component]["children"])


def evil_figure(url: str, path) -> dict:
    fig = go.Figure(go.Bar(y=[1, 2]))
    fig.add_layout_image(source=f"{url}/leak.png", x=0, y=1, sizex=1, sizey=1)
    fig.add_layout_image(source=path.as_uri(), x=0, y=1, sizex=1, sizey=1)
    fig.update_layout(width=20_000, height=20_000, title="forged")
    return fig.to_plotly_json()


# ---------------------------------------------------------------- item 1: figure export


def test_export_before_any_figure_is_refused_and_fetches_nothing(app, client, loopback):
    url, requests = loopback
    body = call(
        app,
        client,
        EXPORT_OUTPUTS,
        EXPORT_CLICKS,
        {"session-id.data": uuid.uuid4().hex},
    )
    assert NOTHING_TO_EXPORT in alert_text(body, "attention-pattern-export-message")
    assert "attention-pattern-download" not in body
    assert requests == []


def test_no_export_reads_a_figure_from_the_request(app):
    exports = [cb for key, cb in app.callback_map.items() if "-export-message.children" in key]
    assert len(exports) >= 20  # every figure card of every page
    for cb in exports:
        assert [s["id"] for s in cb["state"]] == ["session-id"]


def test_a_forged_figure_in_the_state_slot_is_refused_and_fetches_nothing(
    app, client, loopback, local_image
):
    """Dash passes state values by position: a figure sent where the session id goes."""
    url, requests = loopback
    body = call(
        app,
        client,
        EXPORT_OUTPUTS,
        EXPORT_CLICKS,
        {"attention-pattern.figure": evil_figure(url, local_image)},
    )
    assert "session: missing or malformed" in alert_text(body, "attention-pattern-export-message")
    assert requests == []


def test_export_renders_the_server_figure(app, client, session, loopback):
    url, requests = loopback
    shown = call(
        app,
        client,
        HEAD_OUTPUTS,
        {**HEAD_INPUTS, "attention-layer.value": 0, "attention-head.value": 1},
        {"attention-query.data": QUERY, "session-id.data": session},
    )
    assert "L0H1" in json.dumps(shown["attention-pattern"]["figure"]["layout"]["title"])
    body = call(
        app,
        client,
        EXPORT_OUTPUTS,
        {**EXPORT_CLICKS, "attention-pattern-export-svg.n_clicks": 1},
        {"session-id.data": session},
        changed=["attention-pattern-export-svg.n_clicks"],
    )
    download = body["attention-pattern-download"]["data"]
    svg = base64.b64decode(download["content"]).decode()
    assert download["filename"] == "attention-pattern_tiny-ioi_L0H1.svg"
    assert "L0H1" in svg and svg.lstrip().startswith("<svg")
    call(
        app,
        client,
        ["attention-heads.figure", "attention-error.children"],
        {"attention-stat.value": "entropy", "attention-block-size.value": "8"},
        {"attention-query.data": QUERY, "session-id.data": session},
    )
    heatmap = call(
        app,
        client,
        ["attention-heads-download.data", "attention-heads-export-message.children"],
        {
            f"attention-heads-export-{fmt}.n_clicks": 1 if fmt == "html" else None
            for fmt in FIGURE_FORMATS
        },
        {"session-id.data": session},
        changed=["attention-heads-export-html.n_clicks"],
    )
    # a whole-model figure is not named after the selected head
    assert (
        heatmap["attention-heads-download"]["data"]["filename"] == "attention-heads_tiny-ioi.html"
    )
    assert requests == []


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf", "html"])
def test_figure_bytes_refuses_a_loopback_image_without_fetching_it(loopback, fmt):
    url, requests = loopback
    fig = go.Figure(go.Bar(y=[1]))
    fig.add_layout_image(source=f"{url}/leak.png", x=0, y=1, sizex=1, sizey=1)
    with pytest.raises(ValueError, match=r"layout\.images\[0\]\.source: the figure points"):
        figure_bytes(fig, fmt)
    assert requests == []


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda p: go.Figure().add_layout_image(source=p.as_uri()), r"layout\.images\[0\]"),
        (lambda p: go.Figure().add_layout_image(source=str(p)), r"layout\.images\[0\]"),
        (lambda p: go.Figure(go.Image(source=p.as_uri())), r"data\[0\]\.source"),
        (
            lambda p: go.Figure(
                layout={"template": {"layout": {"images": [{"source": p.as_uri()}]}}}
            ),
            r"layout\.template\.layout\.images\[0\]",
        ),
        (
            lambda p: go.Figure(go.Choroplethmap(geojson=p.as_uri(), locations=["a"], z=[1])),
            r"data\[0\]\.geojson",
        ),
        (lambda p: go.Figure(layout={"map": {"style": p.as_uri()}}), r"layout\.map\.style"),
    ],
)
def test_figure_bytes_refuses_local_files(local_image, build, field):
    with pytest.raises(ValueError, match=field + ".*points outside itself"):
        figure_bytes(build(local_image), "png")


def test_inline_data_images_still_export():
    fig = go.Figure(go.Bar(y=[1]))
    uri = "data:image/png;base64," + base64.b64encode(PNG_1x1).decode()
    fig.add_layout_image(source=uri, x=0, y=1, sizex=1, sizey=1)
    assert b"data:image/png;base64" in figure_bytes(fig, "html")


@pytest.mark.parametrize(
    ("kwargs", "layout", "message"),
    [
        ({"width": 20_000}, {}, "width: 20000 is not a size in pixels (10-4000)"),
        ({"height": 4001}, {}, "height: 4001 is not a size in pixels (10-4000)"),
        ({}, {"width": 10_000}, "layout.width: 10000 is not a size in pixels (10-4000)"),
        ({}, {"height": 20_000}, "layout.height: 20000 is not a size in pixels (10-4000)"),
        ({"width": True}, {}, "width: True is not a size in pixels"),
    ],
)
def test_export_sizes_are_capped(kwargs, layout, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        figure_bytes(go.Figure(layout=layout), "png", **kwargs)


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        ("attention-pattern-export-jpg.n_clicks", "format: 'jpg' is not one of png, svg"),
        ("attention-pattern-export-../../x.n_clicks", "format: '../../x' is not one of"),
        ("attention-layer.value", "format: 'attention-layer' is not one of"),
    ],
)
def test_forged_figure_export_format(app, client, session, changed, message):
    body = call(
        app,
        client,
        ["attention-pattern-download.data", "attention-pattern-export-message.children"],
        EXPORT_CLICKS,
        {"session-id.data": session},
        changed=[changed],
    )
    assert message in alert_text(body, "attention-pattern-export-message")


@pytest.mark.parametrize(
    ("changed", "session_id", "message"),
    [
        ("attention-table-xlsx.n_clicks", "good", "format: 'xlsx' is not one of csv, parquet"),
        ("attention-table-csv.n_clicks", "../../etc", "session: missing or malformed"),
    ],
)
def test_forged_table_export(app, client, session, changed, session_id, message):
    body = call(
        app,
        client,
        ["attention-table-download.data", "attention-table-message.children"],
        {"attention-table-csv.n_clicks": 1, "attention-table-parquet.n_clicks": None},
        {
            "session-id.data": session if session_id == "good" else session_id,
            "attention-query.data": QUERY,
            "attention-block-size.value": "8",
        },
        changed=[changed],
    )
    assert message in alert_text(body, "attention-table-message")


# ---------------------------------------------------------------- item 7: callback inputs


@pytest.mark.parametrize(
    ("hover", "message"),
    [
        ({"points": []}, "hover: the event names no point"),
        ({}, "hover: the event names no point"),
        ("abc", "hover: the event names no point"),
        ({"points": ["x"]}, "hover: the event names no point"),
        ({"points": [{"x": 0, "y": 99}]}, "layer: 99 is out of range for tiny-ioi"),
        ({"points": [{"x": 0, "y": -1}]}, "layer: -1 is out of range (0 or more)"),
        ({"points": [{"x": 9, "y": 0}]}, "head: 9 is out of range for tiny-ioi"),
        ({"points": [{"x": 0, "y": "abc"}]}, "layer: 'abc' is not a whole number"),
        ({"points": [{"x": 0, "y": 0.5}]}, "layer: 0.5 is not a whole number"),
        ({"points": [{"x": True, "y": 0}]}, "head: True is not a whole number"),
        ({"points": [{"x": 0}]}, "layer: None is not a whole number"),
    ],
)
def test_bad_hover_is_an_alert_not_another_head(app, client, session, hover, message):
    body = call(
        app,
        client,
        HEAD_OUTPUTS,
        {**HEAD_INPUTS, "attention-heads.hoverData": hover},
        {"attention-query.data": QUERY, "session-id.data": session},
        changed=["attention-heads.hoverData"],
    )
    assert message in alert_text(body, "attention-error")
    assert "attention-pattern" not in body  # the shown pattern stays as it was


@pytest.mark.parametrize(
    ("inputs", "state_", "message"),
    [
        ({"attention-layer.value": "abc"}, {}, "layer: 'abc' is not a whole number"),
        ({"attention-head.value": -1}, {}, "head: -1 is out of range (0 or more)"),
        ({"attention-layer.value": 99}, {}, "layer: 99 is out of range for tiny-ioi"),
        ({"attention-token.value": 99}, {}, "query token: 99 is out of range (0-"),
        ({"attention-token.value": "x"}, {}, "query token: 'x' is not a whole number"),
        ({"attention-stat.value": "forged"}, {}, "statistic: 'forged' is not one of entropy"),
        ({"attention-block-size.value": "7"}, {}, "key block: '7' is not one of 4, 8"),
        ({}, {"attention-query.data": ["x"]}, "selection: malformed page state"),
        ({}, {"attention-query.data": {"model": 5}}, "model: the selection names no model"),
        ({}, {"attention-query.data": {"prompt": ["a"]}}, "prompt: expected text"),
        ({}, {"session-id.data": "../../etc"}, "session: missing or malformed session id"),
    ],
)
def test_bad_head_inputs_are_alerts(app, client, session, inputs, state_, message):
    body = call(
        app,
        client,
        HEAD_OUTPUTS,
        {**HEAD_INPUTS, **inputs},
        {"attention-query.data": QUERY, "session-id.data": session, **state_},
        changed=[next(iter(inputs), "attention-layer.value")],
    )
    assert message in alert_text(body, "attention-error")
    assert body["attention-pattern"]["figure"]["layout"]["xaxis"]["visible"] is False  # blank


@pytest.mark.parametrize(
    ("click", "message"),
    [
        ({"points": []}, "click: the event names no point"),
        ([1, 2], "click: the event names no point"),
        ({"points": [{"x": 1}]}, "layer: None is not a whole number"),
        ({"points": [{"x": 1, "y": 99}]}, "layer: 99 is out of range for tiny-ioi"),
    ],
)
def test_bad_head_clicks_are_alerts(app, client, click, message):
    body = call(
        app,
        client,
        ["attention-layer.value", "attention-head.value", "attention-error.children"],
        {"attention-heads.clickData": click, "attention-corpus-heads.clickData": None},
        {"attention-query.data": QUERY},
    )
    assert message in alert_text(body, "attention-error")
    assert "attention-layer" not in body


def test_bad_token_click_is_an_alert(app, client):
    body = call(
        app,
        client,
        ["attention-token.value", "attention-error.children"],
        {"attention-pattern.clickData": {"points": [{"x": 0, "y": -3}]}},
    )
    assert "token: -3 is out of range (0 or more)" in alert_text(body, "attention-error")


@pytest.mark.parametrize(
    ("stat", "block", "message"),
    [
        ("forged", "8", "statistic: 'forged' is not one of"),
        ("entropy", "abc", "key block: 'abc' is not one of"),
        ("entropy", None, "key block: None is not one of"),
    ],
)
def test_bad_heatmap_inputs_are_alerts(app, client, session, stat, block, message):
    body = call(
        app,
        client,
        ["attention-heads.figure", "attention-error.children"],
        {"attention-stat.value": stat, "attention-block-size.value": block},
        {"attention-query.data": QUERY, "session-id.data": session},
    )
    assert message in alert_text(body, "attention-error")


@pytest.mark.parametrize(
    ("run_id", "message"),
    [
        ("no-such-run", "run: 'no-such-run' is not a run in the store"),
        ("../../etc", "run: '../../etc' is not a run in the store"),
        (["x"], "run: choose a corpus-stats run"),
    ],
)
def test_bad_corpus_run_is_an_alert(app, client, session, run_id, message):
    body = call(
        app,
        client,
        [
            "attention-corpus-heads.figure",
            "attention-corpus-distance.figure",
            "attention-corpus-counts.children",
            "attention-corpus-error.children",
            "attention-corpus-aggregate.data",
        ],
        {
            "attention-corpus-run.value": run_id,
            "attention-corpus-stat.value": "entropy",
            "attention-corpus-aggregate.value": "mean",
            "attention-layer.value": 0,
            "attention-head.value": 0,
        },
        {"attention-query.data": QUERY, "session-id.data": session},
    )
    assert message in alert_text(body, "attention-corpus-error")


HEADS_PAGE = {"heads-query.data": QUERY}


@pytest.mark.parametrize(
    ("click", "message"),
    [
        ({"points": []}, "click: the event names no point"),
        ({"points": [{"x": "foo", "text": "bar"}]}, "click: the point names no head"),
        ({"points": [{"x": "L9H0"}]}, "layer: 9 is out of range for tiny-ioi"),
        ({"points": [{"x": "L0H7"}]}, "head: 7 is out of range for tiny-ioi"),
    ],
)
def test_bad_taxonomy_clicks_are_alerts(app, client, click, message):
    body = call(
        app,
        client,
        ["heads-layer.value", "heads-head.value", "heads-error.children"],
        {"heads-taxonomy.clickData": click, "heads-clusters.clickData": None},
        HEADS_PAGE,
    )
    assert message in alert_text(body, "heads-error")


def test_bad_pattern_click_on_heads_page_is_an_alert(app, client):
    body = call(
        app,
        client,
        ["heads-qpos.value", "heads-kpos.value", "heads-error.children"],
        {"heads-pattern.clickData": {"points": [{"x": "a", "y": 1}]}},
    )
    assert "key position: 'a' is not a whole number" in alert_text(body, "heads-error")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ((0, 0, 99, 1), "query position: 99 is out of range (0-"),
        ((0, 0, 1, -1), "key position: -1 is out of range (0-"),
        ((5, 0, 1, 1), "layer: 5 is out of range for tiny-ioi"),
        (("x", 0, 1, 1), "layer: 'x' is not a whole number"),
    ],
)
def test_bad_decomposition_positions_are_alerts(app, client, session, values, message):
    names = ["heads-layer.value", "heads-head.value", "heads-qpos.value", "heads-kpos.value"]
    body = call(
        app,
        client,
        ["heads-decomposition.figure", "heads-upstream.figure", "heads-error.children"],
        dict(zip(names, values, strict=True)),
        {**HEADS_PAGE, "session-id.data": session},
    )
    assert message in alert_text(body, "heads-error")


CIRCUIT_OUTPUTS = [
    "circuits-graph.figure",
    "circuits-curve.figure",
    "circuits-roc.figure",
    "circuits-error.children",
]


@pytest.mark.parametrize(
    ("inputs", "changed", "message"),
    [
        (
            {"circuits-threshold.value": "abc"},
            "circuits-threshold.value",
            "threshold: 'abc' is not a number",
        ),
        (
            {"circuits-threshold.value": -1},
            "circuits-threshold.value",
            "threshold: -1 is out of range (0-1)",
        ),
        (
            {"circuits-threshold.value": 2},
            "circuits-threshold.value",
            "threshold: 2 is out of range (0-1)",
        ),
        (
            {"circuits-job.data": {"run_id": "no-such-run"}},
            "circuits-job.data",
            "run: 'no-such-run' is not a circuit run of this session",
        ),
        (
            {"circuits-job.data": "garbage"},
            "circuits-job.data",
            "trace: the job's answer names no run",
        ),
        (
            {"circuits-job.data": {"error": "prompts: 0 is not"}},
            "circuits-job.data",
            "prompts: 0 is not",
        ),
        (
            {"circuits-upload.contents": "abc"},
            "circuits-upload.contents",
            "import: the file is not a circuit JSON",
        ),
        (
            {"circuits-upload.contents": 5},
            "circuits-upload.contents",
            "import: the file is not a circuit JSON",
        ),
    ],
)
def test_bad_circuit_inputs_are_alerts(app, client, session, inputs, changed, message):
    body = call(
        app,
        client,
        CIRCUIT_OUTPUTS,
        {
            "circuits-job.data": None,
            "circuits-upload.contents": None,
            "circuits-threshold.value": 0,
            **inputs,
        },
        {"circuits-upload.filename": None, "session-id.data": session},
        changed=[changed],
    )
    assert message in alert_text(body, "circuits-error")


@pytest.mark.parametrize("fraction", ["abc", -1, [0.5]])
def test_bad_live_threshold_is_an_alert(app, client, session, fraction):
    body = call(
        app,
        client,
        ["circuits-counts.children", "circuits-error.children"],
        {"circuits-threshold.drag_value": fraction, "circuits-graph.figure": None},
        {"session-id.data": session},
    )
    assert "threshold: " in alert_text(body, "circuits-error")
    assert body["circuits-counts"]["children"] == "no circuit yet"


def test_circuit_json_without_a_circuit_is_an_alert(app, client, session):
    body = call(
        app,
        client,
        ["circuits-json-download.data", "circuits-error.children"],
        {"circuits-json.n_clicks": 1},
        {"circuits-threshold.value": 0, "session-id.data": session},
    )
    assert "export: run a trace or import a circuit first" in alert_text(body, "circuits-error")


GUIDANCE_OK = {
    "guidance-heads.value": ["L1H0"],
    "guidance-method.value": "identity",
    "guidance-u.value": 1.0,
    "guidance-w.value": 1.5,
    "guidance-tokens.value": 8,
}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"guidance-heads.value": ["9.0"]},
            "layer: 9 is out of range for tiny-ioi (2 layers: 0-1)",
        ),
        ({"guidance-heads.value": "1.0"}, "heads: expected a list of heads like L1H2"),
        ({"guidance-heads.value": [{"a": 1}]}, "is not a head; write it as L<layer>H<head>"),
        ({"guidance-heads.value": []}, "heads: choose at least one head"),
        ({"guidance-method.value": "evil"}, "perturbation: 'evil' is not one of identity"),
        ({"guidance-u.value": "abc"}, "u: 'abc' is not a number"),
        ({"guidance-u.value": 2}, "u: 2 is out of range (0-1)"),
        ({"guidance-w.value": -1}, "w: -1 is out of range (0-5)"),
        ({"guidance-w.value": 1e9}, "w: 1e+09 is out of range (0-5)"),
        ({"guidance-tokens.value": 0}, "new tokens: 0 is out of range (1-64)"),
        ({"guidance-tokens.value": 10_000}, "new tokens: 10000 is out of range (1-64)"),
        ({"guidance-tokens.value": "many"}, "new tokens: 'many' is not a whole number"),
    ],
)
def test_bad_guidance_inputs_are_alerts(app, client, session, values, message):
    body = call(
        app,
        client,
        [
            "guidance-plain.children",
            "guidance-guided.children",
            "guidance-shift.figure",
            "guidance-error.children",
        ],
        {"guidance-generate.n_clicks": 1},
        {**GUIDANCE_OK, **values, "guidance-query.data": QUERY, "session-id.data": session},
    )
    assert message in alert_text(body, "guidance-error")


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"run_id": "no-such-run"}, "run: 'no-such-run' is not a attack run of this session"),
        ({"run_id": "../../x"}, "run: '../../x' is not a attack run of this session"),
        ({"run_id": 5}, "attack: the job's answer names no run"),
    ],
)
def test_bad_attack_job_is_an_alert(app, client, session, job, message):
    body = call(
        app,
        client,
        [
            "attacks-table.children",
            "attacks-loss.figure",
            "attacks-entropy.figure",
            "attacks-row.data",
            "attacks-row.value",
            "attacks-error.children",
        ],
        {"attacks-job.data": job},
        {"session-id.data": session},
    )
    assert message in alert_text(body, "attacks-error")


def test_another_sessions_circuit_run_is_refused(app, client, session):
    other = uuid.uuid4().hex
    with state.run_store().begin_run(
        kind="circuit", model="tiny-ioi", config={"dashboard_session": other}
    ) as run:
        pass
    body = call(
        app,
        client,
        CIRCUIT_OUTPUTS,
        {
            "circuits-job.data": {"run_id": run.run_id},
            "circuits-upload.contents": None,
            "circuits-threshold.value": 0,
        },
        {"circuits-upload.filename": None, "session-id.data": session},
        changed=["circuits-job.data"],
    )
    assert f"run: '{run.run_id}' is not a circuit run of this session" in alert_text(
        body, "circuits-error"
    )


@pytest.mark.parametrize(
    ("outputs", "inputs", "state_", "component", "message"),
    [
        (
            ["prompt-summary.children", "prompt-tokens.children"],
            {"prompt-model.value": "tiny-ioi", "prompt-text.value": ["a"]},
            {},
            "prompt-summary",
            "prompt: expected text, got list",
        ),
        (
            ["prompt-summary.children", "prompt-tokens.children"],
            {"prompt-model.value": {"x": 1}, "prompt-text.value": "hi"},
            {},
            "prompt-summary",
            "model: choose a zoo model",
        ),
        (
            ["prompt-model.data", "prompt-model.value", "prompt-load-status.children"],
            {"prompt-load.n_clicks": 1},
            {"prompt-path.value": 5},
            "prompt-load-status",
            "model: enter a checkpoint folder path",
        ),
        (
            ["prompt-text.value", "prompt-load-status.children"],
            {"prompt-use-task.n_clicks": 1},
            {"prompt-model.value": "tiny-ioi", "prompt-task.value": "evil"},
            "prompt-load-status",
            "task: 'evil' is not one of ioi, induction, lookup, similarity",
        ),
    ],
)
def test_bad_prompt_page_inputs_are_alerts(
    app, client, outputs, inputs, state_, component, message
):
    body = call(app, client, outputs, inputs, state_)
    assert message in alert_text(body, component)
