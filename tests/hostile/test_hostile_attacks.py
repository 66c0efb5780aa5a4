"""Hostile option values for the token attacks (issue 15, item 2): every bad value of
`TokenAttack`, `UniversalAttack` and `random_baseline` is a `ValueError` naming the option, and
`workbench attack` answers bad options with exit 2 and one line on stderr, before loading a
model."""

from __future__ import annotations

import math

import pytest

from analysis.attacks.baseline import random_baseline
from analysis.attacks.token_attack import TokenAttack
from analysis.attacks.universal import UniversalAttack
from workbench.cli import main
from workbench.tasks import make_task


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ban_names": "yes"}, "ban_names: need True or False, got 'yes'"),
        ({"ban_names": 1}, "ban_names: need True or False, got 1"),
        ({"ban_names": None}, "ban_names: need True or False, got None"),
        ({"steps": 0}, "steps: must be >= 1 (an integer), got 0"),
        ({"steps": True}, "steps: must be >= 1 (an integer), got True"),
        ({"steps": 2.5}, "steps: must be >= 1 (an integer), got 2.5"),
        ({"n_adv": -3}, "n_adv: must be >= 1 (an integer), got -3"),
        ({"top_k": 0}, "top_k: must be >= 1 (an integer), got 0"),
        ({"batch_size": "8"}, "batch_size: must be >= 1 (an integer), got '8'"),
        ({"seed": -1}, "seed: must be >= 0 (an integer), got -1"),
        ({"dissipation_weight": math.nan, "heads": "L1H0"}, "dissipation_weight: need a finite"),
        ({"dissipation_weight": -1.0, "heads": "L1H0"}, "dissipation_weight: need a finite"),
        ({"dissipation_weight": math.inf, "heads": "L1H0"}, "dissipation_weight: need a finite"),
        ({"cosine_threshold": 2.0}, "cosine_threshold: need a finite number in [-1.0, 1.0]"),
        ({"margin": -0.5}, "margin: need a finite number in [0.0, inf]"),
        ({"dissipation": "hydra", "heads": "L1H0"}, "dissipation: unknown mode 'hydra'"),
        ({"query": "everything"}, "query: unknown query rows 'everything'"),
    ],
)
@pytest.mark.parametrize("cls", [TokenAttack, UniversalAttack])
def test_bad_attack_options_are_value_errors_naming_them(cls, kwargs, message):
    with pytest.raises(ValueError) as err:
        cls(**kwargs)
    assert message in str(err.value)


def test_universal_attack_refuses_require_dissipation_and_evaluate_before_fit(zoo_model):
    with pytest.raises(ValueError, match="require_dissipation: not supported"):
        UniversalAttack(require_dissipation=True, heads="L1H0")
    model = zoo_model("tiny-ioi")
    with pytest.raises(ValueError, match=r"evaluate: call fit\(\.\.\.\) first"):
        UniversalAttack().evaluate(model, make_task("ioi", model, n=2, seed=1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_draws": 0}, "n_draws: must be >= 1 (an integer), got 0"),
        ({"n_draws": True}, "n_draws: must be >= 1 (an integer), got True"),
        ({"n_draws": 1.5}, "n_draws: must be >= 1 (an integer), got 1.5"),
        ({"seed": -2}, "seed: must be >= 0 (an integer), got -2"),
    ],
)
def test_bad_baseline_options_are_value_errors_naming_them(zoo_model, kwargs, message):
    model = zoo_model("tiny-ioi")
    task = make_task("ioi", model, n=2, seed=1)
    with pytest.raises(ValueError) as err:
        random_baseline(model, TokenAttack(), task, **kwargs)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline-draws", "-1"], "--baseline-draws: must be >= 0 (an integer), got -1"),
        (["--search-prompts", "0"], "--search-prompts: must be >= 1 (an integer), got 0"),
        (["--n-boot", "0"], "--n-boot: must be >= 1 (an integer), got 0"),
        (["--n-prompts", "0"], "--n-prompts: must be >= 1 (an integer), got 0"),
        (["--prompt", "a sentence"], "--prompt: decoder objectives attack IOI prompts"),
        (["--baseline-draws", "many"], "argument --baseline-draws: invalid int value"),
        (["--steps", "0"], "steps: must be >= 1 (an integer), got 0"),
    ],
)
def test_bad_cli_options_exit_2_with_one_line(capsys, args, message):
    code = main(["attack", "tiny-ioi", "--quiet", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0]
