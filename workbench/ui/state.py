"""Server-side model cache for the dashboard: each model is loaded once per process.

Dash callbacks run in threads (and pages re-render on every visit), so loading goes through
one lock: two requests for the same model never load it twice. Only JSON ever goes to the
browser; `Model` objects stay here.

Caveat: background callbacks run in a forked process, which inherits the cache as it was at
fork time; models loaded there are not seen by the server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from workbench.loading import load_model
from workbench.model import Model

_lock = threading.Lock()
_models: dict[str, Model] = {}


def get_model(name: str) -> Model:
    """The loaded model `name`, loading it on first use (raises `ValueError` like
    `workbench.load_model` for unknown or untrained names)."""
    with _lock:
        model = _models.get(name)
        if model is None:
            model = load_model(name)
            _models[name] = model
        return model


def loaded_models() -> list[Model]:
    """The models loaded so far, in load order."""
    with _lock:
        return list(_models.values())


def preload(names: Iterable[str]) -> list[Model]:
    """Load each of `names` (once) and return them."""
    return [get_model(name) for name in names]


def clear() -> None:
    """Forget every loaded model (for tests)."""
    with _lock:
        _models.clear()
