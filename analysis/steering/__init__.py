"""Steering with attention heads: perturb chosen heads, guide decoding, search for the heads.

- `HeadPerturbation` / `perturbed`: soft edits of chosen heads' patterns (or outputs), applied
  through a context manager (`head_perturbation`);
- `guide(...) -> GuidanceResult`: head-perturbation guided decoding; `guided_logits` and
  `guided_generate` for batches (`guidance`);
- `HeadHunter`: greedy search for the heads whose perturbation makes an objective measured on
  the GUIDED output best, with `split_rows` for the search / held-out split (`head_hunter`);
  its `HeadSearchResult` (`head_search_result`) holds the held-out scores and their bootstrap
  intervals, and `heldout_comparison` / `comparison_figure` (`head_search_comparison`) lay out
  HeadHunter against no guidance, layer-level guidance and random heads with units;
- objectives (`objectives`): `Objective` (scores of guided logits), `GenerationObjective`
  (scores of greedy guided generations), the registry `OBJECTIVES` / `make_objective` /
  `register_objective` / `ObjectiveSpec`, and the builders (`ioi_objective`,
  `induction_copy_objective`, `text_objective`, `loss_objective`);
- text metrics (`text_metrics`): `seq_repetition`, `distinct_n`, `plain_nll`.

`ObjectiveSpec` here is the HeadHunter objective spec; the attacks have their own
(`analysis.attacks.ObjectiveSpec`), so the package `analysis` re-exports neither.
"""

from analysis.steering.guidance import GuidanceResult, guide, guided_generate, guided_logits
from analysis.steering.head_hunter import HeadHunter, split_rows
from analysis.steering.head_perturbation import HeadPerturbation, perturbed
from analysis.steering.head_search_comparison import comparison_figure, heldout_comparison
from analysis.steering.head_search_result import HeadSearchResult, bootstrap_mean_interval
from analysis.steering.objectives import (
    OBJECTIVES,
    TEXT_METRICS,
    GenerationObjective,
    Objective,
    ObjectiveSpec,
    induction_copy_objective,
    ioi_objective,
    loss_objective,
    make_objective,
    register_objective,
    text_objective,
)
from analysis.steering.text_metrics import distinct_n, plain_nll, seq_repetition

__all__ = [
    "OBJECTIVES",
    "TEXT_METRICS",
    "GenerationObjective",
    "GuidanceResult",
    "HeadHunter",
    "HeadPerturbation",
    "HeadSearchResult",
    "Objective",
    "ObjectiveSpec",
    "bootstrap_mean_interval",
    "comparison_figure",
    "distinct_n",
    "guide",
    "guided_generate",
    "guided_logits",
    "heldout_comparison",
    "induction_copy_objective",
    "ioi_objective",
    "loss_objective",
    "make_objective",
    "perturbed",
    "plain_nll",
    "register_objective",
    "seq_repetition",
    "split_rows",
    "text_objective",
]
