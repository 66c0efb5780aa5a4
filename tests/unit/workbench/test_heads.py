"""`Head`: one notation (`L1H2`), parsing of every older spelling, and range checks."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from workbench.heads import Head, parse_heads


@pytest.mark.parametrize(
    "value",
    [
        "L1H2",
        "l1h2",
        " L1H2 ",
        "L 1 H 2",
        "1.2",
        "a1.2",
        "A1.2",
        (1, 2),
        [1, 2],
        {"layer": 1, "head": 2},
        Head(1, 2),
        (np.int64(1), torch.tensor(2)),
    ],
)
def test_every_spelling_parses_to_one_head(value):
    head = Head.parse(value)
    assert head == Head(1, 2) == (1, 2)
    assert str(head) == "L1H2"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is not a head"),
        ("L1", "is not a head"),
        ("H2", "is not a head"),
        ("L-1H2", "is not a head"),
        ("1.2.3", "is not a head"),
        ("m0", "is not a head"),
        ("x" * 500, "is not a head"),
        ((True, 0), "layer: expected a whole number, got True"),
        ((0, False), "head: expected a whole number, got False"),
        ((1.0, 2), "layer: expected a whole number, got 1.0"),
        ((-1, 2), "layer: expected a non-negative whole number, got -1"),
        ((1, -2), "head: expected a non-negative whole number, got -2"),
        ((1, 2, 3), "is not a head"),
        ({"layer": 1}, "expected keys layer and head"),
        (None, "is not a head"),
        (12, "is not a head"),
    ],
)
def test_what_is_not_a_head_is_refused_by_name(value, message):
    with pytest.raises(ValueError, match=message):
        Head.parse(value)


def test_heads_sort_hash_and_serialise_like_pairs():
    heads = parse_heads("L1H0, L0H3 0.1")
    assert sorted(heads) == [(0, 1), (0, 3), (1, 0)]
    assert {Head(0, 1): "x"}[(0, 1)] == "x"
    assert json.loads(json.dumps(heads)) == [[1, 0], [0, 3], [0, 1]]


@pytest.mark.parametrize("spec", ["", " , ", []])
def test_an_empty_head_list_is_refused(spec):
    with pytest.raises(ValueError, match="no heads given"):
        parse_heads(spec)


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (Head(2, 0), "layer: 2 is out of range (2 layers: 0-1)"),
        (Head(0, 4), "head: 4 is out of range (4 heads: 0-3)"),
    ],
)
def test_check_refuses_heads_the_model_lacks(head, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        head.check(2, 4)


def test_model_check_head(zoo_model):
    model = zoo_model("tiny-ioi")
    assert model.check_head("L1H3") == model.check_head(1, 3) == Head(1, 3)
    with pytest.raises(ValueError, match="layer: expected a whole number, got True"):
        model.check_head(True, 0)
    with pytest.raises(
        ValueError, match=re.escape("head: 9 is out of range for tiny-ioi (4 heads")
    ):
        model.check_head("L0H9")
