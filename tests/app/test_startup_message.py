"""The line `serve()` prints once the dashboard is ready: the address a browser should open."""

from __future__ import annotations

import pytest

from workbench.ui.app import dashboard_url, startup_message


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8050, "http://127.0.0.1:8050/"),
        ("localhost", 9000, "http://localhost:9000/"),
        ("::1", 8050, "http://[::1]:8050/"),
        ("0.0.0.0", 8050, "http://127.0.0.1:8050/"),
        ("::", 8051, "http://127.0.0.1:8051/"),
        ("192.168.1.7", 80, "http://192.168.1.7:80/"),
    ],
)
def test_the_startup_message_names_where_the_dashboard_is(host, port, url):
    assert dashboard_url(host, port) == url
    assert startup_message(host, port).startswith(f"Attention Workbench: dashboard ready at {url}")
