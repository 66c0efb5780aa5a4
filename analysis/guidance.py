"""Deprecated alias of `analysis.steering.guidance` (renamed in the analysis layout refactor; kept one release).

Importing it warns (`DeprecationWarning`) and re-exports `analysis.steering.guidance`'s public names.
"""

import warnings

from analysis.steering.guidance import *  # noqa: F403

warnings.warn(
    "analysis.guidance is deprecated; import from analysis.steering.guidance",
    DeprecationWarning,
    stacklevel=2,
)
