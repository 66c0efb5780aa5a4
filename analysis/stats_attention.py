"""Deprecated alias of `workbench.adapters.statistics_attention` (renamed in the analysis layout refactor; kept one release).

Importing it warns (`DeprecationWarning`) and re-exports `workbench.adapters.statistics_attention`'s public names.
"""

import warnings

from workbench.adapters.statistics_attention import *  # noqa: F403

warnings.warn(
    "analysis.stats_attention is deprecated; import from workbench.adapters.statistics_attention",
    DeprecationWarning,
    stacklevel=2,
)
