"""The private Ray that `RayExecutor` starts on this machine: on loopback only, and quiet on stdout.

`start_private_ray(ray)` starts Ray with every listening socket on 127.0.0.1: GCS, raylet
(node manager and object manager), worker and driver gRPC servers, and the runtime-env agent
(the dashboard is off; the minimal dashboard process and dashboard agent Ray still starts
listen on nothing). Ray binds its gRPC servers to 127.0.0.1 only when the node IP address *is*
127.0.0.1, but `ray.init(_node_ip_address="127.0.0.1")` replaces a loopback address by the
machine's external one unless `ray._private.ray_constants.ENABLE_RAY_CLUSTER` is false (the
setting behind `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`, read once when Ray is imported). So that
flag is turned off for the duration of `ray.init` only (it is used nowhere else), and the
node's address is checked afterwards: if Ray came up on any other address it is shut down again
and one `RuntimeError` says so, rather than serving the network.

`StdoutGuard` keeps Ray's own lines off stdout: the driver prints the errors Ray publishes
(e.g. "(raylet) A worker died or was killed ...") from its `ray_listen_error_messages` thread
to `sys.stdout`, whatever `log_to_driver` says. While installed, the guard stands in for
`sys.stdout` and sends what threads named `ray_*` write to `sys.stderr`; everything else still
goes to the real stdout, so `--json` output stays parseable.
"""

from __future__ import annotations

import io
import sys
import threading
from typing import Any

LOOPBACK = "127.0.0.1"
_QUIET = {"logging_level": "warning", "log_to_driver": False}


def start_private_ray(ray: Any) -> None:
    """`ray.init` a private Ray whose processes listen on 127.0.0.1 only (see module doc)."""
    try:
        from ray._private import ray_constants
    except ImportError:  # a Ray without the flag: the address check below decides
        ray_constants = None
    saved = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    if saved is not None:
        ray_constants.ENABLE_RAY_CLUSTER = False  # keep "127.0.0.1" as the node IP address
    try:
        ray.init(
            include_dashboard=False, dashboard_host=LOOPBACK, _node_ip_address=LOOPBACK, **_QUIET
        )
    finally:
        if saved is not None:
            ray_constants.ENABLE_RAY_CLUSTER = saved
    node_ip = ray.util.get_node_ip_address()
    if node_ip != LOOPBACK:
        ray.shutdown()
        raise RuntimeError(
            f"executor 'ray': the private Ray came up on {node_ip}, not {LOOPBACK}; refusing "
            "to run it on an address other machines can reach (start a cluster yourself and "
            "pass --address)"
        )


def join_ray(ray: Any, address: str) -> None:
    """`ray.init` a connection to the running cluster at `address`, quietly."""
    ray.init(address=address, **_QUIET)


class StdoutGuard(io.TextIOBase):
    """Stands in for `sys.stdout`: writes from Ray's driver threads (`ray_*`) go to stderr."""

    def __init__(self, stdout: Any) -> None:
        super().__init__()
        self.stdout = stdout

    def _target(self) -> Any:
        ray_thread = threading.current_thread().name.startswith("ray_")
        return sys.stderr if ray_thread else self.stdout

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self.stdout.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.stdout.isatty()

    def fileno(self) -> int:
        return self.stdout.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.stdout.encoding

    def __getattr__(self, name: str) -> Any:  # `buffer`, `reconfigure`, ...: the real stdout's
        return getattr(self.stdout, name)

    @classmethod
    def install(cls) -> StdoutGuard:
        """Put a guard in front of the current `sys.stdout` (or keep the one already there)."""
        if not isinstance(sys.stdout, cls):
            sys.stdout = cls(sys.stdout)
        return sys.stdout

    @classmethod
    def uninstall(cls) -> None:
        """Put the real stdout back, if a guard is still in place."""
        if isinstance(sys.stdout, cls):
            sys.stdout = sys.stdout.stdout
