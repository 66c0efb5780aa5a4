"""The models page in a real browser: zoo rows with their dimensions, no console errors.

Trained zoo decoders show their dimensions; untrained ones are rows marked "not trained".
Saves `artifacts/screenshots/models.png`.
"""

from __future__ import annotations

import pytest

from tests.app.browser_helpers import save_page_screenshot
from workbench.ui import create_app
from workbench.zoo import ZOO

pytestmark = pytest.mark.browser


def test_models_page_lists_the_zoo(dash_duo, screenshot_dir):
    dash_duo.start_server(create_app())
    dash_duo.wait_for_page(dash_duo.server_url + "/models")
    dash_duo.wait_for_element("#models-table", timeout=20)

    dash_duo.wait_for_text_to_equal("#models-minilm-n_layers", "6")
    dash_duo.wait_for_text_to_equal("#models-minilm-n_heads", "12")
    assert dash_duo.find_element("#models-minilm-d_model").text == "384"
    assert "not trained" not in dash_duo.find_element("#models-minilm-metrics").text

    for name in ("tiny-ioi", "tiny-induction"):
        layers = dash_duo.find_element(f"#models-{name}-n_layers").text
        metrics = dash_duo.find_element(f"#models-{name}-metrics").text
        if ZOO[name].is_available():
            assert layers.isdigit() and int(layers) >= 1
            assert "not trained" not in metrics
        else:
            assert layers == "—"
            assert "not trained" in metrics

    save_page_screenshot(dash_duo, screenshot_dir / "models.png")
    assert dash_duo.get_logs() == []
