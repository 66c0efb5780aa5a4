"""Hostile input to the planted-circuit additions (issue 14, item 1): the `lookup` task on
models it does not suit or with impossible sizes, and the planted build command with an
unknown name. Each case asserts the specific error.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli_helpers import run_cli
from workbench import make_task


@pytest.mark.parametrize(
    ("model", "kwargs", "message"),
    [
        ("minilm", {}, "task: lookup needs a decoder; minilm is an encoder"),
        ("tiny-ioi", {}, "task: lookup needs a tokenizer with BOS and separator tokens"),
        ("planted-lookup", {"n": 0}, "n: need at least one prompt, got 0"),
        ("planted-lookup", {"n_pairs": 0}, "n_pairs: need 1 <= n_pairs"),
        ("planted-lookup", {"n_pairs": 21}, "2*n_pairs + 3 <= 44, got 21"),
    ],
)
def test_lookup_task_refuses_unsuitable_input(zoo_model, model, kwargs, message):
    from workbench.tasks.lookup import make_lookup_task

    with pytest.raises(ValueError, match=message.replace("*", r"\*").replace("+", r"\+")):
        make_lookup_task(zoo_model(model), **kwargs)


def test_make_task_lookup_on_an_encoder_is_a_value_error(zoo_model):
    with pytest.raises(ValueError, match="lookup needs a decoder"):
        make_task("lookup", zoo_model("minilm"))


def test_cli_circuit_lookup_on_a_model_without_separator_exits_2_with_one_line():
    proc = run_cli("circuit", "tiny-ioi", "lookup", "--n", "4")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "workbench: error: task: lookup needs a tokenizer with BOS and separator tokens; "
        "tiny-ioi lacks one"
    ]


@pytest.mark.parametrize("name", ["nope", "tiny-ioi", "../planted-lookup"])
def test_planted_build_refuses_unknown_names(tmp_path, name):
    proc = subprocess.run(
        [sys.executable, "-m", "workbench.zoo.planted", "build", name, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert f"unknown planted model {name!r}" in proc.stderr
    assert not any(tmp_path.iterdir())
