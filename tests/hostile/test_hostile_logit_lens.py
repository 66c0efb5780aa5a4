"""Hostile input to the logit lens (issue 16): the library refuses with a ValueError naming
the bad position, target, k or task (and encoders), and the Model & prompt page answers a
bad position with the lens panel's visible alert (HTTP 200), never a 500 and never a lens of
another position."""

from __future__ import annotations

import json
import uuid

import pytest

from analysis.logit_lens import logit_lens
from workbench.ui.callback_client import post_callback

PROMPT = "When Mary and John went to the store, John gave a drink to"
N_TOKENS = 15  # tiny-ioi: BOS + 14 tokens (checked below)
OUTPUTS = [
    "prompt-lens.children",
    "prompt-lens-target.figure",
    "prompt-lens-top.figure",
    "prompt-lens-position.max",
]


@pytest.mark.parametrize(
    ("model", "kwargs", "message"),
    [
        ("minilm", {}, "logit lens: minilm is an encoder"),
        ("tiny-ioi", {"position": N_TOKENS}, f"position: {N_TOKENS} is out of range for a 15-"),
        ("tiny-ioi", {"position": -N_TOKENS - 1}, "position: -16 is out of range"),
        ("tiny-ioi", {"position": 2.0}, "position: 2.0 is not an integer"),
        ("tiny-ioi", {"position": True}, "position: True is not an integer"),
        ("tiny-ioi", {"position": "3"}, "position: '3' is not an integer"),
        ("tiny-ioi", {"target": " Mary John"}, "target: ' Mary John' is not one token"),
        ("tiny-ioi", {"target": ""}, "target: '' is not a token string"),
        ("tiny-ioi", {"target": 7}, "target: 7 is not a token string"),
        ("tiny-ioi", {"k": 0}, "k: 0 is out of range (1-20)"),
        ("tiny-ioi", {"k": 21}, "k: 21 is out of range (1-20)"),
        ("tiny-ioi", {"task": "induction"}, "task: 'induction' is not one of ioi"),
        ("tiny-ioi", {"prompt": "word " * 400}, "longer than tiny-ioi's context"),
    ],
)
def test_logit_lens_refuses_with_a_named_error(zoo_model, model, kwargs, message):
    prompt = kwargs.pop("prompt", PROMPT)
    with pytest.raises(ValueError) as caught:
        logit_lens(zoo_model(model), prompt, **kwargs)
    assert message in str(caught.value)


def _post(app, model, prompt, position):
    return post_callback(
        app,
        app.server.test_client(),
        OUTPUTS,
        {
            "prompt-model.value": model,
            "prompt-text.value": prompt,
            "prompt-task.value": None,
            "prompt-lens-position.value": position,
        },
        {"session-id.data": uuid.uuid4().hex},
    )["response"]


@pytest.mark.parametrize(
    ("position", "message"),
    [
        (N_TOKENS, f"position: {N_TOKENS} is out of range (0-{N_TOKENS - 1})"),
        (-1, f"position: -1 is out of range (0-{N_TOKENS - 1})"),
        (2.5, "position: 2.5 is not a whole number"),
        ("abc", "position: 'abc' is not a whole number"),
        ([1], "position: [1] is not a whole number"),
    ],
)
def test_the_page_answers_a_bad_position_with_its_alert(app, zoo_model, position, message):
    assert zoo_model("tiny-ioi").to_tokens(PROMPT).shape[1] == N_TOKENS
    body = _post(app, "tiny-ioi", PROMPT, position)
    alert = json.dumps(body["prompt-lens"]["children"])
    assert "prompt-lens-alert" in alert and message in alert
    assert body["prompt-lens-target"]["figure"]["layout"]["xaxis"]["visible"] is False
    assert body["prompt-lens-position"]["max"] == N_TOKENS - 1


def test_the_page_bounds_the_position_and_refuses_encoders(app):
    body = _post(app, "tiny-ioi", PROMPT, 3)
    assert body["prompt-lens-position"]["max"] == N_TOKENS - 1
    assert "position 3 " in json.dumps(body["prompt-lens"]["children"])
    note = json.dumps(_post(app, "minilm", PROMPT, None)["prompt-lens"]["children"])
    assert "minilm is an encoder" in note
