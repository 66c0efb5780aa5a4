"""Hostile heads (issue 17 item 2): one `Head` check behind every API, the CLI and the dashboard.

Bools, floats, negative numbers, heads the model lacks and text that is not a head are refused
with the same `ValueError` wherever a head comes in: `qk_ov_svd`, `decompose_score`,
`firing_pairs`, `attention_pattern`, `HeadStats.plot`, `HeadPerturbation`, `HeadHunter`
candidates, attack objectives; `workbench guide/attack --heads` exit 2 with that one line; the
guidance page answers with its alert.
"""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
import torch

from analysis.anatomy.head_svd import qk_ov_svd
from analysis.anatomy.score_decomposition import decompose_score, firing_pairs
from analysis.attacks.objectives import ObjectiveSpec
from analysis.attacks.token_attack import TokenAttack
from analysis.statistics.attention_pattern import attention_pattern
from analysis.statistics.attention_stats import attention_stats
from analysis.steering.head_hunter import HeadHunter
from analysis.steering.head_perturbation import HeadPerturbation
from workbench.cli import main
from workbench.ui.callback_client import post_callback

PROMPT = "When Mary and John went to the store, John gave a drink to"
RANGE_L = "layer: {} is out of range for tiny-ioi (2 layers: 0-1)"
RANGE_H = "head: {} is out of range for tiny-ioi (4 heads: 0-3)"
NOT_A_HEAD = "head: {!r} is not a head; write it as L<layer>H<head>"


@pytest.fixture(scope="module")
def stats(zoo_model):
    return attention_stats(zoo_model("tiny-ioi"), [PROMPT])


API_CASES = [
    # qk_ov_svd / decompose_score / firing_pairs (the head-anatomy analyses)
    (lambda m: qk_ov_svd(m, True, 0), "layer: expected a whole number, got True"),
    (lambda m: qk_ov_svd(m, 0, 1.0), "head: expected a whole number, got 1.0"),
    (lambda m: qk_ov_svd(m, -1, 0), "layer: expected a non-negative whole number, got -1"),
    (
        lambda m: qk_ov_svd(m, torch.tensor(True), 0),
        "layer: expected a whole number, got tensor(True)",
    ),
    (lambda m: qk_ov_svd(m, 2, 0), RANGE_L.format(2)),
    (lambda m: qk_ov_svd(m, "L1H2", 0), "layer: expected a whole number, got 'L1H2'"),
    (
        lambda m: decompose_score(m, PROMPT, 0, False, 3, 1),
        "head: expected a whole number, got False",
    ),
    (lambda m: decompose_score(m, PROMPT, 0, 4, 3, 1), RANGE_H.format(4)),
    (
        lambda m: firing_pairs(m, PROMPT, np.float64(1.0), 0),
        "layer: expected a whole number, got np.float64(1.0)",
    ),
    # attention_pattern (dashboard and `workbench figure pattern`)
    (lambda m: attention_pattern(m, PROMPT, True, 0), "layer: expected a whole number, got True"),
    (lambda m: attention_pattern(m, PROMPT, 0, 2.0), "head: expected a whole number, got 2.0"),
    (lambda m: attention_pattern(m, PROMPT, 0, np.int64(4)), RANGE_H.format(4)),
    (lambda m: attention_pattern(m, PROMPT, 0, None), "head: expected a whole number, got None"),
    # HeadPerturbation: construction parses, .check(model) checks the range
    (lambda m: HeadPerturbation(heads=[(True, 0)]), "layer: expected a whole number, got True"),
    (lambda m: HeadPerturbation(heads=[(0.5, 1)]), "layer: expected a whole number, got 0.5"),
    (lambda m: HeadPerturbation(heads="L1H"), NOT_A_HEAD.format("L1H")),
    (lambda m: HeadPerturbation(heads="L1H0; L1H2"), NOT_A_HEAD.format("L1H0;")),
    (
        lambda m: HeadPerturbation(heads=" , "),
        "heads: no heads given; name at least one, e.g. L1H2",
    ),
    (
        lambda m: HeadPerturbation(heads=[(0, 0, 0)]),
        "head: (0, 0, 0) is not a head; write it as L<layer>H<head>",
    ),
    (lambda m: HeadPerturbation(heads="L9H0").check(m), RANGE_L.format(9)),
    (lambda m: HeadPerturbation(heads="1.7").check(m), RANGE_H.format(7)),
    # HeadHunter candidates, attack objectives and TokenAttack
    (
        lambda m: HeadHunter(candidates=[(0, -1)]),
        "head: expected a non-negative whole number, got -1",
    ),
    (lambda m: HeadHunter(candidates="L1H0 x"), NOT_A_HEAD.format("x")),
    (
        lambda m: ObjectiveSpec(name="dissipation", heads=[(False, 1)]),
        "layer: expected a whole number, got False",
    ),
    (lambda m: ObjectiveSpec(heads="a1.2.3"), NOT_A_HEAD.format("a1.2.3")),
    (lambda m: ObjectiveSpec(heads="L2H0").check(m), RANGE_L.format(2)),
    (lambda m: TokenAttack(heads=[(1.0, 0)]), "layer: expected a whole number, got 1.0"),
    (
        lambda m: TokenAttack(heads=[{"layer": 1}]),
        "head: expected keys layer and head, got ['layer']",
    ),
]


@pytest.mark.parametrize(("call", "message"), API_CASES)
def test_every_api_refuses_a_bad_head_with_the_same_message(zoo_model, call, message):
    with pytest.raises(ValueError) as err:
        call(zoo_model("tiny-ioi"))
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "query", "layer": True, "head": 0}, "layer: expected a whole number, got True"),
        ({"kind": "query", "layer": 0, "head": 9}, RANGE_H.format(9)),
        (
            {"kind": "distance", "layer": 0, "head": -1},
            "head: expected a non-negative whole number, got -1",
        ),
        ({"kind": "distance", "layer": 1.0, "head": 0}, "layer: expected a whole number, got 1.0"),
    ],
)
def test_head_stats_plot_refuses_a_bad_head(stats, kwargs, message):
    with pytest.raises(ValueError) as err:
        stats.plot(**kwargs)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["guide", "tiny-ioi", PROMPT, "--heads", "L1H0,L9H0"], RANGE_L.format(9)),
        (["guide", "tiny-ioi", PROMPT, "--heads", "L1X0"], NOT_A_HEAD.format("L1X0")),
        (
            ["guide", "tiny-ioi", PROMPT, "--heads", ","],
            "heads: no heads given; name at least one, e.g. L1H2",
        ),
        (["attack", "tiny-ioi", "--heads", "1.-1"], NOT_A_HEAD.format("1.-1")),
        (["attack", "tiny-ioi", "--heads", "L1H2,True"], NOT_A_HEAD.format("True")),
    ],
)
def test_cli_heads_exit_2_with_one_line(capsys, argv, message):
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert err.splitlines() == [f"workbench: error: {message}"]


@pytest.mark.parametrize(
    ("heads", "message"),
    [
        (["L0H9"], RANGE_H.format(9)),
        (["L1"], "head: 'L1' is not a head"),
        ([True], "head: 'True' is not a head"),
    ],
)
def test_guidance_page_answers_a_bad_head_with_its_alert(app, heads, message):
    outputs = [
        "guidance-plain.children",
        "guidance-guided.children",
        "guidance-shift.figure",
        "guidance-error.children",
    ]
    state = {
        "guidance-heads.value": heads,
        "guidance-method.value": "identity",
        "guidance-u.value": 1.0,
        "guidance-w.value": 1.5,
        "guidance-tokens.value": 2,
        "guidance-query.data": {"model": "tiny-ioi", "prompt": PROMPT},
        "session-id.data": uuid.uuid4().hex,
    }
    client = app.server.test_client()
    answer = post_callback(app, client, outputs, {"guidance-generate.n_clicks": 1}, state)
    assert message in json.dumps(answer["response"]["guidance-error"]["children"])  # HTTP 200
