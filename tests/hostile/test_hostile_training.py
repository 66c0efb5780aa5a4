"""Hostile input to the training-dynamics views (issue 15 items 3 and 4): `entropy_bound`,
`loss_plateau`, the bound function and the result plots refuse bad arguments with a
`ValueError` naming them; `workbench training` / `workbench entropy-bound` exit 2 with exactly
one line; the Training page answers with its visible alert (HTTP 200)."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

from analysis.training_dynamics import entropy_bound, loss_plateau
from analysis.training_dynamics.bound_math import entropy_lower_bound
from workbench.cli import main
from workbench.ui import create_app
from workbench.ui.callback_client import post_callback

LONG = "Mary " * 400

API_CASES = [
    ("tiny-ioi", lambda m: entropy_bound(m, texts=[]), "texts: expected a non-empty list"),
    ("tiny-ioi", lambda m: entropy_bound(m, texts=["ok", " "]), "texts: item 1 is not a non"),
    ("tiny-ioi", lambda m: entropy_bound(m, texts=5), "texts: expected a non-empty list"),
    (
        "tiny-ioi",
        lambda m: entropy_bound(m, texts=[LONG]),
        "prompt: 401 tokens is longer than tiny-ioi's context of 128",
    ),
    ("minilm", lambda m: loss_plateau(m), "model: minilm is an encoder"),
    ("planted-induction", lambda m: loss_plateau(m), "model: planted-induction has no training"),
    ("tiny-ioi", lambda m: loss_plateau(m, n=0), "n: expected an integer in [1, 512], got 0"),
    ("tiny-ioi", lambda m: loss_plateau(m, n=True), "n: expected an integer in [1, 512]"),
    ("tiny-ioi", lambda m: loss_plateau(m, n=2.5), "n: expected an integer in [1, 512]"),
    ("tiny-ioi", lambda m: loss_plateau(m, new_tokens=1), "new_tokens: expected an integer >= 2"),
    ("tiny-ioi", lambda m: loss_plateau(m, prompts=[""]), "prompts: item 0 is not a non-empty"),
    ("tiny-ioi", lambda m: loss_plateau(m, prompts=[]), "prompts: expected a non-empty list"),
    (
        "tiny-ioi",
        lambda m: loss_plateau(m, prompts=[LONG]),
        "prompt: 401 tokens is longer than tiny-ioi's context",
    ),
    (
        "tiny-ioi",
        lambda m: loss_plateau(m, prompts=["Mary " * 60], new_tokens=100),
        "exceeds the context of 128",
    ),
]


@pytest.mark.parametrize(("name", "call", "message"), API_CASES)
def test_api_refuses_with_a_named_value_error(zoo_model, name, call, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call(zoo_model(name))


@pytest.mark.parametrize(
    ("sigma", "keys", "message"),
    [
        (-0.1, 4, "sigma: expected finite values >= 0"),
        (np.inf, 4, "sigma: expected finite values >= 0"),
        (1.0, -3, "n_keys: expected whole numbers >= 1"),
    ],
)
def test_bound_function_refuses_bad_numbers(sigma, keys, message):
    with pytest.raises(ValueError, match=message):
        entropy_lower_bound(sigma, keys)


def test_plots_refuse_unknown_kinds_and_bounds(zoo_model):
    result = entropy_bound(zoo_model("planted-induction"), texts=["a b c a b"])
    with pytest.raises(ValueError, match="kind: unknown plot kind 'pie'"):
        result.plot("pie")
    with pytest.raises(ValueError, match="bound: unknown bound 'max'"):
        result.plot("scatter", bound="max")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["training", "minilm"], "model: minilm is an encoder; the plateau view needs a decoder"),
        (["training", "planted-lookup"], "model: planted-lookup has no training history"),
        (["training", "tiny-ioi", "--n", "0"], "argument --n: expected an integer >= 1, got 0"),
        (["training", "tiny-ioi", "--new-tokens", "1"], "--new-tokens: expected an integer >= 2"),
        (["training", "tiny-ioi", "--prompt", ""], "prompts: item 0 is not a non-empty string"),
        (["entropy-bound", "tiny-ioi", "--text", " "], "texts: item 0 is not a non-empty string"),
        (["entropy-bound", "no/such/model"], "no/such/model"),
    ],
)
def test_cli_exit_2_with_one_line(capsys, argv, message):
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("workbench: error: ") and message in lines[0]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(
        store=str(tmp_path_factory.mktemp("store")),
        jobs_folder=str(tmp_path_factory.mktemp("jobs")),
    )


@pytest.mark.parametrize(
    ("model", "form", "message"),
    [
        ("minilm", "logits", "model: minilm is an encoder"),
        ("planted-induction", "logits", "model: planted-induction has no training history"),
        ("tiny-ioi", "max", "bound: choose one of logits, paper, row"),
        ("tiny-ioi", ["row"], "bound: choose one of logits, paper, row"),
    ],
)
def test_training_page_answers_with_its_alert(app, model, form, message):
    outputs = [
        "training-plateau.figure",
        "training-bound.figure",
        "training-bound-steps.figure",
        "training-error.children",
    ]
    state = {
        "training-query.data": {"model": model},
        "session-id.data": uuid.uuid4().hex,
    }
    inputs = {"training-run.n_clicks": 1, "training-bound-form.value": form}
    answer = post_callback(app, app.server.test_client(), outputs, inputs, state)  # HTTP 200
    assert message in json.dumps(answer["response"]["training-error"]["children"])
