"""Analyses of attention heads, one module per analysis, each with one public entry point."""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> module; imported on first use, so `import analysis` stays light.
_EXPORTS = {
    "HeadStats": "analysis.head_stats",
    "qk_ov_svd": "analysis.head_svd",
    "HeadSVD": "analysis.head_svd",
    "decompose_score": "analysis.score_decomposition",
    "upstream_contributions": "analysis.score_decomposition",
    "firing_pairs": "analysis.score_decomposition",
    "ScoreDecomposition": "analysis.score_decomposition",
    "UpstreamContributions": "analysis.score_decomposition",
    "head_taxonomy": "analysis.taxonomy",
    "HeadTaxonomy": "analysis.taxonomy",
    "HeadPerturbation": "analysis.head_perturbation",
    "perturbed": "analysis.head_perturbation",
    "guide": "analysis.guidance",
    "GuidanceResult": "analysis.guidance",
    "HeadHunter": "analysis.head_search",
    "HeadSearchResult": "analysis.head_search",
    "TokenAttack": "analysis.attacks",
    "AttackResult": "analysis.attacks",
    "entropy_collapse_view": "analysis.entropy_collapse",
    "EntropyCollapse": "analysis.entropy_collapse",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*_EXPORTS, "attention_stats"])


# Imported eagerly: the function shares its module's name, and once `analysis.attention_stats`
# is imported the package attribute would be the submodule (module __getattr__ never runs).
from analysis.attention_stats import attention_stats as attention_stats  # noqa: E402
