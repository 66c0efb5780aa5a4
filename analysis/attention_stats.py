"""Deprecated alias of `analysis.statistics.attention_stats` (kept one release).

Importing it warns (`DeprecationWarning`) and re-exports the module's public names. Caveat:
Python binds a loaded submodule as an attribute of its package, which would shadow the function
`analysis.attention_stats`; so this module is made callable (it forwards to the function), and
`analysis.attention_stats(model, prompts)` keeps working after an old-style import.
"""

import sys
import types
import warnings

from analysis.statistics.attention_stats import *  # noqa: F403
from analysis.statistics.attention_stats import attention_stats as _attention_stats


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return _attention_stats(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

warnings.warn(
    "analysis.attention_stats is deprecated as a module; use analysis.attention_stats (the "
    "function) or analysis.statistics.attention_stats",
    DeprecationWarning,
    stacklevel=2,
)
