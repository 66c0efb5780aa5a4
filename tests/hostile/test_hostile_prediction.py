"""Hostile input to the prediction panel (issue 16): the library refuses with a ValueError
naming the problem, and the Model & prompt page answers with its visible alert (HTTP 200),
never a 500 and never a prediction of another model or prompt."""

from __future__ import annotations

import json
import uuid

import pytest

from analysis.prediction import predict, task_metric
from workbench.ui.callback_client import post_callback

PROMPT = "When Mary and John went to the store, John gave a drink to"
OUTPUTS = ["prompt-prediction.children", "prompt-topk.figure", "prompt-dla.figure"]


@pytest.mark.parametrize(
    ("model", "kwargs", "error", "message"),
    [
        ("minilm", {}, ValueError, "prediction: minilm is an encoder"),
        ("tiny-ioi", {"k": 1}, ValueError, "k: 1 is out of range (2-50)"),
        ("tiny-ioi", {"k": 51}, ValueError, "k: 51 is out of range (2-50)"),
        ("tiny-ioi", {"k": True}, ValueError, "k: True is out of range"),
        ("tiny-ioi", {"prompt": "word " * 400}, ValueError, "longer than tiny-ioi's context"),
    ],
)
def test_predict_refuses_with_a_named_error(zoo_model, model, kwargs, error, message):
    prompt = kwargs.pop("prompt", PROMPT)
    with pytest.raises(error) as caught:
        predict(zoo_model(model), prompt, **kwargs)
    assert message in str(caught.value)


def test_an_unknown_task_is_named(zoo_model):
    with pytest.raises(ValueError, match="task: unknown task 'nope'"):
        task_metric(zoo_model("tiny-ioi"), "nope")


@pytest.mark.parametrize(
    ("model", "prompt", "task", "message"),
    [
        ("tiny-ioi", ["not", "text"], None, "prompt: expected text"),
        ("tiny-ioi", "word " * 400, None, "longer than tiny-ioi's context"),
        ("/no/such/checkpoint", PROMPT, None, "outside the folders this dashboard opens"),
        ("minilm", PROMPT, None, "minilm is an encoder"),
        ("tiny-ioi", PROMPT, "forged", "task: 'forged' is not one of"),
    ],
)
def test_the_page_answers_bad_input_with_its_alert(app, model, prompt, task, message):
    body = post_callback(
        app,
        app.server.test_client(),
        OUTPUTS,
        {"prompt-model.value": model, "prompt-text.value": prompt, "prompt-task.value": task},
        {"session-id.data": uuid.uuid4().hex},
    )["response"]
    assert message in json.dumps(body["prompt-prediction"]["children"])
    if task is None:  # nothing drawn for a refused model or prompt
        assert body["prompt-topk"]["figure"]["layout"]["xaxis"]["visible"] is False
