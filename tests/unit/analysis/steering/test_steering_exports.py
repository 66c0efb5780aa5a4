"""`analysis.steering` exports the HeadHunter objective registry, the text metrics and the
search result from the modules that define them; `analysis` re-exports the same objects; the
deprecated `analysis.head_search` path still gives the same search classes."""

from __future__ import annotations

import importlib
import sys

import pytest

import analysis
import analysis.steering as steering

DEFINED_IN = {
    "OBJECTIVES": "objectives",
    "ObjectiveSpec": "objectives",
    "Objective": "objectives",
    "GenerationObjective": "objectives",
    "make_objective": "objectives",
    "register_objective": "objectives",
    "text_objective": "objectives",
    "induction_copy_objective": "objectives",
    "ioi_objective": "objectives",
    "seq_repetition": "text_metrics",
    "distinct_n": "text_metrics",
    "plain_nll": "text_metrics",
    "HeadSearchResult": "head_search_result",
    "bootstrap_mean_interval": "head_search_result",
    "heldout_comparison": "head_search_comparison",
    "split_rows": "head_hunter",
    "guided_generate": "guidance",
}


@pytest.mark.parametrize(("name", "module"), sorted(DEFINED_IN.items()))
def test_steering_exports_the_defining_modules_object(name, module):
    assert name in steering.__all__
    defining = importlib.import_module(f"analysis.steering.{module}")
    assert getattr(steering, name) is getattr(defining, name)


def test_the_curated_api_reexports_the_same_steering_objects():
    shared = [name for name in analysis.__all__ if name in steering.__all__]
    assert {"HeadHunter", "HeadSearchResult", "guide"} <= set(shared)
    for name in shared:
        assert getattr(analysis, name) is getattr(steering, name), name
    # the attacks and the head search each have an ObjectiveSpec: the curated API has neither
    assert "ObjectiveSpec" not in analysis.__all__


def test_the_registry_is_shared_not_copied():
    assert steering.OBJECTIVES is importlib.import_module("analysis.steering.objectives").OBJECTIVES
    assert "ioi_top1" in steering.OBJECTIVES and steering.OBJECTIVES["ioi_logit_diff"].inflated


def test_deprecated_head_search_path_gives_the_same_search_objects(monkeypatch):
    monkeypatch.delitem(sys.modules, "analysis.head_search", raising=False)
    with pytest.warns(DeprecationWarning, match="analysis.head_search is deprecated"):
        old = importlib.import_module("analysis.head_search")
    for name in ("HeadHunter", "HeadSearchResult", "split_rows", "ioi_objective"):
        assert getattr(old, name) is getattr(steering, name), name
