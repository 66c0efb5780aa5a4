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
