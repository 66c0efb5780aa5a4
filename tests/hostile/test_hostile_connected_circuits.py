"""Hostile input to connected pruning, the smallest-faithful-circuit search and the ACDC tau
sweep (issue 14, items 3 and 5): `ValueError` naming the argument from the API, exit 2 with
exactly one stderr line from `workbench circuit --target-faithfulness` (checked before the
model loads). The CLI cases run `workbench.cli.main` in-process."""

from __future__ import annotations

import pytest
import torch

from circuits import acdc_tau_sweep
from circuits.circuit import Circuit
from circuits.graph import Graph
from workbench.cli import main

GRAPH = Graph("toy", 2, 4, 4, True, True, None)
CIRCUIT = Circuit.from_scores(
    GRAPH, task="toy", method="hand", scores=torch.linspace(-1, 1, GRAPH.n_edges)
)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"top_n": -1}, "top_n: -1 is outside 0..110"),
        ({"top_n": 111}, "top_n: 111 is outside 0..110"),
        ({"threshold": -0.5}, "threshold: must be >= 0, got -0.5"),
        ({"top_n": 3, "threshold": 0.5}, "prune: give exactly one of top_n or threshold"),
        ({}, "prune: give exactly one of top_n or threshold"),
    ],
)
@pytest.mark.parametrize("connected", [True, False])
def test_prune_refuses_bad_sizes_connected_or_not(kwargs, message, connected):
    with pytest.raises(ValueError) as err:
        CIRCUIT.prune(**kwargs, connected=connected)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "taus",
    [[], [0.0], [0.1, -0.1], [float("nan")], [float("inf")], ["high"], None],
    ids=["empty", "zero", "negative", "nan", "inf", "text", "none"],
)
def test_acdc_sweep_refuses_bad_taus_before_running(zoo_model, taus):
    from workbench.tasks import make_task

    model = zoo_model("tiny-ioi")
    task = make_task("ioi", model, n=2, seed=0)
    with pytest.raises(ValueError, match=r"^taus: need a (non-empty )?list of"):
        acdc_tau_sweep(model, task, taus, distance="metric")


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("0", "workbench: error: --target-faithfulness: need a number in (0, 1], got 0.0"),
        ("1.5", "workbench: error: --target-faithfulness: need a number in (0, 1], got 1.5"),
        ("-1", "workbench: error: --target-faithfulness: need a number in (0, 1], got -1.0"),
        ("nan", "workbench: error: --target-faithfulness: need a number in (0, 1], got nan"),
        ("inf", "workbench: error: --target-faithfulness: need a number in (0, 1], got inf"),
        ("most", "workbench: error: argument --target-faithfulness: invalid float value: 'most'"),
    ],
)
def test_cli_target_faithfulness_out_of_range_exits_2_with_one_line(capsys, value, line):
    capsys.readouterr()
    argv = ["circuit", "tiny-ioi", "ioi", "--method", "eap", "--target-faithfulness", value]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.splitlines() == [line]
