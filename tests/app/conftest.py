"""Browser-test setup: dash[testing]'s `dash_duo` driving Debian's headless chromium.

`make test` (`scripts/install.sh --test`) installs chromium and chromium-driver. Where
/usr/bin/chromium is missing, every `browser` test is skipped with the reason instead of
erroring in the fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.chrome.options import Options

CHROMIUM = Path("/usr/bin/chromium")
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"


def pytest_setup_options() -> Options:
    """The one chromium `Options` object dash_duo starts its browser with."""
    options = Options()
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ):
        options.add_argument(arg)
    options.binary_location = str(CHROMIUM)
    return options


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: run `scripts/install.sh --test`")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def screenshot_dir() -> Path:
    """Where browser tests save screenshots (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def export_server() -> None:
    """The kaleido export server, started once outside any test (dash_duo ends threads a
    test starts)."""
    from workbench.export import start_server

    start_server()


@pytest.fixture(scope="module")
def module_duo(tmp_path_factory):
    """One server thread and one browser shared by a whole test module (dash_duo restarts
    both for every test). Start the module's app with `module_duo.start_server(app)`."""
    from dash.testing.application_runners import ThreadedRunner
    from dash.testing.composite import DashComposite

    downloads = tmp_path_factory.mktemp("downloads")
    with (
        ThreadedRunner() as server,
        DashComposite(
            server=server,
            browser="Chrome",
            headless=True,
            options=[pytest_setup_options()],
            download_path=str(downloads),
        ) as duo,
    ):
        yield duo


@pytest.fixture(scope="module")
def duo(module_duo, tmp_path_factory, export_server):
    """`module_duo` serving `create_app(preload=["tiny-ioi"])` with a fresh run store."""
    from workbench.ui import create_app

    store = tmp_path_factory.mktemp("store")
    module_duo.start_server(create_app(preload=["tiny-ioi"], store=str(store)))
    return module_duo
