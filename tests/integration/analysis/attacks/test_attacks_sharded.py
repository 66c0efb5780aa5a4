"""`TokenAttack.fit(..., executor=, prompts_per_shard=)`: prompt shards give the unsharded
results exactly, because every prompt draws from its own generator seeded by (seed, index)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from pandas.testing import assert_frame_equal

from analysis.attacks.token_attack import TokenAttack, prompt_seed
from workbench.executors import InProcessExecutor
from workbench.tasks import make_task

SETTINGS = {"objective": "flip", "heads": ((1, 0), (1, 2)), "steps": 3, "batch_size": 16, "seed": 5}


@pytest.fixture(scope="module")
def ioi(zoo_model):
    model = zoo_model("tiny-ioi")
    return model, make_task("ioi", model, n=5, seed=77)


def _assert_same(got: TokenAttack, expected: TokenAttack) -> None:
    assert_frame_equal(got.result_.prompts, expected.result_.prompts, check_exact=True)
    assert_frame_equal(got.result_.head_stats, expected.result_.head_stats, check_exact=True)
    assert got.result_.curves == expected.result_.curves
    assert len(got.final_tokens_) == len(expected.final_tokens_)
    for a, b in zip(got.final_tokens_, expected.final_tokens_, strict=True):
        assert torch.equal(a, b)


def test_prompt_shards_give_the_unsharded_attack_exactly(ioi):
    model, task = ioi
    plain = TokenAttack(**SETTINGS).fit(model, task)
    sharded = TokenAttack(**SETTINGS).fit(
        model, task, executor=InProcessExecutor(), prompts_per_shard=2
    )
    _assert_same(sharded, plain)
    assert list(sharded.result_.prompts["index"]) == list(range(5))


def test_a_prompt_gets_the_same_attack_in_any_subset(ioi):
    model, task = ioi
    plain = TokenAttack(**SETTINGS).fit(model, task)
    subset = TokenAttack(**SETTINGS).fit(model, task, rows=[3, 1], prompts_per_shard=1)
    expected = plain.result_.prompts.set_index("index").loc[[3, 1]].reset_index()
    assert_frame_equal(subset.result_.prompts, expected, check_exact=True)


def test_prompt_seeds_depend_on_seed_and_index():
    seeds = {prompt_seed(s, i) for s in range(3) for i in range(50)}
    assert len(seeds) == 150 and all(0 <= s < 2**63 for s in seeds)
    assert prompt_seed(1, 2) == prompt_seed(1, 2)


def test_bad_prompts_per_shard_raises(ioi):
    model, task = ioi
    with pytest.raises(ValueError, match="shard size"):
        TokenAttack(**SETTINGS).fit(model, task, prompts_per_shard=0)


def test_cli_rejects_a_bad_prompts_per_shard():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "attack", "tiny-ioi", "--per-shard", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "workbench: error: --per-shard: expected a positive integer, got 0"
    )
