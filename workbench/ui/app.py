"""Build and serve the Dash dashboard.

`create_app()` returns a multi-page `dash.Dash` app styled with dash-mantine-components,
whose CSS and JavaScript are served by the app itself (no CDN: it works offline). Pages are
registered explicitly from `workbench.ui.pages.PAGES`. Models and results live server-side in
`workbench.ui.state`; by default every trained zoo model is loaded before the app is returned.

The shell around the pages holds a per-tab session id (`dcc.Store` in session storage,
keying server-side results), the shared selection (`workbench.ui.selection`, mirrored in the
URL) and the background-job manager (`workbench.ui.jobs`). The navigation link of the page
being shown is bold and underlined (class `nav-active`), set clientside from the pathname.

`serve()` runs the development server on 127.0.0.1:8050, saying on stdout when it starts
loading models and, once ready, the address it serves (`startup_message`); its per-request
access log is off unless asked for (`access_log=True`, `workbench app --access-log`). Each
background job's state shows in its page (`jobs.register_job_state`). The dashboard has no
authentication, so it warns when asked to listen on a non-loopback address. Every request
first passes `workbench.ui.request_guard`: a Host allowlist (127.0.0.1, localhost, [::1], the
`--host` served on and any `allowed_hosts`; others get 421, against DNS rebinding) and a body
cap (`MAX_BODY_BYTES`, 4 MiB; larger bodies get 413).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import sys
import uuid
from collections.abc import Iterable

import dash
import dash_mantine_components as dmc
from dash import Dash, Input, Output, dcc

from workbench.ui import jobs, request_guard, selection, state
from workbench.ui.pages import PAGES
from workbench.zoo import ZOO

TITLE = "Attention Workbench"


def create_app(
    *,
    preload: list[str] | None = None,
    store: str | None = None,
    jobs_folder: str | None = None,
    allowed_hosts: Iterable[str] = (),
    max_body_bytes: int = request_guard.MAX_BODY_BYTES,
) -> Dash:
    """The dashboard app.

    Args:
        preload: models to load now (default: every trained zoo model).
        store: run-store folder (default: `$WORKBENCH_STORE` or the user data folder).
        jobs_folder: where background jobs keep their state (default: a temporary folder).
        allowed_hosts: Host names answered besides 127.0.0.1, localhost and [::1] (with or
            without a port); requests naming any other host get 421.
        max_body_bytes: the largest request body accepted (larger ones get 413).

    Raises:
        ValueError: an `allowed_hosts` entry that is not a host name or IP address.
    """
    hosts = request_guard.allowed_hosts(allowed_hosts)
    if preload is None:
        preload = [name for name, entry in ZOO.items() if entry.is_available()]
    state.configure(store=store)
    state.preload(preload)

    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        title=TITLE,
        suppress_callback_exceptions=True,
        background_callback_manager=jobs.manager(jobs_folder),
    )
    for page in PAGES:
        dash.register_page(page.__name__, layout=page.layout, **page.PAGE)
        if hasattr(page, "register_callbacks"):
            page.register_callbacks(app)
    jobs.register_job_state(app)
    request_guard.install(app.server, hosts, max_body_bytes=max_body_bytes)
    selection.register_url_sync(app, {_nav_id(page): page.PAGE["path"] for page in PAGES})
    _register_nav_highlight(app)
    app.layout = _shell
    return app


def _nav_id(page) -> str:
    return f"nav-{page.__name__.rsplit('.', 1)[-1]}"


NAV_ACTIVE = {"fontWeight": 700, "textDecoration": "underline", "textUnderlineOffset": "6px"}


def _register_nav_highlight(app: Dash) -> None:
    """Clientside: the link of the page being shown is bold and underlined (`nav-active`)."""
    ids = [_nav_id(page) for page in PAGES]
    paths = json.dumps([page.PAGE["path"] for page in PAGES])
    active = json.dumps(NAV_ACTIVE)
    app.clientside_callback(
        f"""
        function(pathname) {{
            const here = (pathname || "/").replace(/\\/+$/, "") || "/";
            return {paths}.flatMap(function(p) {{
                const on = here === p;
                return [on ? {active} : {{}}, on ? "nav-active" : ""];
            }});
        }}
        """,
        [o for i in ids for o in (Output(i, "style"), Output(i, "className"))],
        Input("_pages_location", "pathname"),
    )


def _shell() -> dmc.MantineProvider:
    """The frame around every page (a function: each load gets a fresh session id, which
    session storage then keeps for the life of the tab)."""
    nav = [
        dmc.Anchor(page.PAGE["name"], href=page.PAGE["path"], id=_nav_id(page)) for page in PAGES
    ]
    header = dmc.AppShellHeader(
        dmc.Group(
            [dmc.Title(TITLE, order=3), dmc.Group(nav, gap="md")],
            justify="space-between",
            h="100%",
            px="md",
        )
    )
    stores = [
        dcc.Store(id="session-id", storage_type="session", data=uuid.uuid4().hex),
        *selection.shell_components(),
    ]
    main = dmc.AppShellMain(dmc.Container([*stores, dash.page_container], size="xl", py="md"))
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


def serve(
    host: str = "127.0.0.1",
    port: int = 8050,
    debug: bool = False,
    *,
    trust_remote_code: bool = False,
    allowed_hosts: Iterable[str] = (),
    models_dirs: Iterable[str] = (),
    allow_hub: bool = False,
    access_log: bool = False,
) -> None:
    """Build the app and serve it at http://host:port until interrupted.

    `trust_remote_code` lets local or hub checkpoints run their own code (off by default;
    only the command line can turn it on). Requests are answered when their Host is a
    loopback name, `host` itself or one of `allowed_hosts`. A browser may open checkpoint
    folders only inside `models_dirs` (default: the current folder) and hub ids only with
    `allow_hub`. The per-request access log (werkzeug's, one line per request, progress polls
    included) is off unless `access_log`; warnings and errors are always logged.
    """
    extra = [host, *allowed_hosts]
    request_guard.allowed_hosts(extra)  # ValueError for a bad name, before anything starts
    if not is_loopback(host):
        print(
            f"warning: serving the dashboard on {host}, reachable from other machines; "
            "it has no authentication. Use 127.0.0.1 unless you mean it.",
            file=sys.stderr,
        )
    if host in ("0.0.0.0", "::") and not allowed_hosts:
        print(
            f"warning: {host} is not a name browsers use; only requests to 127.0.0.1, "
            "localhost or [::1] are answered (add names with --allow-host).",
            file=sys.stderr,
        )
    state.configure(
        trust_remote_code=trust_remote_code,
        model_roots=list(models_dirs) or None,
        allow_hub=allow_hub,
    )
    from workbench.export import start_server

    print("Attention Workbench: loading models and the export server...", flush=True)
    start_server()  # one kaleido (headless chromium) for every export
    app = create_app(allowed_hosts=extra)
    print(startup_message(host, port), flush=True)
    quiet_access_log(not access_log)
    app.run(host=host, port=port, debug=debug)


def quiet_access_log(quiet: bool = True) -> None:
    """Silence (or restore) werkzeug's per-request access log; its warnings and errors stay."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING if quiet else logging.INFO)


def dashboard_url(host: str, port: int) -> str:
    """The address a browser opens for the dashboard served on `host:port` (IPv6 bracketed;
    the wildcard addresses answer on 127.0.0.1)."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def startup_message(host: str, port: int) -> str:
    """The line printed once the models are loaded: where the dashboard is served."""
    return f"Attention Workbench: dashboard ready at {dashboard_url(host, port)} (Ctrl+C stops it)"
