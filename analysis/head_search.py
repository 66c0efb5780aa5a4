"""Deprecated alias of `analysis.steering.head_hunter` (renamed in the analysis layout refactor; kept one release).

Importing it warns (`DeprecationWarning`) and re-exports `analysis.steering.head_hunter`'s public names.
"""

import warnings

from analysis.steering.head_hunter import *  # noqa: F403

warnings.warn(
    "analysis.head_search is deprecated; import from analysis.steering.head_hunter",
    DeprecationWarning,
    stacklevel=2,
)
