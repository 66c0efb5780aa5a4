"""Server-side state of the dashboard: loaded models, per-session results, the run store.

Only JSON ever goes to the browser; `Model` objects and result arrays stay here.

- Models: loaded once per process through one lock (two requests for the same model never
  load it twice). `configure(trust_remote_code=...)` is set from the command line only;
  the browser can never turn it on.
- Session results: each browser tab carries a random session id (a `dcc.Store` with
  `storage_type="session"`); results computed for it are kept under that id, so eight
  sessions working at once never see each other's results. Each session keeps its latest
  `MAX_RESULTS_PER_SESSION` results, and the oldest sessions are dropped past `MAX_SESSIONS`.
- The run store: one `RunStore` per process (`$WORKBENCH_STORE` or the user data folder, or
  the folder passed to `configure(store=...)`).

Caveat: background callbacks run in a forked process, which inherits this state as it was at
fork time; what they load or cache is not seen by the server (they hand results back
through the run store instead).
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from workbench.loading import load_model
from workbench.model import Model
from workbench.store import RunStore

MAX_RESULTS_PER_SESSION = 16
MAX_SESSIONS = 64
_SESSION_RE = re.compile(r"[A-Za-z0-9-]{8,64}")

_lock = threading.RLock()
_models: dict[str, Model] = {}
_model_locks: dict[str, threading.RLock] = {}
_settings: dict[str, Any] = {"trust_remote_code": False, "store": None}
_results: OrderedDict[str, OrderedDict[str, Any]] = OrderedDict()
_store: RunStore | None = None


def _fresh_locks_in_child() -> None:
    """A forked job must not inherit a lock some other server thread held at fork time."""
    global _lock
    _lock = threading.RLock()
    _model_locks.clear()


os.register_at_fork(after_in_child=_fresh_locks_in_child)


def configure(*, trust_remote_code: bool | None = None, store: str | Path | None = None) -> None:
    """Process-wide settings, from the command line (never from a browser request)."""
    global _store
    with _lock:
        if trust_remote_code is not None:
            _settings["trust_remote_code"] = bool(trust_remote_code)
        if store is not None:
            _settings["store"] = str(store)
            _store = None


def trust_remote_code() -> bool:
    return bool(_settings["trust_remote_code"])


def get_model(name: str) -> Model:
    """The loaded model `name`, loading it on first use (raises `ValueError` like
    `workbench.load_model` for unknown names or missing folders)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("model: choose a zoo model or enter a checkpoint folder")
    name = name.strip()
    with _lock:
        model = _models.get(name)
        if model is None:
            model = load_model(name, trust_remote_code=trust_remote_code())
            _models[name] = model
        return model


def loaded_models() -> list[Model]:
    """The models loaded so far, in load order."""
    with _lock:
        return list(_models.values())


def preload(names: Iterable[str]) -> list[Model]:
    """Load each of `names` (once) and return them."""
    return [get_model(name) for name in names]


def check_session(session: Any) -> str:
    """The session id if it looks like one we issued, else `ValueError`."""
    if not isinstance(session, str) or not _SESSION_RE.fullmatch(session):
        raise ValueError("session: missing or malformed session id (reload the page)")
    return session


def model_lock(name: str) -> threading.RLock:
    """The lock that serialises work on one shared model: analyses install hooks or swap the
    attention implementation, so two threads must never run them on a model at once."""
    with _lock:
        return _model_locks.setdefault(name.strip(), threading.RLock())


def cached(session: str, key: str, compute: Callable[[], Any], *, model: str) -> Any:
    """This session's result under `key`; on first use `compute()` runs holding `model`'s
    lock (so a second request for the same key waits and then reuses the result)."""
    found = get_result(session, key)
    if found is not None:
        return found
    with model_lock(model):
        found = get_result(session, key)
        if found is None:
            found = compute()
            put_result(session, key, found)
        return found


def put_result(session: str, key: str, value: Any) -> None:
    """Keep `value` for this session under `key` (evicting its oldest results)."""
    session = check_session(session)
    with _lock:
        bucket = _results.setdefault(session, OrderedDict())
        bucket[key] = value
        bucket.move_to_end(key)
        _results.move_to_end(session)
        while len(bucket) > MAX_RESULTS_PER_SESSION:
            bucket.popitem(last=False)
        while len(_results) > MAX_SESSIONS:
            _results.popitem(last=False)


def get_result(session: str, key: str) -> Any | None:
    """This session's result under `key`, or None (other sessions' results are invisible)."""
    session = check_session(session)
    with _lock:
        bucket = _results.get(session)
        if bucket is None or key not in bucket:
            return None
        bucket.move_to_end(key)
        _results.move_to_end(session)
        return bucket[key]


def run_store() -> RunStore:
    """The process's run store (created on first use)."""
    global _store
    with _lock:
        if _store is None:
            _store = RunStore(_settings["store"])
        return _store


def clear() -> None:
    """Forget every loaded model and session result (for tests)."""
    with _lock:
        _models.clear()
        _results.clear()
