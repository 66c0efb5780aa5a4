"""Hostile page settings in the URL (`selection.PAGE_KEYS`): pages rendered over HTTP.

Each page is opened through Dash's own page callback (`/_dash-update-component`, the request
a browser sends for `/attention?stat=...`), with a forged value for every one of its settings
(unknown names, out of range, NaN, huge, path-like, script-like, repeated keys): the answer is
HTTP 200 and every control keeps its default, as if the key were absent. The same pages
opened with good settings show them in their controls; a `run=` naming no run of this
session gets the page's red alert, never another session's circuit.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid

import pytest

from workbench.ui import selection, state
from workbench.ui.callback_client import post_callback
from workbench.ui.shared import SESSION_KEY

PAGE_OUT = ["_pages_content.children", "_pages_store.data"]
JUNK = ["abcd", "1e999", "nan", "9" * 5000, "../../etc/passwd", "<script>x</script>"]
CONTROLS = {  # page -> {setting: (component id, prop, default)}
    "attention": {
        "stat": ("attention-stat", "value", "entropy"),
        "block": ("attention-block-size", "value", "8"),
        "grid": ("attention-grid-scope", "value", "layer"),
    },
    "circuits": {
        "method": ("circuits-method", "value", "eap"),
        "corruption": ("circuits-corruption", "value", "s2"),
        "n": ("circuits-n", "value", 16),
        "reference": ("circuits-reference", "checked", False),
        "threshold": ("circuits-threshold", "value", 0),
        "run": ("circuits-job", "data", None),
    },
    "guidance": {
        "heads": ("guidance-heads", "value", []),
        "method": ("guidance-method", "value", "identity"),
        "tokens": ("guidance-tokens", "value", 8),
        "u": ("guidance-u", "value", 1.0),
        "w": ("guidance-w", "value", 1.5),
        "objective": ("guidance-objective", "value", "ioi_logprob"),
        "n": ("guidance-prompts", "value", 16),
        "rounds": ("guidance-rounds", "value", 2),
        "run": ("guidance-job", "data", None),
    },
    "attacks": {
        "objective": ("attacks-objective", "value", "flip"),
        "heads": ("attacks-heads", "value", []),
        "weight": ("attacks-weight", "value", 0.0),
        "steps": ("attacks-steps", "value", 20),
        "n_adv": ("attacks-nadv", "value", 4),
        "n_prompts": ("attacks-prompts", "value", 2),
        "seed": ("attacks-seed", "value", 0),
        "run": ("attacks-job", "data", None),
    },
    "heads": {"key": ("heads-kpos", "value", None)},
}
GOOD = {  # page -> (query, {setting: value shown})
    "attention": ({"stat": "sink", "block": "16", "grid": "all"}, {}),
    "circuits": (
        {"method": "atp*", "corruption": "abc", "n": "8", "reference": "1", "threshold": "0.35"},
        {"n": 8, "reference": True, "threshold": 0.35},
    ),
    "guidance": (
        {"heads": "L1H2,L0H1,L9H9", "method": "zero", "tokens": "5", "u": "0.5", "w": "2"},
        {"heads": ["L1H2", "L0H1"], "tokens": 5, "u": 0.5, "w": 2.0},  # L9H9: not in tiny-ioi
    ),
    "attacks": (
        {"objective": "dissipation", "heads": "L1H0", "weight": "2.5", "steps": "7", "seed": "4"},
        {"heads": ["L1H0"], "weight": 2.5, "steps": 7, "seed": 4},
    ),
    "heads": ({"key": "3", "token": "5"}, {"key": 3}),
}


@pytest.fixture(scope="module", autouse=True)
def _served(client):
    """One first request: Dash registers its page callback then."""
    assert client.get("/").status_code == 200


def _render(app, client, page: str, query: dict | str) -> dict:
    search = query if isinstance(query, str) else urllib.parse.urlencode(query, doseq=True)
    inputs = {"_pages_location.pathname": f"/{page}", "_pages_location.search": f"?{search}"}
    return post_callback(app, client, PAGE_OUT, inputs)["response"]["_pages_content"]["children"]


def _find(tree, wanted: str) -> dict | None:
    if isinstance(tree, dict):
        props = tree.get("props", {})
        if props.get("id") == wanted:
            return props
        for value in [*props.values(), *tree.values()]:
            if isinstance(value, dict | list) and (found := _find(value, wanted)) is not None:
                return found
    elif isinstance(tree, list):
        for item in tree:
            if (found := _find(item, wanted)) is not None:
                return found
    return None


@pytest.mark.parametrize("page", list(CONTROLS))
def test_forged_settings_leave_every_control_at_its_default(app, client, page):
    for shift in (0, 3):  # each key gets a different junk value in each of two requests
        query = {key: JUNK[(i + shift) % len(JUNK)] for i, key in enumerate(CONTROLS[page])}
        layout = _render(app, client, page, query | {"zzz": "1", "__proto__": "x"})
        for key, (cid, prop, default) in CONTROLS[page].items():
            if key == "run" and selection.RUN_ID_RE.fullmatch(query[key]):
                continue  # a well-formed id: the page's callback judges it (below)
            assert _find(layout, cid).get(prop, None) == default, (page, key, query[key][:20])
    repeated = "&".join(f"{key}=a&{key}=b" for key in CONTROLS[page])  # lists, not text
    layout = _render(app, client, page, repeated)
    assert all(_find(layout, c).get(p) == d for c, p, d in CONTROLS[page].values())


@pytest.mark.parametrize("page", list(GOOD))
def test_good_settings_reach_the_controls(app, client, page):
    query, shown = GOOD[page]
    layout = _render(app, client, page, query)
    for key, (cid, prop, _default) in CONTROLS[page].items():
        if key in query:
            assert _find(layout, cid).get(prop) == shown.get(key, query[key]), key


def test_run_links_fill_the_job_store(app, client):
    """A well-formed id reaches the job store (forged ones are dropped: see above)."""
    for page in ("circuits", "guidance", "attacks"):
        layout = _render(app, client, page, {"run": "20000101-000000-cafe"})
        assert _find(layout, f"{page}-job")["data"] == {"run_id": "20000101-000000-cafe"}


CIRCUIT_OUT = [
    "circuits-graph.figure",
    "circuits-curve.figure",
    "circuits-roc.figure",
    "circuits-error.children",
]


def test_a_linked_circuit_run_of_another_session_is_refused(app, client):
    """The page's first call opens a `run=` link's run only for the session that made it."""
    mine, other = uuid.uuid4().hex, uuid.uuid4().hex
    with state.run_store().begin_run(
        kind="circuit", model="tiny-ioi", config={SESSION_KEY: other}
    ) as run:
        pass
    inputs = {
        "circuits-job.data": {"run_id": run.run_id},
        "circuits-upload.contents": None,
        "circuits-threshold.value": 0,
    }
    body = post_callback(
        app,
        client,
        CIRCUIT_OUT,
        inputs,
        {"circuits-upload.filename": None, "session-id.data": mine},
        changed=[],  # the page's first call (what a permalink triggers)
    )
    shown = json.dumps(body["response"]["circuits-error"]["children"])
    assert f"run: '{run.run_id}' is not a circuit run of this session" in shown
    assert "circuits-graph" not in body["response"]


JOB_PAGES = {
    "guidance": (
        [
            "guidance-heads.value",
            "guidance-search-note.children",
            "guidance-comparison.figure",
            "guidance-comparison-table.children",
            "guidance-error.children",
        ],
        "head_search",
    ),
    "attacks": (
        [
            "attacks-table.children",
            "attacks-loss.figure",
            "attacks-entropy.figure",
            "attacks-row.data",
            "attacks-row.value",
            "attacks-error.children",
        ],
        "attack",
    ),
}


@pytest.mark.parametrize("page", list(JOB_PAGES))
def test_job_pages_open_a_linked_run_only_of_this_session(app, client, page):
    """First call: no run linked -> nothing changes; another session's run -> the alert."""
    outputs, kind = JOB_PAGES[page]
    mine, other = uuid.uuid4().hex, uuid.uuid4().hex

    def first_call(job):
        inputs, states = {f"{page}-job.data": job}, {"session-id.data": mine}
        return post_callback(app, client, outputs, inputs, states, changed=[])

    assert first_call(None).get("response", {}) == {}  # a page opened with no run
    with state.run_store().begin_run(
        kind=kind, model="tiny-ioi", config={SESSION_KEY: other}
    ) as run:
        pass
    response = first_call({"run_id": run.run_id})["response"]
    shown = json.dumps(response[f"{page}-error"]["children"])
    assert f"run: '{run.run_id}' is not a {kind} run of this session" in shown
