"""Steering with attention heads: perturb chosen heads, guide decoding, search for the heads.

- `HeadPerturbation` / `perturbed`: soft edits of chosen heads' patterns (or outputs), applied
  through a context manager;
- `guide(...) -> GuidanceResult`: head-perturbation guided decoding;
- `HeadHunter`: greedy search for the heads whose perturbation moves an objective most.
"""

from analysis.steering.guidance import GuidanceResult, guide
from analysis.steering.head_hunter import HeadHunter, HeadSearchResult
from analysis.steering.head_perturbation import HeadPerturbation, perturbed

__all__ = [
    "GuidanceResult",
    "HeadHunter",
    "HeadPerturbation",
    "HeadSearchResult",
    "guide",
    "perturbed",
]
