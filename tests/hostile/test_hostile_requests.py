"""Hostile callback requests and model names sent by a browser (issue 12, items 3 and 7).

- Malformed bodies to `/_dash-update-component` (not JSON objects, missing or mistyped
  fields, inputs that do not match the callback, an output no callback has) get 400 with one
  line, never a 500, and the server keeps answering afterwards.
- A model named by a browser (`state.open_model`) is a zoo model, a model already loaded, a
  folder inside the server's `--models-dir` folders, or (only with `--allow-hub`) a hub id:
  anything else is refused before anything is read from disk.
"""

from __future__ import annotations

import shutil

import pytest

from workbench.ui import request_guard, state
from workbench.ui.callback_client import post_callback
from workbench.zoo import CHECKPOINT_DIR

LOAD_OUTPUTS = ["prompt-model.data", "prompt-model.value", "prompt-load-status.children"]


@pytest.fixture(scope="module")
def load_key(app):
    return next(key for key in app.callback_map if key.startswith("..prompt-model.data"))


@pytest.fixture
def roots(tmp_path):
    """Model folders limited to `tmp_path/allowed`; restored afterwards."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    before = state._settings["model_roots"], state._settings["allow_hub"]
    state.configure(model_roots=[allowed], allow_hub=False)
    yield allowed
    state._settings["model_roots"], state._settings["allow_hub"] = before


def _malformed_bodies(key: str) -> list:
    return [
        "a string",
        [1, 2, 3],
        None,
        {},
        {"output": 5},
        {"output": key, "inputs": "not a list"},
        {"output": key, "inputs": [5]},
        {"output": key, "inputs": [{"id": "prompt-load"}]},
        {"output": key, "inputs": [], "state": {"id": "x"}},
        {"output": key, "inputs": [], "changedPropIds": [1]},
        # well-formed but not this callback's inputs: Dash itself cannot dispatch it
        {"output": key, "outputs": [], "inputs": [], "state": [], "changedPropIds": []},
        {
            "output": "nope.children",
            "outputs": {"id": "nope", "property": "children"},
            "inputs": [{"id": "nope", "property": "n_clicks", "value": 1}],
            "changedPropIds": ["nope.n_clicks"],
        },
    ]


@pytest.mark.parametrize("index", range(12))
def test_malformed_callback_bodies_get_400_not_500(client, load_key, index):
    body = _malformed_bodies(load_key)[index]
    answer = client.post(request_guard.CALLBACK_ROUTE, json=body)
    assert answer.status_code == 400
    assert answer.data.decode().startswith("Bad Request: malformed callback request")
    assert client.get("/").status_code == 200  # still serving


def test_non_json_body_gets_400(client):
    answer = client.post(
        request_guard.CALLBACK_ROUTE, data=b"{not json", content_type="application/json"
    )
    assert answer.status_code == 400


def _load(app, client, path):
    out = post_callback(
        app,
        client,
        LOAD_OUTPUTS,
        {"prompt-load.n_clicks": 1},
        {"prompt-path.value": path},
    )
    return str(out["response"])


@pytest.mark.parametrize(
    "path",
    ["/etc", "/etc/passwd", "/root/.ssh", "/proc/self", "..", "~", "/"],
)
def test_folders_outside_the_model_roots_are_refused(app, client, roots, path):
    shown = _load(app, client, path)
    assert "is outside the folders this dashboard opens checkpoints from" in shown
    assert str(roots) in shown


def test_a_symlink_out_of_the_roots_is_refused(app, client, roots, tmp_path):
    (roots / "escape").symlink_to("/etc")
    assert "is outside the folders" in _load(app, client, str(roots / "escape"))


@pytest.mark.parametrize("name", ["gpt2", "EleutherAI/pythia-70m", "meta-llama/Llama-3-8B"])
def test_hub_ids_need_allow_hub(app, client, roots, name):
    assert "hub ids load only when the dashboard is started with `--allow-hub`" in _load(
        app, client, name
    )


def test_a_checkpoint_inside_the_roots_loads(app, client, roots):
    folder = roots / "my-model"
    shutil.copytree(CHECKPOINT_DIR / "tiny-ioi", folder)
    for spelling in [str(folder), f"{roots}/./my-model/", f"{roots}/x/../my-model"]:
        (roots / "x").mkdir(exist_ok=True)
        assert "loaded" in _load(app, client, spelling)
    # once loaded, the pages may name it even if the roots change
    state.configure(model_roots=[roots / "x"])
    assert state.open_model(str(folder.resolve())) is state.get_model(str(folder))


def test_zoo_models_are_always_open(roots):
    assert state.open_model("tiny-ioi").name == "tiny-ioi"
