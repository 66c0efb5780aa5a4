"""Hostile input around bootstrap intervals and IOI corruptions: CLI options (`--n-boot`,
`--boot-seed`, `--corruption`), the evaluation API's bootstrap arguments, per-prompt scores that
do not belong to the scores they should explain, and corruption names or tasks that do not fit.
Each case asserts the exact error."""

from __future__ import annotations

import math

import pytest
import torch

from workbench.cli import main

CLI_CASES = [
    (
        ["faithfulness", "tiny-ioi", "ioi", "--circuit", "c.json", "--n-boot", "-1"],
        "workbench: error: argument --n-boot: expected an integer >= 0, got -1",
    ),
    (
        ["faithfulness", "tiny-ioi", "ioi", "--circuit", "c.json", "--n-boot", "many"],
        "workbench: error: argument --n-boot: expected an integer >= 0, got 'many'",
    ),
    (
        ["circuit", "tiny-ioi", "ioi", "--boot-seed", "-2"],
        "workbench: error: argument --boot-seed: expected an integer >= 0, got -2",
    ),
    (
        ["circuit", "tiny-ioi", "ioi", "--corruption", "bogus"],
        "workbench: error: argument --corruption: invalid choice: 'bogus' "
        "(choose from 's2', 's1s2', 'abc')",
    ),
    (
        ["circuit", "tiny-induction", "induction", "--corruption", "abc"],
        "workbench: error: --corruption: only for the ioi task, not 'induction'",
    ),
]


@pytest.mark.parametrize(("argv", "expected"), CLI_CASES)
def test_cli_refuses_bad_bootstrap_and_corruption_options(capsys, argv, expected):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines() == [expected]


@pytest.fixture(scope="module")
def ioi_eap(zoo_model):
    from circuits import trace
    from workbench.tasks import make_task

    model = zoo_model("tiny-ioi")
    task = make_task("ioi", model, n=4, seed=0)
    return model, task, trace(model, task, method="eap")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_boot": -1}, "n_boot: need an integer >= 0, got -1"),
        ({"n_boot": True}, "n_boot: need an integer >= 0, got True"),
        ({"n_boot": 2.5}, "n_boot: need an integer >= 0, got 2.5"),
        ({"seed": 1.5}, "seed: need an integer >= 0, got 1.5"),
        ({"seed": -3}, "seed: need an integer >= 0, got -3"),
        ({"level": 1.5}, r"level: need a number in \(0, 1\), got 1.5"),
        ({"level": 0}, r"level: need a number in \(0, 1\), got 0"),
    ],
)
@pytest.mark.parametrize("entry", ["faithfulness", "completeness", "smallest_faithful_circuit"])
def test_evaluation_refuses_bad_bootstrap_arguments(ioi_eap, entry, kwargs, message):
    import circuits

    model, task, circuit = ioi_eap
    with pytest.raises(ValueError, match=message):
        getattr(circuits, entry)(model, task, circuit, **kwargs)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda n, p: torch.zeros(n), r"per_prompt: need a \[prompt, edge\] tensor"),
        (lambda n, p: [[0.0] * n], r"per_prompt: need a \[prompt, edge\] tensor"),
        (lambda n, p: torch.zeros(2, n + 1), r"per_prompt: need shape \(n_prompts, 110\)"),
        (lambda n, p: torch.zeros(0, n), r"per_prompt: need shape \(n_prompts, 110\)"),
        (lambda n, p: p.clone().index_fill_(1, torch.tensor([0]), math.nan), "contains nan"),
        (lambda n, p: p + 1.0, "per_prompt: its mean over prompts is not the scores"),
    ],
)
def test_roc_refuses_per_prompt_scores_that_do_not_fit(ioi_eap, make, message):
    from circuits import roc

    _, _, circuit = ioi_eap
    rows = circuit.scores.repeat(3, 1)  # [3, edge]: averages to the scores
    roc(circuit, circuit.prune(top_n=10), per_prompt=rows, n_boot=5)  # fits: no error
    with pytest.raises(ValueError, match=message):
        roc(circuit, circuit.prune(top_n=10), per_prompt=make(len(circuit.edges), rows))


@pytest.mark.parametrize(
    ("task", "options", "message"),
    [
        ("ioi", {"corruption": "S2"}, "corruption: unknown corruption 'S2'"),
        ("ioi", {"corruption": None}, "corruption: unknown corruption None"),
        ("ioi", {"corrupt": "abc"}, r"options: \['corrupt'\] not accepted by task 'ioi'"),
        ("induction", {"corruption": "abc"}, r"options: \['corruption'\] not accepted by task"),
    ],
)
def test_make_task_refuses_bad_corruptions(zoo_model, task, options, message):
    from workbench.tasks import make_task

    model = zoo_model("tiny-ioi") if task == "ioi" else zoo_model("tiny-induction")
    with pytest.raises(ValueError, match=message):
        make_task(task, model, n=2, **options)


def test_abc_needs_five_names():
    from workbench.tasks.ioi_prompts import generate_ioi_prompts

    with pytest.raises(ValueError, match="names: need at least 5 distinct names for corruption"):
        generate_ioi_prompts(2, names=["A", "B", "C", "D"], corruption="abc")
    assert len(generate_ioi_prompts(2, names=["A", "B", "C", "D"], corruption="s1s2")) == 2


def test_per_prompt_scores_refuse_nonlinear_methods(ioi_eap):
    from circuits import per_prompt_scores

    model, task, _ = ioi_eap
    for method in ("acdc", "svd", "activation", "no-such"):
        with pytest.raises(ValueError, match=f"method: '{method}' has no per-prompt scores"):
            per_prompt_scores(model, task, method)
