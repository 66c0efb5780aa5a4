"""Hostile requests to the dashboard server and hostile prompts to `Model` (issue 12, items 2,
3 and the locking part of 8).

- Host header: only 127.0.0.1, localhost, [::1] and the names the server was started for are
  answered (DNS rebinding gets 421, a missing or malformed Host 400), on every route, before
  any callback runs; checked through Flask's test client and over a real socket.
- Size: bodies over the cap get 413 (also chunked ones); prompts over the character cap are
  refused before tokenising; `None`, bytes and lone surrogates are `ValueError`s naming the
  problem, in the API and on the page.
- Memory: one model per checkpoint folder however it is spelled; a bounded model cache that
  keeps models in use; a byte-bounded result cache shared by all sessions.
- Locking: a slow model load does not stall another session's request, and one model is
  still loaded once.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from werkzeug.serving import make_server

from workbench.model import MAX_PROMPT_CHARS
from workbench.ui import create_app, request_guard, state
from workbench.ui.callback_client import post_callback
from workbench.ui.result_bytes import estimate_bytes
from workbench.zoo import CHECKPOINT_DIR

PROMPT = "When Mary and John went to the store, John gave a drink to"
HEAD_OUTPUTS = [
    "attention-pattern.figure",
    "attention-along.figure",
    "attention-distance.figure",
    "attention-block.figure",
    "attention-error.children",
]
HEAD_INPUTS = {
    "attention-layer.value": 0,
    "attention-head.value": 1,
    "attention-token.value": None,
    "attention-stat.value": "entropy",
    "attention-block-size.value": "8",
    "attention-heads.hoverData": None,
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(
        preload=["tiny-ioi"],
        store=str(tmp_path_factory.mktemp("store")),
        jobs_folder=str(tmp_path_factory.mktemp("jobs")),
        allowed_hosts=["box.lan"],
    )


@pytest.fixture(scope="module")
def client(app):
    return app.server.test_client()


@pytest.fixture
def fresh_state():
    """Empty model and result caches; the cache bounds are restored afterwards."""
    budget, n_models = state.result_cache_bytes(), state.max_models()
    state.clear()
    yield state
    state.clear()
    state.configure(result_cache_bytes=budget, max_models=n_models)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A real checkpoint folder (the zoo's tiny-ioi, copied) at <tmp>/ckpts/model."""
    folder = tmp_path_factory.mktemp("home") / "ckpts" / "model"
    shutil.copytree(CHECKPOINT_DIR / "tiny-ioi", folder)
    return folder


def head_view(app, client, session: str, prompt: str, host: str = "localhost") -> dict:
    answer = post_callback(
        app,
        client,
        HEAD_OUTPUTS,
        HEAD_INPUTS,
        {
            "attention-query.data": {"model": "tiny-ioi", "prompt": prompt},
            "session-id.data": session,
        },
        headers={"Host": host},
    )
    return answer["response"]


def alert_text(response: dict) -> str:
    return json.dumps(response.get("attention-error", {}).get("children"))


# ------------------------------------------------------------------------------ Host header
REFUSED_HOSTS = [
    "attacker.example",
    "attacker.example:8050",
    "127.0.0.1.evil.com",
    "127.0.0.1.evil.com:8050",
    "localhost.attacker.example",
    "box.lan.attacker.example",
    "127.0.0.2",
    "0.0.0.0:8050",
    "[::2]:8050",
    "127.1",
]
MALFORMED_HOSTS = [
    "",
    "localhost:",
    "localhost:abc",
    "localhost:8050:1",
    "[::1",
    "[::1]x",
    "a b",
    "127.0.0.1@attacker.example",
    "localhost.",
]
ALLOWED_HOSTS = [
    "localhost",
    "localhost:8050",
    "LOCALHOST:8050",
    "127.0.0.1",
    "127.0.0.1:8050",
    "[::1]",
    "[::1]:8050",
    "[0:0:0:0:0:0:0:1]:8050",
    "box.lan",
    "box.lan:80",
]


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_other_hosts_get_421(client, host):
    answer = client.get("/", headers={"Host": host})
    assert answer.status_code == 421
    assert answer.mimetype == "text/plain"
    assert answer.data.decode() == request_guard.MISDIRECTED + "\n"
    assert b"box.lan" not in answer.data  # the allowed names are not told to a rebound page


@pytest.mark.parametrize("host", MALFORMED_HOSTS)
def test_malformed_hosts_get_400(client, host):
    answer = client.get("/_dash-layout", headers={"Host": host})
    assert answer.status_code == 400
    assert answer.data.startswith(b"Bad Request: ")


@pytest.mark.parametrize("host", ALLOWED_HOSTS)
def test_the_hosts_the_server_was_started_for_are_answered(client, host):
    answer = client.get("/_dash-layout", headers={"Host": host})
    assert answer.status_code == 200, answer.data[:200]


@pytest.mark.parametrize("route", ["/", "/attention", "/_dash-layout", "/_dash-dependencies"])
def test_every_route_checks_the_host(client, route):
    assert client.get(route, headers={"Host": "attacker.example"}).status_code == 421
    assert client.get(route).status_code == 200  # the test client says Host: localhost


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8050", "[::1"])
def test_a_rebound_callback_is_refused_before_it_runs(app, client, fresh_state, host):
    with pytest.raises(RuntimeError, match="HTTP 4(21|00)"):
        head_view(app, client, uuid.uuid4().hex, PROMPT, host=host)
    assert state.cache_usage()["results"] == 0  # nothing was computed
    assert state.loaded_models() == []  # not even the model was loaded


@pytest.mark.parametrize("bad", ["evil host", "http://x", "[nope]", ""])
def test_create_app_refuses_malformed_allowed_hosts(bad):
    with pytest.raises(ValueError, match="is not a host name or IP address"):
        request_guard.allowed_hosts([bad])


def test_one_name_given_as_a_string_is_one_name():
    assert request_guard.allowed_hosts("box.lan") == {"127.0.0.1", "localhost", "[::1]", "box.lan"}


def test_wildcard_bind_addresses_allow_no_extra_name():
    assert request_guard.allowed_hosts(["0.0.0.0", "::"]) == {"127.0.0.1", "localhost", "[::1]"}


# ------------------------------------------------------------------------------ body size
@pytest.mark.parametrize(
    ("size", "content_type"),
    [
        (request_guard.MAX_BODY_BYTES + 1, "application/json"),
        (60_000_000, "application/json"),
        (request_guard.MAX_BODY_BYTES + 1, "application/x-www-form-urlencoded"),
        (request_guard.MAX_BODY_BYTES + 1, "application/octet-stream"),
    ],
)
def test_oversize_bodies_get_413(client, size, content_type):
    answer = client.post("/_dash-update-component", data=b"x" * size, content_type=content_type)
    assert answer.status_code == 413
    assert b"the limit is 4194304 bytes" in answer.data


def test_a_body_under_the_cap_is_still_read(app, client):
    session = uuid.uuid4().hex
    padding = "x" * (request_guard.MAX_BODY_BYTES // 2)  # dash ignores unknown fields
    answer = post_callback(
        app,
        client,
        HEAD_OUTPUTS,
        HEAD_INPUTS,
        {
            "attention-query.data": {"model": "tiny-ioi", "prompt": PROMPT, "pad": padding},
            "session-id.data": session,
        },
    )
    assert answer["response"]["attention-error"]["children"] is None


# ------------------------------------------------------------------------------ a real socket
@pytest.fixture(scope="module")
def served(app):
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()


def status_line(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(request)
        return conn.recv(4096).split(b"\r\n", 1)[0]


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: attacker.example:%d\r\nConnection: close\r\n\r\n", b"421"),
        (b"GET / HTTP/1.0\r\n\r\n", b"400"),
        (b"GET /_dash-layout HTTP/1.1\r\nHost: localhost:%d\r\nConnection: close\r\n\r\n", b"200"),
        (
            b"POST /_dash-update-component HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 60000000\r\n\r\n{",
            b"413",
        ),
        (
            b"POST /_dash-update-component HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"500000\r\n"
            + b"x" * 0x500000
            + b"\r\n0\r\n\r\n",
            b"413",
        ),
    ],
    ids=["rebound-host", "no-host", "loopback", "content-length-60MB", "chunked-5MB"],
)
def test_over_a_real_socket(served, request_bytes, status):
    request_bytes = request_bytes.replace(b"%d", str(served).encode())
    assert status_line(served, request_bytes).split(b" ")[1] == status


# ------------------------------------------------------------------------------ prompts
@pytest.mark.parametrize("name", ["tiny-ioi", "minilm"])
def test_a_20_mb_prompt_is_refused_before_tokenising(zoo_model, name):
    model = zoo_model(name)
    with pytest.raises(ValueError, match=r"prompt: 20,000,000 characters is more than the 200,000"):
        model.to_tokens("x" * 20_000_000)


def test_the_character_cap_applies_to_every_prompt_of_a_batch(zoo_model):
    with pytest.raises(ValueError, match=r"prompt: item 1: 200,001 characters is more than"):
        zoo_model("tiny-ioi").to_tokens([PROMPT, "y" * (MAX_PROMPT_CHARS + 1)])


def test_a_prompt_at_the_cap_reaches_the_context_check(zoo_model):
    with pytest.raises(ValueError, match=r"tokens is longer than tiny-ioi's context of 128"):
        zoo_model("tiny-ioi").to_tokens("Mary " * (MAX_PROMPT_CHARS // 5))


BAD_PROMPTS = [
    (None, "prompt: expected a str or a list of str, got NoneType"),
    (42, "prompt: expected a str or a list of str, got int"),
    ({"prompt": PROMPT}, "prompt: expected a str or a list of str, got dict"),
    (b"When Mary", r"prompt: got bytes, expected text \(decode it as UTF-8 first\)"),
    (b"When \xff\xfe Mary", "prompt: contains bytes that are not valid UTF-8"),
    (bytearray(b"\xc3\x28"), "prompt: contains bytes that are not valid UTF-8"),
    ("When \udcff Mary", r"prompt: contains bytes that are not valid UTF-8 \(an unpaired "),
    ("\ud800", "prompt: contains bytes that are not valid UTF-8"),
    ([PROMPT, None], "prompt: item 1: expected a str, got NoneType"),
    ([PROMPT, b"x"], "prompt: item 1: got bytes, expected text"),
    ([PROMPT, "a\udc80b"], "prompt: item 1: contains bytes that are not valid UTF-8"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_PROMPTS)
def test_bad_prompts_are_value_errors(zoo_model, bad, message):
    with pytest.raises(ValueError, match=message):
        zoo_model("tiny-ioi").to_tokens(bad)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (None, "prompt: expected a str or a list of str, got NoneType"),
        (b"\xff", "prompt: contains bytes that are not valid UTF-8"),
        ("x\udcff", "prompt: contains bytes that are not valid UTF-8"),
        ("z" * 20_000_000, "characters is more than the 200,000-character limit"),
    ],
)
def test_bad_prompts_to_str_tokens(zoo_model, bad, message):
    with pytest.raises(ValueError, match=message):
        zoo_model("minilm").to_str_tokens(bad)


@pytest.mark.parametrize(
    ("prompt", "message"),
    [("When \udcff Mary went", "not valid UTF-8"), ("w" * 300_000, "characters")],
    ids=["surrogate", "300k-chars"],
)
def test_the_page_shows_bad_prompts_as_its_alert(app, client, prompt, message):
    response = head_view(app, client, uuid.uuid4().hex, prompt)
    text = alert_text(response)
    assert "prompt" in text and message in text, text


# ------------------------------------------------------------------------------ model cache
def spellings(folder: Path) -> list[str]:
    parent = folder.parent
    return [
        str(folder),
        f"{folder}/",
        f"{folder}//",
        f"{folder}/./",
        f"{parent}/./model",
        f"{folder}/../model",
        f"{parent}//model/",
        "~/ckpts/model",
        f"  {folder}  ",
    ]


@pytest.mark.parametrize("index", range(9))
def test_spellings_of_a_folder_have_one_canonical_name(checkpoint, monkeypatch, index):
    monkeypatch.setenv("HOME", str(checkpoint.parent.parent))
    assert state.canonical_name(spellings(checkpoint)[index]) == str(checkpoint.resolve())


@pytest.mark.parametrize("spelling", ["{zoo}", "{zoo}/", "{zoo}/../tiny-ioi", "tiny-ioi"])
def test_the_zoo_folder_spelled_as_a_path_is_the_zoo_model(spelling):
    assert state.canonical_name(spelling.format(zoo=CHECKPOINT_DIR / "tiny-ioi")) == "tiny-ioi"


def test_every_spelling_loads_one_model(checkpoint, monkeypatch, fresh_state, tmp_path):
    monkeypatch.setenv("HOME", str(checkpoint.parent.parent))
    link = tmp_path / "link"
    link.symlink_to(checkpoint, target_is_directory=True)
    models = {id(state.get_model(s)) for s in [*spellings(checkpoint), str(link)]}
    assert len(models) == 1
    assert [m.name for m in state.loaded_models()] == [str(checkpoint.resolve())]


@pytest.mark.parametrize(
    "name", ["/no/such/\x00folder", "/" + "a" * 5000], ids=["nul", "5000-chars"]
)
def test_unusable_model_names_are_value_errors(fresh_state, name):
    with pytest.raises(
        ValueError, match=r"^model: '.{1,60}'\.\.\. is not a model name or a folder"
    ):
        state.get_model(name)
    assert state.loaded_models() == []


def test_the_model_cache_is_bounded_and_keeps_models_in_use(checkpoint, fresh_state):
    state.configure(max_models=2)
    session = uuid.uuid4().hex
    ioi = state.get_model("tiny-ioi")
    state.put_result(session, "pins-ioi", {"model": ioi, "x": torch.zeros(8)})
    state.get_model("tiny-induction")
    state.get_model(str(checkpoint))  # evicts tiny-ioi, the least recently used
    names = [m.name for m in state.loaded_models()]
    assert names == ["tiny-induction", str(checkpoint.resolve())]
    assert state.get_result(session, "pins-ioi") is None  # no result keeps an evicted model
    with state.model_lock("tiny-induction"):  # in use: never evicted
        state.get_model("tiny-ioi")
        assert [m.name for m in state.loaded_models()] == ["tiny-induction", "tiny-ioi"]


def test_model_locks_are_shared_by_spellings(checkpoint):
    with state.model_lock(f"{checkpoint}//"):
        taken = ThreadPoolExecutor(1).submit(
            lambda: state.model_lock(f"{checkpoint.parent}/./model").acquire(blocking=False)
        )
        assert taken.result(timeout=60) is False


# ------------------------------------------------------------------------------ result cache
@dataclass(frozen=True)
class Holder:
    array: np.ndarray
    tensor: torch.Tensor


@pytest.mark.parametrize(
    ("make", "low", "high"),
    [
        (lambda: torch.zeros(1000), 4000, 5000),
        (lambda: torch.zeros(100_000)[:10], 400_000, 401_000),  # a view pins its storage
        (lambda: [torch.zeros(1000)] * 3, 4000, 5000),  # counted once
        (lambda: np.zeros(1000), 8000, 9000),
        (lambda: {"a": np.zeros(1000), "b": [np.zeros(500)]}, 12_000, 13_000),
        (lambda: Holder(np.zeros(1000), torch.zeros(1000)), 12_000, 13_000),
        (lambda: go.Figure(go.Heatmap(z=np.zeros((300, 300)))), 720_000, 2_000_000),
        (lambda: "x" * 100_000, 100_000, 101_000),
    ],
    ids=["tensor", "view", "shared", "numpy", "nested", "dataclass", "figure", "str"],
)
def test_result_sizes(make, low, high):
    size, models = estimate_bytes(make())
    assert low <= size <= high and models == frozenset()


def test_a_model_in_a_result_is_not_counted_but_remembered(zoo_model):
    model = zoo_model("tiny-ioi")
    size, models = estimate_bytes({"model": model, "x": np.zeros(10)})
    assert size < 10_000 and models == {id(model)}


def real_result(model, prompt: str) -> dict:
    with torch.no_grad():
        _, cache = model.run_with_cache(prompt, names=lambda n: n.endswith("hook_pattern"))
    return {"patterns": [t.clone() for t in cache.values()], "prompt": prompt}


def test_the_byte_budget_evicts_the_oldest_results(zoo_model, fresh_state):
    model = zoo_model("tiny-ioi")
    results = [real_result(model, f"When {n} and John went to the store") for n in "ABCDE"]
    one = estimate_bytes(results[0])[0]
    state.configure(result_cache_bytes=int(2.5 * (one + 100)))
    sessions = [uuid.uuid4().hex for _ in results]
    for session, result in zip(sessions, results, strict=True):
        state.put_result(session, "attention", result)
    usage = state.cache_usage()
    assert usage["result_bytes"] <= usage["result_cache_bytes"]
    assert [state.get_result(s, "attention") is not None for s in sessions] == [0, 0, 0, 1, 1]


def test_reading_a_result_keeps_it(zoo_model, fresh_state):
    model = zoo_model("tiny-ioi")
    results = [real_result(model, f"When {n} went to the store") for n in "ABC"]
    state.configure(result_cache_bytes=int(2.5 * (estimate_bytes(results[0])[0] + 100)))
    first, second, third = (uuid.uuid4().hex for _ in results)
    state.put_result(first, "r", results[0])
    state.put_result(second, "r", results[1])
    assert state.get_result(first, "r") is results[0]  # now the most recently used
    state.put_result(third, "r", results[2])
    assert state.get_result(second, "r") is None and state.get_result(first, "r") is results[0]


def test_a_result_bigger_than_the_budget_is_refused_or_returned_uncached(fresh_state):
    state.configure(result_cache_bytes=1_000_000)
    session = uuid.uuid4().hex
    big = torch.zeros(1_000_000)  # 4 MB
    with pytest.raises(ValueError, match=r"result: about 4 MiB, more than the whole result cache"):
        state.put_result(session, "big", big)
    assert state.cached(session, "big", lambda: big, model="tiny-ioi") is big
    assert state.get_result(session, "big") is None


def test_fresh_session_ids_cannot_grow_the_cache(fresh_state):
    for _ in range(state.MAX_SESSIONS + 50):
        state.put_result(uuid.uuid4().hex, "r", np.zeros(100))
    assert state.cache_usage()["sessions"] == state.MAX_SESSIONS


def test_the_page_keeps_within_the_budget(app, client, fresh_state):
    head_view(app, client, uuid.uuid4().hex, PROMPT)
    one = state.cache_usage()["result_bytes"]
    state.configure(result_cache_bytes=int(1.5 * one))
    for name in ["Anna", "Bob", "Kate"]:
        response = head_view(app, client, uuid.uuid4().hex, PROMPT.replace("Mary", name))
        assert response["attention-error"]["children"] is None
        usage = state.cache_usage()
        assert usage["result_bytes"] <= usage["result_cache_bytes"] and usage["sessions"] <= 2


@pytest.mark.parametrize(
    ("setting", "value"),
    [("result_cache_bytes", 0), ("max_models", -1), ("max_models", 1.5), ("max_models", True)],
)
def test_bad_cache_settings_are_refused(setting, value):
    with pytest.raises(ValueError, match="expected a positive whole number"):
        state.configure(**{setting: value})


def test_a_bad_cache_size_in_the_environment_is_named(monkeypatch, fresh_state):
    monkeypatch.setitem(state._settings, "result_cache_bytes", None)
    monkeypatch.setenv("WORKBENCH_RESULT_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="WORKBENCH_RESULT_CACHE_MB: expected a positive whole"):
        state.put_result(uuid.uuid4().hex, "r", 1)


# ------------------------------------------------------------------------------ locking
def test_a_slow_load_does_not_stall_another_sessions_request(
    app, client, checkpoint, fresh_state, monkeypatch
):
    state.get_model("tiny-ioi")
    release, started, loads = threading.Event(), threading.Event(), []
    real_load = state.load_model

    def gated_load(name, **kwargs):  # the real loader, held back until released
        loads.append(name)
        started.set()
        assert release.wait(300)
        return real_load(name, **kwargs)

    monkeypatch.setattr(state, "load_model", gated_load)
    with ThreadPoolExecutor(max_workers=3) as pool:
        slow = pool.submit(state.get_model, str(checkpoint))
        assert started.wait(300)
        twin = pool.submit(state.get_model, f"{checkpoint}/./")
        other = pool.submit(head_view, app, client, uuid.uuid4().hex, PROMPT)
        response = other.result(timeout=300)  # answered while the load is still held back
        assert not slow.done() and not twin.done()
        release.set()
        assert slow.result(timeout=300) is twin.result(timeout=300)
    assert response["attention-error"]["children"] is None
    assert loads == [str(checkpoint.resolve())]  # loaded once
    assert os.fspath(checkpoint.resolve()) in [m.name for m in state.loaded_models()]


def test_preloaded_models_are_kept_and_not_counted(checkpoint, fresh_state, tmp_path):
    state.configure(max_models=1)
    state.preload(["tiny-ioi", "tiny-induction"])
    other = tmp_path / "other"
    shutil.copytree(checkpoint, other)
    state.get_model(str(checkpoint))
    state.get_model(str(other))  # evicts the first folder, never a preloaded model
    names = [m.name for m in state.loaded_models()]
    assert names == ["tiny-ioi", "tiny-induction", str(other.resolve())]
