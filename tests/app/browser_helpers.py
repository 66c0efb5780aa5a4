"""Waiting helpers for the browser tests (plain functions, imported by the test modules)."""

from __future__ import annotations


def wait_for_figure(duo, graph_id: str, predicate, timeout: float = 30) -> dict:
    """The plotly figure in `#graph_id` once `predicate(figure)` holds (figure = the graph
    div's `data`/`layout` as seen by the browser; plotly's base64 arrays decoded to lists)."""
    from selenium.webdriver.support.ui import WebDriverWait

    script = f"""
        const el = document.querySelector('#{graph_id} .js-plotly-plot');
        if (!el || !el.data) return null;
        const plain = v => v && v._inputArray !== undefined ? plain(v._inputArray)
            : ArrayBuffer.isView(v) ? Array.from(v) : Array.isArray(v) ? v.map(plain) : v;
        const data = el.data.map(t => {{
            const out = {{type: t.type, name: t.name}};
            for (const k of ['x', 'y', 'z', 'text']) if (t[k] !== undefined) out[k] = plain(t[k]);
            return out;
        }});
        return {{data: data, layout: JSON.parse(JSON.stringify(el.layout))}};
    """
    result = {}

    def ready(driver):
        figure = driver.execute_script(script)
        if figure and predicate(figure):
            result["figure"] = figure
            return True
        return False

    WebDriverWait(duo.driver, timeout).until(ready)
    return result["figure"]


def wait_until(duo, condition, timeout: float = 15, message: str = "condition"):
    """Wait until `condition()` is truthy and return its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(duo.driver, timeout).until(lambda _: condition(), message=message)


def save_page_screenshot(duo, path) -> None:
    """A screenshot of the whole page (the window grown to the document's height)."""
    driver = duo.driver
    width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
    full = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(full + 140, height), 6000))
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(width, height)
