"""Task datasets: clean/corrupted prompt pairs with a metric (see `workbench.tasks.base`).

- `ioi`: Indirect Object Identification with ABC corruption (decoders; any tokenizer);
- `induction`: repeated random tokens (decoders);
- `lookup`: key-value recall (decoders with a separator token; built for `planted-lookup`);
- `similarity`: paraphrase similarity of sentence embeddings (encoders such as MiniLM).

`make_task(name, model, n=..., seed=...)` builds one by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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


def make_task(name: str, model: Model, *, n: int | None = None, seed: int = 0) -> Task:
    """Build task `name` for `model`. Raises `ValueError` for an unknown task or a task that
    does not suit the model (e.g. `ioi` on an encoder)."""
    if name not in TASKS:
        raise ValueError(f"task: unknown task {name!r}; choose from {sorted(TASKS)}")
    kwargs = {"seed": seed} if n is None else {"seed": seed, "n": n}
    return TASKS[name](model, **kwargs)


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
