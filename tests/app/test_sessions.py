"""Eight sessions at once see only their own results; safe defaults of `workbench app`.

Drives the Attention and Circuits callbacks over HTTP (Flask's test client, no browser) from
eight threads, each with its own session id and prompt.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from workbench.cli import main
from workbench.ui import create_app, state
from workbench.ui.callback_client import post_callback

NAMES = ["Mary", "John", "Anna", "Bob", "Kate", "Tom", "Lisa", "Ryan"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(preload=["tiny-ioi"], store=str(tmp_path_factory.mktemp("store")))


@pytest.fixture(scope="module")
def client(app):
    return app.server.test_client()


def pattern_labels(app, client, session: str, prompt: str) -> list[str]:
    answer = post_callback(
        app,
        client,
        [
            f"attention-{p}"
            for p in (
                "pattern.figure",
                "along.figure",
                "distance.figure",
                "block.figure",
                "error.children",
            )
        ],
        {
            "attention-layer.value": 0,
            "attention-head.value": 1,
            "attention-token.value": None,
            "attention-stat.value": "entropy",
            "attention-block-size.value": "8",
            "attention-heads.hoverData": None,
        },
        {
            "attention-query.data": {"model": "tiny-ioi", "prompt": prompt},
            "session-id.data": session,
        },
    )
    return answer["response"]["attention-pattern"]["figure"]["layout"]["xaxis"]["ticktext"]


def test_eight_sessions_see_only_their_own_results(app, client):
    sessions = [uuid.uuid4().hex for _ in NAMES]
    prompts = [f"When {name} went to the store" for name in NAMES]
    with ThreadPoolExecutor(max_workers=8) as pool:
        labels = list(
            pool.map(
                lambda sp: pattern_labels(app, client, *sp), zip(sessions, prompts, strict=True)
            )
        )
    for name, ticks in zip(NAMES, labels, strict=True):
        assert ticks[2] == f"2:{name}", ticks
    key = f"attention|tiny-ioi|8|{prompts[0]}"
    assert state.get_result(sessions[0], key) is not None
    assert all(state.get_result(other, key) is None for other in sessions[1:])

    # a circuit held by one session is invisible to another
    state.put_result(sessions[0], "circuit", {"circuit": object()})
    answer = post_callback(
        app,
        client,
        ["circuits-counts.children", "circuits-error.children"],
        {"circuits-threshold.drag_value": 0, "circuits-graph.figure": None},
        {"session-id.data": sessions[1]},
    )
    assert answer["response"]["circuits-counts"]["children"] == "no circuit yet"


def test_a_forged_session_id_is_refused_with_a_message(app, client):
    answer = post_callback(
        app,
        client,
        ["attention-heads.figure", "attention-error.children"],
        {"attention-stat.value": "entropy", "attention-block-size.value": "8"},
        {"attention-query.data": {}, "session-id.data": "../../etc"},
    )
    assert "session" in str(answer["response"]["attention-error"]["children"])


def test_app_command_passes_trust_remote_code_only_when_asked(monkeypatch):
    calls = []
    monkeypatch.setattr("workbench.ui.serve", lambda **kw: calls.append(kw))
    assert main(["app", "--port", "8123"]) == 0
    assert main(["app", "--trust-remote-code", "--host", "0.0.0.0"]) == 0
    assert main(["app", "--allow-host", "box.lan", "--allow-host", "10.0.0.7"]) == 0
    assert calls[0] == {
        "host": "127.0.0.1",
        "port": 8123,
        "trust_remote_code": False,
        "allowed_hosts": [],
        "models_dirs": [],
        "allow_hub": False,
        "access_log": False,
    }
    assert calls[1]["trust_remote_code"] is True and calls[1]["host"] == "0.0.0.0"
    assert calls[2]["allowed_hosts"] == ["box.lan", "10.0.0.7"]
    assert main(["app", "--port", "0"]) == 2
    assert main(["app", "--allow-host", "evil host"]) == 2
    assert len(calls) == 3
    assert state.trust_remote_code() is False  # nothing was served, nothing configured
