"""Hostile input to the HeadHunter objectives: unknown names and options, bad sizes, alpha that
breaks a log-probability, bad rows; `workbench guide --objective` exits 2 with one line.

Every case asserts the exact message (API: `ValueError`; CLI: `workbench: error: ...`).
"""

from __future__ import annotations

import pytest
import torch

from analysis.steering.guidance import guided_generate
from analysis.steering.head_hunter import HeadHunter
from analysis.steering.objectives import (
    OBJECTIVES,
    induction_copy_objective,
    ioi_objective,
    make_objective,
    text_objective,
)
from analysis.steering.text_metrics import distinct_n
from workbench.cli import main
from workbench.tasks import make_task

PROMPT = "When Mary and John went to the store , John gave a drink to"
NAMES = sorted(OBJECTIVES)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda m: make_objective("nope", m),
            f"objective: unknown objective 'nope'; choose from {NAMES}",
        ),
        (
            lambda m: make_objective("ioi_top1", m, k=3),
            "objective: ioi_top1 does not take option(s) ['k']; it takes ['n', 'seed']",
        ),
        (
            lambda m: make_objective("ioi_top1", m, n=-4),
            "n: objective option must be a whole number >= 0, got -4",
        ),
        (
            lambda m: make_objective("ioi_top1", m, n=True),
            "n: objective option must be a whole number >= 0, got True",
        ),
        (
            lambda m: make_objective("ioi_top1", m, n=2.5),
            "n: objective option must be a whole number >= 0, got 2.5",
        ),
        (
            lambda m: make_objective("ioi_top1", m, n=1),
            "n: need at least 2 prompts to split, got 1",
        ),
        (
            lambda m: ioi_objective(make_task("ioi", m, n=4), metric="vibes"),
            "metric: unknown IOI metric 'vibes'; choose from "
            "('logit_diff', 'accuracy', 'top1', 'logprob')",
        ),
        (
            lambda m: text_objective(m, metric="fluency"),
            "metric: unknown text metric 'fluency'; choose from "
            "('repetition', 'distinct_2', 'plain_nll')",
        ),
        (
            lambda m: text_objective(m, prompt_len=100, max_new_tokens=100),
            "prompt_len: need 2 <= prompt_len and prompt_len + max_new_tokens <= 128, "
            "got 100 + 100",
        ),
        (
            lambda m: induction_copy_objective(m, seq_len=8, prefix=8),
            "prefix: need 1 <= prefix < seq_len=8, got 8",
        ),
        (
            lambda m: HeadHunter(n_random=-1),
            "n_random: need a whole number >= 0, got -1",
        ),
        (
            lambda m: guided_generate(m, torch.zeros(2, 120, dtype=torch.long), None),
            "tokens: need [batch, pos] with pos + max_new_tokens <= 128, got (2, 120) + 16",
        ),
        (
            lambda m: guided_generate(
                m, torch.zeros(2, 4, dtype=torch.long), None, max_new_tokens=0
            ),
            "max_new_tokens: must be >= 1, got 0",
        ),
        (lambda m: distinct_n(torch.zeros(1, 3), n=0), "n: n-gram size must be >= 1, got 0"),
    ],
)
def test_objective_api_refuses_bad_input(zoo_model, call, message):
    with pytest.raises(ValueError) as err:
        call(zoo_model("tiny-ioi"))
    assert str(err.value) == message


SELECT, HELDOUT = torch.tensor([0, 1]), torch.tensor([2, 3])


@pytest.mark.parametrize(
    ("fit", "message"),
    [
        (
            lambda m, o: HeadHunter(alpha=0.1, rounds=1, candidates="L1H0").fit(
                m, "ioi_logprob", select=SELECT, heldout=HELDOUT, objective_options={"n": 4}
            ),
            "alpha: objective ioi_logprob needs alpha = 0 (tokens outside the plausibility "
            "set get log-probability -inf), got 0.1",
        ),
        (
            lambda m, o: HeadHunter().fit(m, 42, select=SELECT, heldout=HELDOUT),
            "objective: need an Objective, a GenerationObjective or a registered name, got int",
        ),
        (
            lambda m, o: HeadHunter().fit(
                m, o, select=SELECT, heldout=HELDOUT, objective_options={"n": 4}
            ),
            "objective_options: only for an objective given by name",
        ),
        (
            lambda m, o: HeadHunter().fit(m, o, select=SELECT, heldout=torch.tensor([2, 9])),
            "heldout: rows must be non-empty indices below 4",
        ),
        (
            lambda m, o: HeadHunter().fit(
                m, o, select=torch.tensor([], dtype=torch.long), heldout=HELDOUT
            ),
            "select: rows must be non-empty indices below 4",
        ),
        (
            lambda m, o: HeadHunter().fit(m, "ioi_nope", select=SELECT, heldout=HELDOUT),
            f"objective: unknown objective 'ioi_nope'; choose from {NAMES}",
        ),
    ],
)
def test_head_hunter_refuses_bad_objectives(zoo_model, fit, message):
    model = zoo_model("tiny-ioi")
    objective = ioi_objective(make_task("ioi", model, n=4, seed=1), metric="top1")
    with pytest.raises(ValueError) as err:
        fit(model, objective)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--objective", "nope"],
            f"--objective: unknown objective 'nope'; choose from {NAMES}",
        ),
        (
            ["--objective", "ioi_top1", "--objective-option", "k=3"],
            "--objective-option: ioi_top1 does not take ['k']; it takes ['n', 'seed']",
        ),
        (
            ["--objective", "ioi_top1", "--objective-option", "n"],
            "--objective-option: expected KEY=INT, got 'n'",
        ),
        (
            ["--objective", "ioi_top1", "--objective-option", "n=lots"],
            "--objective-option: n needs a whole number, got 'lots'",
        ),
        (
            ["--objective", "ioi_top1", "--rounds", "0"],
            "--rounds: must be >= 1, got 0",
        ),
        (
            ["--heads", "L1H0", "--objective", "ioi_top1"],
            "--heads/--objective: give one of them, not both",
        ),
        ([], "--heads/--objective: give the heads to perturb or an objective"),
        (
            ["--heads", "L1H0", "--objective-option", "n=4"],
            "--objective-option: only with --objective",
        ),
        (
            ["--objective", "ioi_top1", "--objective-option", "n=1"],
            "n: need at least 2 prompts to split, got 1",
        ),
    ],
)
def test_guide_objective_cli_exits_2_with_one_line(capsys, extra, message):
    capsys.readouterr()
    code = main(["guide", "tiny-ioi", PROMPT, *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert err.splitlines() == [f"workbench: error: {message}"]
