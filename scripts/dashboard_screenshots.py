"""Take one screenshot per dashboard page for the docs (docs/screenshots/<page>.png).

Usage: `OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python scripts/dashboard_screenshots.py
[--out DIR] [--pages attention heads ...]`. Starts the dashboard with the bundled zoo models
(a temporary run store, access log off) on a free local port, opens each page in Debian's
headless chromium (/usr/bin/chromium with /usr/bin/chromedriver) with the IOI prompt on
tiny-ioi selected in the URL, waits until every figure on the page has been drawn and no
callback is loading, and saves the 1280x900 viewport (device scale 1) as a PNG. Exits 1 when a
page's figures never appeared (the screenshot is still saved, and the page named on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WIDTH, HEIGHT = 1280, 900
PROMPT = "When Mary and John went to the store , John gave a drink to"
SELECTION = {"model": "tiny-ioi", "prompt": PROMPT, "layer": 1, "head": 2}
READY = """
    const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
    const loading = document.querySelector('[data-dash-is-loading="true"]');
    const content = document.querySelector('#_pages_content');
    return !!content && content.children.length > 0 && !loading
        && plots.every(p => p._fullLayout && Array.isArray(p.data));
"""


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--window-size={WIDTH},{HEIGHT}",
        "--hide-scrollbars",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
    ):
        options.add_argument(arg)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    return driver


def _serve(store: str, jobs_folder: str) -> tuple[str, object]:
    """The dashboard (every bundled model) on a free port in a daemon thread."""
    from werkzeug.serving import make_server

    from workbench.ui import create_app
    from workbench.ui.app import quiet_access_log

    quiet_access_log()
    app = create_app(store=store, jobs_folder=jobs_folder)
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR header."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def shoot(driver, url: str, path: Path, timeout: float) -> bool:
    """Open `url`, wait for its figures (True) or `timeout` seconds (False), save `path`."""
    from selenium.common.exceptions import TimeoutException

    from tests.app.browser_helpers import wait_until

    driver.get(url)
    try:
        wait_until(SimpleNamespace(driver=driver), lambda: driver.execute_script(READY), timeout)
        time.sleep(1.0)  # let plotly finish its transitions
        wait_until(SimpleNamespace(driver=driver), lambda: driver.execute_script(READY), timeout)
        ready = True
    except TimeoutException:
        ready = False
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))
    return ready


def main(argv: list[str] | None = None) -> int:
    from workbench.ui.pages import PAGES

    names = {page.__name__.rsplit(".", 1)[-1]: page.PAGE["path"] for page in PAGES}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"), help="folder")
    parser.add_argument("--pages", nargs="+", choices=sorted(names), default=list(names))
    parser.add_argument("--timeout", type=float, default=90, help="seconds per page")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    with tempfile.TemporaryDirectory(prefix="workbench-shots-") as tmp:
        base, server = _serve(f"{tmp}/store", f"{tmp}/jobs")
        driver = _browser()
        try:
            for name in args.pages:
                url = f"{base}{names[name]}?{urllib.parse.urlencode(SELECTION)}"
                path = out / f"{name}.png"
                ok = shoot(driver, url, path, args.timeout)
                width, height = png_size(path)
                kib = path.stat().st_size / 1024
                print(
                    f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
                    f"{width}x{height}, {kib:.0f} KiB{'' if ok else ' (figures not ready)'}"
                )
                if not ok:
                    failed.append(name)
        finally:
            driver.quit()
            server.shutdown()
    if failed:
        print(f"figures never appeared on: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
