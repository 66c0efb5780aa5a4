"""A task's prompts in minibatches and slices, and a digest naming its exact contents.

`task_batches(task, batch_size)` yields sub-tasks: the same task type with every per-prompt
field (tensors and tuples whose first dimension is the prompt count) sliced, so each sub-task's
`metric` reads its own prompts' answer positions and tokens.

`task_digest(task)` names a task's exact contents (for sharded runs' ids and resumption).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator

import torch

from workbench.tasks import Task


def task_slice(task: Task, start: int, stop: int) -> Task:
    """The prompts `start:stop` of `task` as a task of the same type."""
    n = task.n_prompts
    changes = {}
    for f in dataclasses.fields(task):
        value = getattr(task, f.name)
        if (
            isinstance(value, torch.Tensor)
            and value.dim() > 0
            and value.shape[0] == n
            or isinstance(value, tuple)
            and len(value) == n
        ):
            changes[f.name] = value[start:stop]
    return dataclasses.replace(task, **changes)


def task_batches(task: Task, batch_size: int) -> Iterator[Task]:
    """Consecutive sub-tasks of at most `batch_size` prompts."""
    if batch_size < 1:
        raise ValueError(f"batch_size: need at least 1, got {batch_size}")
    for start in range(0, task.n_prompts, batch_size):
        yield task_slice(task, start, min(start + batch_size, task.n_prompts))


def task_digest(task: Task) -> str:
    """A short hex digest of every field of `task` (tensors by dtype, shape and bytes)."""
    sha = hashlib.sha256(type(task).__qualname__.encode())
    for f in dataclasses.fields(task):
        value = getattr(task, f.name)
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().contiguous()
            sha.update(f"{f.name}:{value.dtype}:{tuple(value.shape)}:".encode())
            sha.update(value.numpy().tobytes())
        else:
            sha.update(f"{f.name}:{value!r};".encode())
    return sha.hexdigest()[:16]


__all__ = ["task_batches", "task_digest", "task_slice"]
