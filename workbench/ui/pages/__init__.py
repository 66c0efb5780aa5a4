"""Dashboard pages, one module per page.

Each page module defines:

- `PAGE`: keyword arguments for `dash.register_page` (at least `path` and `name`);
- `layout(**query) -> component`: built on every visit, so it shows the current server state;
- optionally `register_callbacks(app)`: attaches the page's callbacks to one app instance
  (callbacks are registered per app, not with the global `dash.callback`, so every
  `create_app()` call, e.g. one per browser test, gets a working copy).

All component ids in a page start with the page's prefix (`models-...`). Pages read the
shared selection from their query string (`workbench.ui.selection`). `PAGES` lists the
modules in navigation order; `workbench.ui.app.create_app` registers them.
"""

from workbench.ui.pages import (
    attacks,
    attention,
    circuits,
    guidance,
    heads,
    models,
    prompt,
    runs,
    training,
)

PAGES = [prompt, attention, heads, circuits, guidance, attacks, training, models, runs]

__all__ = ["PAGES"]
