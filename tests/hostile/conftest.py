"""Shared fixtures of the hostile-input tests: one dashboard per test module.

`app` is a real dashboard (`workbench.ui.app.create_app`) with tiny-ioi preloaded and its own
run store and job folder; `client` is its Flask test client. A module that needs another
configuration defines its own `app`, which replaces this one for that module.
"""

from __future__ import annotations

import pytest

from workbench.ui.app import create_app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """A dashboard with tiny-ioi preloaded and a fresh store and job folder (per module)."""
    return create_app(
        preload=["tiny-ioi"],
        store=str(tmp_path_factory.mktemp("store")),
        jobs_folder=str(tmp_path_factory.mktemp("jobs")),
    )


@pytest.fixture(scope="module")
def client(app):
    """The Flask test client of `app`."""
    return app.server.test_client()
