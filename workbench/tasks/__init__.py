"""Task datasets: clean/corrupted prompt pairs with a metric (see `workbench.tasks.base`).

- `ioi`: Indirect Object Identification (decoders; any tokenizer; `corruption=` "s2",
  "s1s2" or "abc");
- `induction`: repeated random tokens (decoders);
- `lookup`: key-value recall (decoders with a separator token; built for `planted-lookup`);
- `similarity`: paraphrase similarity of sentence embeddings (encoders such as MiniLM).

`make_task(name, model, n=..., seed=..., **options)` builds one by name.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from workbench.tasks.base import Task
from workbench.tasks.induction import InductionTask, make_induction_task
from workbench.tasks.ioi import IOITask, make_ioi_task
from workbench.tasks.lookup import LookupTask, make_lookup_task
from workbench.tasks.similarity import SimilarityTask, make_similarity_task

if TYPE_CHECKING:
    from workbench.model import Model

TASKS = {
    "ioi": make_ioi_task,
    "induction": make_induction_task,
    "lookup": make_lookup_task,
    "similarity": make_similarity_task,
}


def make_task(
    name: str, model: Model, *, n: int | None = None, seed: int = 0, **options: Any
) -> Task:
    """Build task `name` for `model`; `options` go to the task's builder (e.g. `corruption=`
    for `ioi`). Raises `ValueError` for an unknown task or option, or a task that does not
    suit the model (e.g. `ioi` on an encoder)."""
    if name not in TASKS:
        raise ValueError(f"task: unknown task {name!r}; choose from {sorted(TASKS)}")
    accepted = inspect.signature(TASKS[name]).parameters
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        raise ValueError(f"options: {unknown} not accepted by task {name!r}")
    kwargs = {"seed": seed} if n is None else {"seed": seed, "n": n}
    return TASKS[name](model, **kwargs, **options)


def default_task_for(model: Model) -> str:
    """The natural task for a model: similarity for encoders, ioi for decoders."""
    return "ioi" if model.is_causal else "similarity"


__all__ = [
    "TASKS",
    "IOITask",
    "InductionTask",
    "LookupTask",
    "SimilarityTask",
    "Task",
    "default_task_for",
    "make_task",
]
