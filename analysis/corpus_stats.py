"""Deprecated alias of `analysis.statistics.corpus_stats` (renamed in the analysis layout refactor; kept one release).

Importing it warns (`DeprecationWarning`) and re-exports `analysis.statistics.corpus_stats`'s public names.
"""

import warnings

from analysis.statistics.corpus_stats import *  # noqa: F403

warnings.warn(
    "analysis.corpus_stats is deprecated; import from analysis.statistics.corpus_stats",
    DeprecationWarning,
    stacklevel=2,
)
