"""The Dash dashboard: the only part of the workbench that imports dash.

`create_app()` builds the multi-page app (pages in `workbench.ui.pages`, one module each);
`serve()` runs it on http://127.0.0.1:8050. Loaded models are kept server-side in
`workbench.ui.state`.
"""

from workbench.ui.app import create_app, serve

__all__ = ["create_app", "serve"]
