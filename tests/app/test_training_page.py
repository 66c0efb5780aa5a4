"""Training page in a real browser: "Measure" on tiny-induction draws the loss-plateau view
whose loss and repetition points equal `analysis.loss_plateau`, and the entropy-vs-bound
figures whose points equal `analysis.entropy_bound`; a model without a history gets the alert.

Saves `artifacts/screenshots/training.png`.
"""

from __future__ import annotations

import urllib.parse

import numpy as np
import pytest

from analysis.training_dynamics import entropy_bound, loss_plateau
from tests.app.browser_helpers import save_page_screenshot, wait_for_figure

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def open_page(duo, model: str):
    duo.wait_for_page(f"{duo.server_url}/training?{urllib.parse.urlencode({'model': model})}")
    duo.wait_for_element("#training-run", timeout=20).click()


def test_measure_draws_the_library_numbers(duo, zoo_model, screenshot_dir):
    open_page(duo, "tiny-induction")
    plateau = wait_for_figure(duo, "training-plateau", lambda f: len(f["data"]) >= 3, timeout=120)
    expected = loss_plateau(zoo_model("tiny-induction"))
    loss = next(t for t in plateau["data"] if t["name"] == "loss")
    np.testing.assert_allclose(loss["x"], expected.curve.step)
    np.testing.assert_allclose(loss["y"], expected.curve.loss, rtol=1e-6)
    rep = next(t for t in plateau["data"] if t["name"] == "repetition")
    np.testing.assert_allclose(rep["y"], expected.curve.repetition, rtol=1e-6)
    bound = wait_for_figure(duo, "training-bound", lambda f: len(f["data"]) >= 2)
    heads = entropy_bound(zoo_model("tiny-induction")).per_head()
    final = next(t for t in bound["data"] if t["name"] == "final")
    part = heads[heads.checkpoint == "final"]
    np.testing.assert_allclose(final["x"], part.bound_logits, rtol=1e-6)
    np.testing.assert_allclose(final["y"], part.entropy, rtol=1e-6)
    wait_for_figure(duo, "training-bound-steps", lambda f: len(f["data"]) == 32)
    save_page_screenshot(duo, screenshot_dir / "training.png")
    assert duo.get_logs() == []


def test_model_without_history_gets_the_alert(duo):
    open_page(duo, "planted-induction")
    duo.wait_for_contains_text("#training-alert", "has no training history", timeout=30)
    assert duo.get_logs() == []
