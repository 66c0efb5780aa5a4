"""Analyses of attention heads, grouped by subject; each analysis has one public entry point.

- `analysis.statistics`: per-query attention statistics (`attention_stats`, `corpus_stats`)
  and one head's pattern (`attention_pattern`);
- `analysis.anatomy`: head SVD, score decomposition, head taxonomy, entropy collapse;
- `analysis.steering`: head perturbation, guided decoding, head search (`HeadHunter`, scored
  by objectives measured on the guided output: its registry and text metrics are exported there);
- `analysis.attacks`: token attacks (`TokenAttack`) and their objectives;
- `analysis.training_dynamics`: entropy against sigma-Reparam's bound and the loss-plateau view
  over the zoo's training snapshots (`entropy_bound`, `loss_plateau`);
- `analysis.logit_lens`: every layer's residual stream read through the final norm and
  unembedding (`logit_lens`).

Convention (`workbench.results`, docs/architecture.md): a one-shot analysis is a function
`fn(model, ..., *, options) -> XResult`; a learned or stateful tool (`HeadHunter`,
`TokenAttack`) is an estimator with keyword-only `__init__`, `fit(...) -> self`, learned
attributes ending in `_` and its outcome in `result_`. Every result carries `kind`,
`plot_kinds` and `model_name`.

The curated public API is re-exported here (`__all__`). The model adapters these analyses use
(statistics attention, per-family weights) live in `workbench.adapters`.
"""

from analysis.anatomy import (
    EntropyCollapse,
    HeadSVD,
    HeadTaxonomy,
    ScoreDecomposition,
    UpstreamContributions,
    decompose_score,
    entropy_collapse,
    entropy_collapse_view,
    firing_pairs,
    head_taxonomy,
    qk_ov_svd,
    upstream_contributions,
)
from analysis.attacks import AttackResult, TokenAttack
from analysis.logit_lens import LogitLens, logit_lens
from analysis.statistics import (
    CorpusStats,
    HeadPattern,
    HeadStats,
    attention_pattern,
    attention_stats,
)
from analysis.steering import (
    GuidanceResult,
    HeadHunter,
    HeadPerturbation,
    HeadSearchResult,
    guide,
    perturbed,
)
from analysis.training_dynamics import EntropyBound, LossPlateau, entropy_bound, loss_plateau

__all__ = [
    "AttackResult",
    "CorpusStats",
    "EntropyBound",
    "EntropyCollapse",
    "GuidanceResult",
    "HeadHunter",
    "HeadPattern",
    "HeadPerturbation",
    "HeadSVD",
    "HeadSearchResult",
    "HeadStats",
    "HeadTaxonomy",
    "LogitLens",
    "LossPlateau",
    "ScoreDecomposition",
    "TokenAttack",
    "UpstreamContributions",
    "attention_pattern",
    "attention_stats",
    "decompose_score",
    "entropy_bound",
    "entropy_collapse",
    "entropy_collapse_view",
    "firing_pairs",
    "guide",
    "head_taxonomy",
    "logit_lens",
    "loss_plateau",
    "perturbed",
    "qk_ov_svd",
    "upstream_contributions",
]
