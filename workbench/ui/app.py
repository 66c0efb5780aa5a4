"""Build and serve the Dash dashboard.

`create_app()` returns a multi-page `dash.Dash` app styled with dash-mantine-components,
whose CSS and JavaScript are served by the app itself (no CDN: it works offline). Pages are
registered explicitly from `workbench.ui.pages.PAGES`. Models live server-side in
`workbench.ui.state`; by default every trained zoo model is loaded before the app is returned.

`serve()` runs the development server on 127.0.0.1:8050. The dashboard has no
authentication, so it warns when asked to listen on a non-loopback address.
"""

from __future__ import annotations

import ipaddress
import sys

import dash
import dash_mantine_components as dmc
from dash import Dash

from workbench.ui import state
from workbench.ui.pages import PAGES
from workbench.zoo import ZOO

TITLE = "Attention Workbench"


def create_app(*, preload: list[str] | None = None) -> Dash:
    """The dashboard app. `preload`: models to load now (default: every trained zoo model)."""
    if preload is None:
        preload = [name for name, entry in ZOO.items() if entry.is_available()]
    state.preload(preload)

    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        title=TITLE,
        suppress_callback_exceptions=True,
    )
    for page in PAGES:
        dash.register_page(page.__name__, layout=page.layout, **page.PAGE)
        if hasattr(page, "register_callbacks"):
            page.register_callbacks(app)
    app.layout = _shell()
    return app


def _shell() -> dmc.MantineProvider:
    nav = [
        dmc.Anchor(
            page.PAGE["name"], href=page.PAGE["path"], id=f"nav-{page.__name__.rsplit('.', 1)[-1]}"
        )
        for page in PAGES
    ]
    header = dmc.AppShellHeader(
        dmc.Group(
            [dmc.Title(TITLE, order=3), dmc.Group(nav, gap="md")],
            justify="space-between",
            h="100%",
            px="md",
        )
    )
    main = dmc.AppShellMain(dmc.Container(dash.page_container, size="xl", py="md"))
    return dmc.MantineProvider(
        dmc.AppShell([header, main], header={"height": 56}, padding="md"),
        id="app-theme",
    )


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(host: str = "127.0.0.1", port: int = 8050, debug: bool = False) -> None:
    """Build the app and serve it at http://host:port until interrupted."""
    if not is_loopback(host):
        print(
            f"warning: serving the dashboard on {host}, reachable from other machines; "
            "it has no authentication. Use 127.0.0.1 unless you mean it.",
            file=sys.stderr,
        )
    app = create_app()
    app.run(host=host, port=port, debug=debug)
