"""The Dash dashboard: the only part of the workbench that imports dash.

`create_app()` builds the multi-page app (pages in `workbench.ui.pages`, one module each);
`serve()` runs it on http://127.0.0.1:8050. Loaded models are kept server-side in
`workbench.ui.state` (bounded caches); every request first passes
`workbench.ui.request_guard` (Host allowlist, body cap). Helpers several pages share live in
`workbench.ui.shared` (pages never import each other); `workbench.ui.callback_client` is a
testing/benchmark client. Nothing below the UI (analysis, circuits, the core) imports it.
"""

from workbench.ui.app import create_app, serve

__all__ = ["create_app", "serve"]
