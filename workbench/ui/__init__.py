"""The Dash dashboard: the only part of the workbench that imports dash.

`create_app()` builds the multi-page app (pages in `workbench.ui.pages`, one module each);
`serve()` runs it on http://127.0.0.1:8050. Loaded models are kept server-side in
`workbench.ui.state` (bounded caches); every request first passes
`workbench.ui.request_guard` (Host allowlist, body cap). `workbench.ui.figures` draws attention patterns with plotly alone, so
the command line can import it without dash: the app names here are imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.ui.app import create_app, serve

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from workbench.ui import app

        return getattr(app, name)
    raise AttributeError(f"module 'workbench.ui' has no attribute {name!r}")
