"""The old module paths of the analysis layout refactor still import, warn once, and re-export.

Each alias is imported afresh (removed from `sys.modules` first, restored afterwards), so the
warning is observed even when another test imported the alias already.
"""

from __future__ import annotations

import importlib
import re
import sys

import pytest

ALIASES = [
    ("analysis.attention_stats", "analysis.statistics.attention_stats", "attention_stats"),
    ("analysis.corpus_stats", "analysis.statistics.corpus_stats", "corpus_stats"),
    ("analysis.head_search", "analysis.steering.head_hunter", "HeadHunter"),
    ("analysis.head_perturbation", "analysis.steering.head_perturbation", "HeadPerturbation"),
    ("analysis.guidance", "analysis.steering.guidance", "guide"),
    ("analysis.attack_objectives", "analysis.attacks.objectives", "ObjectiveSpec"),
    ("analysis.stats_attention", "workbench.adapters.statistics_attention", "statistics_attention"),
    ("workbench.ui.figures", "analysis.statistics.attention_pattern", "attention_pattern"),
]


@pytest.mark.parametrize(("old", "new", "name"), ALIASES)
def test_old_module_path_warns_and_reexports(old, new, name, monkeypatch):
    importlib.import_module(new)
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=re.escape(old) + " is deprecated"):
        alias = importlib.import_module(old)
    assert getattr(alias, name) is getattr(importlib.import_module(new), name)


def test_attention_stats_stays_callable_after_the_old_module_import(monkeypatch):
    import analysis

    monkeypatch.delitem(sys.modules, "analysis.attention_stats", raising=False)
    with pytest.warns(DeprecationWarning):
        importlib.import_module("analysis.attention_stats")
    with pytest.raises(ValueError, match="prompts"):
        analysis.attention_stats(None, [])  # forwarded to the function, which checks its input


def test_public_names_of_the_packages_resolve():
    for package in (
        "analysis",
        "analysis.statistics",
        "analysis.anatomy",
        "analysis.steering",
        "analysis.attacks",
        "circuits",
        "kernels",
        "workbench",
        "workbench.adapters",
        "workbench.executors",
    ):
        module = importlib.import_module(package)
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert missing == [], package
