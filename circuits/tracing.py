"""`trace(model, task, method=..., **options) -> Circuit`: the one entry point.

Dispatches to the per-method modules:

| method       | function                                   | module                 |
|--------------|--------------------------------------------|------------------------|
| activation   | `activation_patching` (ablation, per_position) | circuits.patching  |
| path         | `path_patching` (per edge)                 | circuits.patching      |
| exhaustive   | `exhaustive_patching` (reference)          | circuits.ground_truth  |
| eap          | `eap`                                      | circuits.attribution   |
| eap-ig       | `eap_ig` (ig_steps)                        | circuits.attribution   |
| acdc         | `acdc` (threshold, distance)               | circuits.acdc          |
| svd          | `svd_tracing`                              | circuits.svd_tracing   |
| atp*         | `atp_star` (qk_fix, grad_drop; edge variant, paper's node scores in config) | circuits.atp_star |

`top_n=` / `prune_threshold=` prune the result (`Circuit.prune`, connected unless
`connected=False`); other options go to the method.
Unknown methods or options raise `ValueError` naming them.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from circuits.circuit import Circuit
    from workbench.model import Model
    from workbench.tasks import Task

METHODS = {
    "activation": ("circuits.patching", "activation_patching"),
    "path": ("circuits.patching", "path_patching"),
    "exhaustive": ("circuits.ground_truth", "exhaustive_patching"),
    "eap": ("circuits.attribution", "eap"),
    "eap-ig": ("circuits.attribution", "eap_ig"),
    "acdc": ("circuits.acdc", "acdc"),
    "svd": ("circuits.svd_tracing", "svd_tracing"),
    "atp*": ("circuits.atp_star", "atp_star"),
}


def method_function(method: str):
    """The function implementing `method` (ValueError for an unknown one)."""
    if method not in METHODS:
        raise ValueError(f"method: unknown method {method!r}; choose from {sorted(METHODS)}")
    module, name = METHODS[method]
    return getattr(importlib.import_module(module), name)


def trace(
    model: Model,
    task: Task,
    *,
    method: str = "eap-ig",
    top_n: int | None = None,
    prune_threshold: float | None = None,
    connected: bool = True,
    **options: Any,
) -> Circuit:
    """Trace `task`'s circuit in `model` with `method`; optionally prune to `top_n` edges or
    to |score| >= `prune_threshold` (`connected`: see `Circuit.prune`)."""
    fn = method_function(method)
    params = inspect.signature(fn).parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    unknown = [k for k in options if k not in params and not accepts_any]
    if unknown:
        raise ValueError(f"options: {unknown} not accepted by method {method!r}")
    circuit = fn(model, task, **options)
    if top_n is not None or prune_threshold is not None:
        circuit = circuit.prune(top_n=top_n, threshold=prune_threshold, connected=connected)
    return circuit
