"""Deprecated alias of `analysis.steering.head_perturbation` (renamed in the analysis layout refactor; kept one release).

Importing it warns (`DeprecationWarning`) and re-exports `analysis.steering.head_perturbation`'s public names.
"""

import warnings

from analysis.steering.head_perturbation import *  # noqa: F403

warnings.warn(
    "analysis.head_perturbation is deprecated; import from analysis.steering.head_perturbation",
    DeprecationWarning,
    stacklevel=2,
)
