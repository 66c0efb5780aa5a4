"""Estimate how many bytes of memory a cached dashboard result holds.

`estimate_bytes(value)` walks the value (dataclasses, dicts, lists, tuples, sets, objects'
attributes) and adds up what it finds: torch tensors by the bytes of their storage (a view
pins its whole storage), numpy arrays by `nbytes` (of their base when they are views),
pandas frames by `memory_usage(deep=True)`, plotly figures through their plotly JSON dict,
strings and scalars by `sys.getsizeof`. Each object and each tensor storage is counted once.

`Model` objects and `torch.nn.Module`s count as 0 (their weights belong to the model cache in
`workbench.ui.state`); their ids are returned so the model cache can drop results that pin a
model it evicts. The estimate errs high for Python containers (every element's object is
counted, even shared small ints) and ignores allocator overhead.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from workbench.model import Model

_SCALARS = frozenset({int, float, bool, complex})
_OPAQUE = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
)


def estimate_bytes(value: Any) -> tuple[int, frozenset[int]]:
    """(estimated bytes held by `value`, ids of the `Model` objects it references)."""
    seen: set[int] = set()
    storages: set[int] = set()
    models: set[int] = set()
    total = 0
    stack = [value]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, _OPAQUE):
            total += sys.getsizeof(obj)  # code and namespaces, not data
        elif isinstance(obj, Model):
            models.add(id(obj))
        elif isinstance(obj, torch.nn.Module):
            continue
        elif isinstance(obj, torch.Tensor):
            total += _tensor_bytes(obj, storages)
        elif isinstance(obj, np.ndarray):
            base = obj.base if isinstance(obj.base, np.ndarray) else obj
            if id(base) not in storages:
                storages.add(id(base))
                total += int(base.nbytes)
                if base.dtype == object:
                    stack.extend(base.ravel().tolist())
        elif isinstance(obj, (str, bytes, bytearray, int, float, complex, bool)) or obj is None:
            total += sys.getsizeof(obj)
        elif isinstance(obj, dict):
            total += (
                sys.getsizeof(obj) + _scalars(obj.keys(), stack) + _scalars(obj.values(), stack)
            )
        elif isinstance(obj, (list, tuple, set, frozenset)):
            total += sys.getsizeof(obj) + _scalars(obj, stack)
        elif _is_pandas(obj):
            total += int(np.sum(obj.memory_usage(deep=True)))
        elif _is_plotly_figure(obj):
            stack.append(obj.to_plotly_json())
        else:
            total += sys.getsizeof(obj)
            stack.extend(_attributes(obj))
    return total, frozenset(models)


def _scalars(items: Iterable[Any], stack: list[Any]) -> int:
    """Bytes of the numbers among `items` (each counted, shared or not: a fast upper bound for
    long lists of floats), pushing every other item onto `stack`."""
    total = 0
    for item in items:
        if type(item) in _SCALARS:
            total += sys.getsizeof(item)
        else:
            stack.append(item)
    return total


def _tensor_bytes(tensor: torch.Tensor, storages: set[int]) -> int:
    if tensor.layout != torch.strided or tensor.device.type == "meta":
        return tensor.element_size() * tensor.nelement()
    storage = tensor.untyped_storage()
    key = storage.data_ptr() or id(tensor)
    if key in storages:
        return 0
    storages.add(key)
    return int(storage.nbytes())


def _is_pandas(obj: Any) -> bool:
    return type(obj).__module__.startswith("pandas") and hasattr(obj, "memory_usage")


def _is_plotly_figure(obj: Any) -> bool:
    return type(obj).__module__.startswith("plotly") and hasattr(obj, "to_plotly_json")


def _attributes(obj: Any) -> list[Any]:
    """The values an arbitrary object holds: dataclass fields, `__dict__`, `__slots__`."""
    found: list[Any] = []
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        found += [getattr(obj, f.name, None) for f in dataclasses.fields(obj)]
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        found += list(vars(obj).values())
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if isinstance(slot, str) and hasattr(obj, slot):
                found.append(getattr(obj, slot))
    return found


__all__ = ["estimate_bytes"]
