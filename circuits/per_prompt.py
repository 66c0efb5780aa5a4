"""Per-prompt edge scores `[prompt, edge]`, the numbers a bootstrap of an edge ranking resamples.

`per_prompt_scores(model, task, method_or_circuit, **options)` runs the method on each prompt
alone (`circuits.task_batches.task_slice`) and stacks the scores. It accepts only methods
whose score is a plain mean over prompts (`LINEAR_METHODS`: EAP and EAP-IG average per-prompt
gradients; path and exhaustive patching average per-prompt metric changes), so the rows'
mean is the batched method's score up to float32 rounding - `circuits.roc(...,
per_prompt=...)` checks that. ACDC (a greedy search over the whole task), activation patching
(edge scores are a nonlinear function of node means) and SVD tracing are refused.

Given a `Circuit`, its method and the options recorded in its `config` are reused.

Cost: every prompt is a separate run at batch size 1 - the same number of prompt-passes as
the batched method (EAP-IG: 2 + ig_steps forwards and ig_steps backwards per prompt; path
patching: 2 + n_edges forwards per prompt) but without batching, so slower in wall time.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from circuits.circuit import Circuit
from circuits.task_batches import task_slice
from circuits.tracing import method_function, trace

if TYPE_CHECKING:
    from workbench.model import Model
    from workbench.tasks import Task

LINEAR_METHODS = ("eap", "eap-ig", "path", "exhaustive")
"""Methods whose edge score is the mean over prompts of a per-prompt score."""

_NOT_OPTIONS = ("progress", "executor", "address", "edges_per_shard", "store", "batch_size")


def per_prompt_scores(
    model: Model,
    task: Task,
    method: str | Circuit = "eap-ig",
    *,
    progress: bool = False,
    **options: Any,
) -> torch.Tensor:
    """`[prompt, edge]` float64 scores of `method` run on each prompt of `task` alone; their
    mean over prompts is the method's score on the whole task (module docstring)."""
    if isinstance(method, Circuit):
        circuit, method = method, method.method
        params = inspect.signature(method_function(method)).parameters if method in _known() else {}
        skip = (*_NOT_OPTIONS, "ig_steps") if method == "eap" else _NOT_OPTIONS  # eap: 1 step
        recorded = {k: v for k, v in circuit.config.items() if k in params and k not in skip}
        options = {**recorded, **options}
    if method not in LINEAR_METHODS:
        raise ValueError(
            f"method: {method!r} has no per-prompt scores whose mean is its score; "
            f"choose from {LINEAR_METHODS}"
        )
    rows = []
    for i in tqdm(range(task.n_prompts), disable=not progress, desc=f"per-prompt {method}"):
        single = trace(model, task_slice(task, i, i + 1), method=method, **options)
        rows.append(single.scores.double())  # [edge]
    return torch.stack(rows)  # [prompt, edge]


def _known() -> tuple[str, ...]:
    from circuits.tracing import METHODS

    return tuple(METHODS)


__all__ = ["LINEAR_METHODS", "per_prompt_scores"]
