"""Deprecated: the attention-pattern analysis and figure moved to `analysis.statistics`.

`workbench.ui.figures` re-exports them from `analysis.statistics.attention_pattern` for one
release and warns on import. Result types register when `analysis` and `circuits` are imported
(`import_result_modules` does exactly that, letting any import error raise).
"""

from __future__ import annotations

import warnings

from analysis.statistics.attention_pattern import (
    HeadPattern,
    attention_pattern,
    pattern_figure,
    token_labels,
    visible_token,
)

warnings.warn(
    "workbench.ui.figures is deprecated; use analysis.statistics.attention_pattern",
    DeprecationWarning,
    stacklevel=2,
)


def import_result_modules() -> None:
    """Register every stored result type by importing `analysis` and `circuits`."""
    import analysis  # noqa: F401 - its modules define result types
    import circuits  # noqa: F401


__all__ = [
    "HeadPattern",
    "attention_pattern",
    "import_result_modules",
    "pattern_figure",
    "token_labels",
    "visible_token",
]
