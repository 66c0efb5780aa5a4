"""`HeadHunter.fit(..., executor=, candidates_per_shard=)`: candidate shards give the unsharded
search exactly, and the shard function survives the pickling Ray applies to it."""

from __future__ import annotations

import functools

import pytest
import torch
from pandas.testing import assert_frame_equal

from analysis.steering.head_hunter import HeadHunter, candidate_scores, ioi_objective, split_rows
from workbench.executors import InProcessExecutor, make_shards
from workbench.tasks import make_task


@pytest.fixture(scope="module")
def search(zoo_model):
    model = zoo_model("tiny-ioi")
    task = make_task("ioi", model, n=12, seed=11)
    select, heldout = split_rows(task.n_prompts, seed=0)
    return model, ioi_objective(task), select, heldout


def test_candidate_shards_give_the_unsharded_search_exactly(search):
    model, objective, select, heldout = search
    plain = HeadHunter(rounds=2).fit(model, objective, select=select, heldout=heldout)
    sharded = HeadHunter(rounds=2).fit(
        model,
        objective,
        select=select,
        heldout=heldout,
        executor=InProcessExecutor(),
        candidates_per_shard=3,
    )
    assert sharded.heads_ == plain.heads_
    assert_frame_equal(sharded.history_, plain.history_, check_exact=True)
    assert sharded.result_.comparison == plain.result_.comparison
    assert len(plain.history_) >= model.n_layers * model.n_heads


def test_the_shard_function_pickles_for_ray(search):
    cloudpickle = pytest.importorskip("cloudpickle")  # what Ray pickles with; not `ray.` here:
    # importing Ray early would fix its auth mode before the cluster fixture sets it
    model, objective, select, _ = search
    shard_fn = functools.partial(
        candidate_scores, hunter=HeadHunter(), objective=objective, select=select, chosen=((1, 2),)
    )
    (shard,) = make_shards([[0, 1], [1, 3]], size=2, key="pickle")
    again = cloudpickle.loads(cloudpickle.dumps(shard_fn))
    assert_frame_equal(again(model, shard), shard_fn(model, shard), check_exact=True)
    assert torch.equal(again.keywords["select"], select)


def test_bad_candidates_per_shard_raises(search):
    model, objective, select, heldout = search
    with pytest.raises(ValueError, match="candidates_per_shard: must be >= 1"):
        HeadHunter().fit(model, objective, select=select, heldout=heldout, candidates_per_shard=0)
