"""Deprecated alias of `analysis.attacks.objectives` (renamed in the analysis layout refactor; kept one release).

Importing it warns (`DeprecationWarning`) and re-exports `analysis.attacks.objectives`'s public names.
"""

import warnings

from analysis.attacks.objectives import *  # noqa: F403

warnings.warn(
    "analysis.attack_objectives is deprecated; import from analysis.attacks.objectives",
    DeprecationWarning,
    stacklevel=2,
)
