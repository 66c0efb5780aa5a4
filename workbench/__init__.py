"""Attention Workbench: mechanistic interpretability for transformer attention.

The core package: `load_model` and `Model`, the bundled zoo, task datasets, result types and
the run store. The dashboard lives in `workbench.ui` and is never imported from here.
Names are imported lazily, so `import workbench.store` does not pay for torch.

Example:
    >>> import workbench
    >>> model = workbench.load_model("tiny-ioi")
    >>> model.to_str_tokens("When Mary and John went to the store")[:3]
    ['<bos>', 'When', 'Mary']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "load_model": "workbench.loading",
    "Model": "workbench.model",
    "ZOO": "workbench.zoo",
    "Head": "workbench.heads",
    "parse_heads": "workbench.heads",
    "zoo_names": "workbench.zoo",
    "make_task": "workbench.tasks",
    "Task": "workbench.tasks",
    "Result": "workbench.results",
    "RunStore": "workbench.store",
}

__all__ = [
    "Head",
    "RunStore",
    "Model",
    "Result",
    "Task",
    "ZOO",
    "load_model",
    "make_task",
    "parse_heads",
    "zoo_names",
]

if TYPE_CHECKING:
    from workbench.heads import Head, parse_heads
    from workbench.loading import load_model
    from workbench.model import Model
    from workbench.results import Result
    from workbench.store import RunStore
    from workbench.tasks import Task, make_task
    from workbench.zoo import ZOO, zoo_names


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
