"""`resolve_executor`: turn an `executor=` argument into an `Executor` (the factory).

The one module that knows every executor class: it imports `base` (the protocol and the
in-process executor) and `ray_executor`, neither of which imports it, so the executors have no
import cycle. Ray itself is still imported only when a `RayExecutor` is created.
"""

from __future__ import annotations

from workbench.executors.base import EXECUTOR_NAMES, Executor, InProcessExecutor
from workbench.executors.ray_executor import RayExecutor


def resolve_executor(
    executor: str | Executor | None, *, address: str | None = None
) -> tuple[Executor, bool]:
    """(executor, owned) for an `executor=` argument: "inprocess" (default), "ray", or an
    `Executor` instance (not owned: the caller closes it). `address` is for "ray" only."""
    if executor is None or executor == "inprocess":
        if address is not None:
            raise ValueError("address: only used with executor='ray'")
        return InProcessExecutor(), True
    if executor == "ray":
        return RayExecutor(address=address), True
    if isinstance(executor, str):
        raise ValueError(f"executor: {executor!r} is not one of {', '.join(EXECUTOR_NAMES)}")
    if not isinstance(executor, Executor):
        raise ValueError(
            f"executor: expected 'inprocess', 'ray' or an Executor, got {type(executor).__name__}"
        )
    if address is not None:
        raise ValueError("address: pass it to the executor instance instead")
    return executor, False


__all__ = ["resolve_executor"]
