"""Server-side state of the dashboard: loaded models, per-session results, the run store.

Only JSON ever goes to the browser; `Model` objects and result arrays stay here. Everything a
client can make the server keep is bounded:

- Models: one cache keyed by the model's canonical name (`canonical_name`: zoo names as
  they are; folders by `Path(...).expanduser().resolve()`, and a folder that is a zoo
  checkpoint by its zoo name), so `.../model/`, `.../model//`, `..././model` and
  `.../x/../model` are one model loaded once. Besides the models the server preloaded at
  start (the zoo: a fixed set, kept and not counted), it holds at most `max_models()` models
  (default `MAX_MODELS` = 4, `$WORKBENCH_MAX_MODELS`, or `configure(max_models=...)`) and
  evicts the least recently used one that is not in use (its `model_lock` held or waited
  for); when every model is in use it may hold more until one is free. Evicting a model also drops the cached results that reference it.
  A model loads outside the global lock, under a per-model loading lock: two requests for
  one model load it once, and requests for other models or results never wait for a load.
  `configure(trust_remote_code=...)` is set from the command line only.
- Models named by a browser request go through `open_model`, never straight to the loader:
  zoo names and models already loaded are served; a folder is opened only inside the model
  folders the server was started with (`configure(model_roots=...)`, `workbench app
  --models-dir DIR`; default: the folder the server was started in), and a hub id only with
  `configure(allow_hub=True)` (`--allow-hub`). Checkpoints load from safetensors only.
- Session results: each browser tab carries a random session id (a `dcc.Store` with
  `storage_type="session"`); results computed for it are kept under that id, so sessions
  never see each other's results. All sessions share one LRU bounded by bytes
  (`result_cache_bytes()`: default `RESULT_CACHE_MIB` = 512 MiB, `$WORKBENCH_RESULT_CACHE_MB`
  or `configure(result_cache_bytes=...)`), sized by `workbench.ui.result_bytes`; the least
  recently used results go first. Besides, each session keeps at most
  `MAX_RESULTS_PER_SESSION` results and at most `MAX_SESSIONS` sessions are kept. A result
  larger than the whole budget is not kept (`put_result` raises `ResultTooLarge`, a
  `ValueError`; `cached` returns it uncached).
- The run store: one `RunStore` per process (`$WORKBENCH_STORE` or the user data folder, or
  the folder passed to `configure(store=...)`).

Caveat: background callbacks run in a forked process, which inherits this state as it was at
fork time; what they load or cache is not seen by the server (they hand results back
through the run store instead).
"""

from __future__ import annotations

import contextlib
import functools
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
from workbench.ui.result_bytes import estimate_bytes
from workbench.zoo import ZOO

MAX_RESULTS_PER_SESSION = 16
MAX_SESSIONS = 64
RESULT_CACHE_MIB = 512
MAX_MODELS = 4
MAX_NAME_CHARS = 4096
_SESSION_RE = re.compile(r"[A-Za-z0-9-]{8,64}")

_lock = threading.RLock()
_models: OrderedDict[str, Model] = OrderedDict()  # canonical name -> model, LRU first
_busy: dict[str, list] = {}  # canonical name -> [RLock, holders + waiters] (model locks)
_loading: dict[str, list] = {}  # canonical name -> [RLock, loaders + waiters]
_pinned: set[str] = set()  # canonical names of preloaded models: never evicted
_settings: dict[str, Any] = {
    "trust_remote_code": False,
    "store": None,
    "result_cache_bytes": None,
    "max_models": None,
    "model_roots": None,
    "allow_hub": False,
}
_results: OrderedDict[str, OrderedDict[str, tuple[Any, int, frozenset[int]]]] = OrderedDict()
_order: OrderedDict[tuple[str, str], None] = OrderedDict()  # every result, LRU first
_usage = {"result_bytes": 0}
_store: RunStore | None = None


class ResultTooLarge(ValueError):
    """A result bigger than the whole result cache budget."""


def _fresh_locks_in_child() -> None:
    """A forked job must not inherit a lock some other server thread held at fork time."""
    global _lock
    _lock = threading.RLock()
    _busy.clear()
    _loading.clear()


os.register_at_fork(after_in_child=_fresh_locks_in_child)


class _KeyedLock:
    """A reentrant lock per key of `table`, existing only while someone holds or waits for it
    (so attacker-chosen names cannot grow the table), and telling who is busy with a key."""

    __slots__ = ("_table", "key")

    def __init__(self, table: dict[str, list], key: str) -> None:
        self._table, self.key = table, key

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        with _lock:
            slot = self._table.setdefault(self.key, [threading.RLock(), 0])
            slot[1] += 1
        if slot[0].acquire(blocking, timeout):
            return True
        self._leave(slot)
        return False

    def release(self) -> None:
        with _lock:
            slot = self._table.get(self.key)
        if slot is not None:  # None only in a forked child, whose locks are fresh
            slot[0].release()
            self._leave(slot)

    def _leave(self, slot: list) -> None:
        with _lock:
            slot[1] -= 1
            if slot[1] == 0 and self._table.get(self.key) is slot:
                del self._table[self.key]

    def __enter__(self) -> _KeyedLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what}: expected a positive whole number, got {value!r}")
    return value


def _from_env(variable: str, default: int) -> int:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        return _positive_int(int(raw), variable)
    except ValueError:
        raise ValueError(f"{variable}: expected a positive whole number, got {raw!r}") from None


def configure(
    *,
    trust_remote_code: bool | None = None,
    store: str | Path | None = None,
    result_cache_bytes: int | None = None,
    max_models: int | None = None,
    model_roots: Iterable[str | Path] | None = None,
    allow_hub: bool | None = None,
) -> None:
    """Process-wide settings, from the command line (never from a browser request).

    `result_cache_bytes` / `max_models` bound the caches (see the module docstring); lowering
    them evicts at once. `model_roots` are the folders inside which a browser may open
    checkpoints (resolved now), `allow_hub` lets a browser name hub ids.
    """
    global _store
    with _lock:
        if trust_remote_code is not None:
            _settings["trust_remote_code"] = bool(trust_remote_code)
        if store is not None:
            _settings["store"] = str(store)
            _store = None
        if result_cache_bytes is not None:
            _settings["result_cache_bytes"] = _positive_int(result_cache_bytes, "result cache")
            _evict_results()
        if max_models is not None:
            _settings["max_models"] = _positive_int(max_models, "max models")
            _evict_models()
        if model_roots is not None:
            _settings["model_roots"] = [Path(root).expanduser().resolve() for root in model_roots]
        if allow_hub is not None:
            _settings["allow_hub"] = bool(allow_hub)


def trust_remote_code() -> bool:
    """Whether the app may run a checkpoint's own code (set by `configure`)."""
    return bool(_settings["trust_remote_code"])


def result_cache_bytes() -> int:
    """The byte budget of all sessions' cached results together."""
    budget = _settings["result_cache_bytes"]
    return budget or _from_env("WORKBENCH_RESULT_CACHE_MB", RESULT_CACHE_MIB) * 2**20


def max_models() -> int:
    """How many models the model cache holds (more only while all of them are in use)."""
    return _settings["max_models"] or _from_env("WORKBENCH_MAX_MODELS", MAX_MODELS)


def cache_usage() -> dict[str, int]:
    """What the caches hold now: result bytes and counts, sessions, models, and the bounds."""
    with _lock:
        return {
            "result_bytes": _usage["result_bytes"],
            "result_cache_bytes": result_cache_bytes(),
            "results": len(_order),
            "sessions": len(_results),
            "models": len(_models),
            "max_models": max_models(),
        }


# ---------------------------------------------------------------------------------- models
def canonical_name(name: str) -> str:
    """The cache key of a model name: zoo names as they are, hub ids as they are, folders
    (anything that exists or starts with `.`, `/` or `~`) resolved to an absolute path, or
    to the zoo name when the folder is a zoo checkpoint. `ValueError` for unusable names."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("model: choose a zoo model or enter a checkpoint folder")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS or "\x00" in name:
        raise ValueError(f"model: {name[:60]!r}... is not a model name or a folder path")
    if name in ZOO:
        return name
    try:
        path = Path(name).expanduser()
        if not (name.startswith((".", "/", "~")) or path.exists()):
            return name  # a hub id
        resolved = path.resolve()
    except (OSError, RuntimeError, ValueError) as err:
        raise ValueError(f"model: {name[:200]!r} is not a usable folder path ({err})") from None
    return _zoo_folders().get(resolved, str(resolved))


@functools.cache
def _zoo_folders() -> dict[Path, str]:
    """Resolved checkpoint folder -> zoo name (for the zoo models whose folder is known)."""
    found = {}
    for name, entry in ZOO.items():
        with contextlib.suppress(ImportError, OSError):
            found[entry.path().resolve()] = name
    return found


def get_model(name: str) -> Model:
    """The loaded model `name`, loading it on first use (raises `ValueError` like
    `workbench.load_model` for unknown names or missing folders). Spellings of one folder
    share one model; a load never holds the global lock."""
    return _model_for(canonical_name(name))


def _model_for(key: str) -> Model:
    """The loaded model under canonical name `key`, loading it on first use."""
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
    with _KeyedLock(_loading, key):
        with _lock:
            if key in _models:
                _models.move_to_end(key)
                return _models[key]
        model = load_model(key, trust_remote_code=trust_remote_code())
        with _lock:
            _models[key] = model
            _evict_models(keep=key)
        return model


def model_roots() -> list[Path]:
    """The folders inside which a browser request may open checkpoints."""
    return list(_settings["model_roots"] or [Path.cwd().resolve()])


def open_model(name: str) -> Model:
    """`get_model` for a name sent by a browser: zoo models and models already loaded are
    served; anything else must be a folder inside `model_roots()` (or, with `allow_hub`, a
    hub id). `ValueError` naming the rule otherwise, before anything is read from disk."""
    key = canonical_name(name)
    with _lock:
        known = key in _models
    if not known and key not in ZOO:
        path = Path(key)
        if path.is_absolute():
            roots = model_roots()
            if not any(path.is_relative_to(root) for root in roots):
                shown = ", ".join(str(root) for root in roots)
                raise ValueError(
                    f"model: {name.strip()[:200]} is outside the folders this dashboard opens "
                    f"checkpoints from ({shown}); start it with `workbench app --models-dir DIR`"
                )
        elif not _settings["allow_hub"]:
            raise ValueError(
                f"model: {name.strip()[:200]!r} is neither a zoo model nor a checkpoint folder; "
                "hub ids load only when the dashboard is started with `--allow-hub`"
            )
    return _model_for(key)


def _evict_models(keep: str | None = None) -> None:
    """Drop least recently used models not in use until at most `max_models()` models that
    were not preloaded remain (preloaded ones, the zoo at start, are kept and not counted)."""
    with _lock:
        while sum(k not in _pinned for k in _models) > max_models():
            free = [
                k
                for k in _models
                if k != keep and k not in _pinned and k not in _busy and k not in _loading
            ]
            if not free:
                return
            model = _models.pop(free[0])
            stale = [sk for sk in _order if id(model) in _entry(*sk)[2]]
            for session, key in stale:
                _drop(session, key)


def loaded_models() -> list[Model]:
    """The models loaded now, least recently used first."""
    with _lock:
        return list(_models.values())


def preload(names: Iterable[str]) -> list[Model]:
    """Load each of `names` (once), keep them for the life of the process (they never count
    against `max_models()`: the server chose them, not a request) and return them."""
    models = []
    for name in names:
        key = canonical_name(name)
        with _lock:
            _pinned.add(key)
        models.append(_model_for(key))
    return models


def model_lock(name: str) -> _KeyedLock:
    """The lock that serialises work on one shared model: analyses install hooks or swap the
    attention implementation, so two threads must never run them on a model at once. Keyed
    by `canonical_name`; use it as `with state.model_lock(name): ...` (reentrant). A model
    whose lock is held or waited for is never evicted."""
    return _KeyedLock(_busy, canonical_name(name))


# ---------------------------------------------------------------------------------- results
def check_session(session: Any) -> str:
    """The session id if it looks like one we issued, else `ValueError`."""
    if not isinstance(session, str) or not _SESSION_RE.fullmatch(session):
        raise ValueError("session: missing or malformed session id (reload the page)")
    return session


def cached(session: str, key: str, compute: Callable[[], Any], *, model: str) -> Any:
    """This session's result under `key`; on first use `compute()` runs holding `model`'s
    lock (so a second request for the same key waits and then reuses the result). A result
    too large for the cache is returned without being kept."""
    found = get_result(session, key)
    if found is not None:
        return found
    with model_lock(model):
        found = get_result(session, key)
        if found is None:
            found = compute()
            with contextlib.suppress(ResultTooLarge):
                put_result(session, key, found)
        return found


def put_result(session: str, key: str, value: Any) -> None:
    """Keep `value` for this session under `key`, evicting the least recently used results
    (of any session) past the byte budget, and this session's oldest past its count."""
    session = check_session(session)
    size, models = estimate_bytes(value)
    size += len(key)
    budget = result_cache_bytes()
    with _lock:
        _drop(session, key)
        if size > budget:
            raise ResultTooLarge(
                f"result: about {size / 2**20:,.0f} MiB, more than the whole result cache "
                f"({budget / 2**20:,.0f} MiB, $WORKBENCH_RESULT_CACHE_MB); use a shorter input"
            )
        bucket = _results.setdefault(session, OrderedDict())
        bucket[key] = (value, size, models)
        _order[(session, key)] = None
        _usage["result_bytes"] += size
        _results.move_to_end(session)
        while len(bucket) > MAX_RESULTS_PER_SESSION:
            _drop(session, next(iter(bucket)))
        while len(_results) > MAX_SESSIONS:
            oldest = next(iter(_results))
            for old_key in list(_results[oldest]):
                _drop(oldest, old_key)
        _evict_results()


def _entry(session: str, key: str) -> tuple[Any, int, frozenset[int]]:
    return _results[session][key]


def _drop(session: str, key: str) -> None:
    bucket = _results.get(session)
    if bucket is None or key not in bucket:
        return
    _, size, _ = bucket.pop(key)
    del _order[(session, key)]
    _usage["result_bytes"] -= size
    if not bucket:
        del _results[session]


def _evict_results() -> None:
    with _lock:
        budget = result_cache_bytes()
        while _usage["result_bytes"] > budget and _order:
            _drop(*next(iter(_order)))


def get_result(session: str, key: str) -> Any | None:
    """This session's result under `key`, or None (other sessions' results are invisible)."""
    session = check_session(session)
    with _lock:
        bucket = _results.get(session)
        if bucket is None or key not in bucket:
            return None
        bucket.move_to_end(key)
        _results.move_to_end(session)
        _order.move_to_end((session, key))
        return bucket[key][0]


def run_store() -> RunStore:
    """The process's run store (created on first use)."""
    global _store
    with _lock:
        if _store is None:
            _store = RunStore(_settings["store"])
        return _store


def clear() -> None:
    """Forget every loaded model and session result (for tests; settings are kept)."""
    with _lock:
        _models.clear()
        _pinned.clear()
        _results.clear()
        _order.clear()
        _usage["result_bytes"] = 0
