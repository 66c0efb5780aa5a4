"""The Guidance page's head search with a chosen objective, in a real browser.

Default objective (`ioi_logprob`, a score of the guided output): the searched heads fill the
Heads field and the held-out comparison (figure with bootstrap error bars and a y axis naming
the unit, and the table) equals `HeadHunter` run here on the same split, with the
no-guidance mean checked against the plain model's own log-probabilities. Then `ioi_top1`
(tiny-ioi is always right, so no head can help): a visible "selected no heads" note, the
Heads field cleared, no crash. Saves `artifacts/screenshots/guidance_objectives.png`.
"""

from __future__ import annotations

import urllib.parse

import numpy as np
import pytest
import torch

from analysis.steering.head_hunter import HeadHunter, split_rows
from analysis.steering.head_search_comparison import heldout_comparison
from analysis.steering.objectives import make_objective
from tests.app.browser_helpers import save_page_screenshot, wait_for_figure, wait_until
from workbench.tasks import make_task

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PROMPT = "When Mary and John went to the store , John gave a drink to"


def pills(duo) -> list[str]:
    return [pill.text for pill in duo.find_elements(".mantine-MultiSelect-pill")]


def test_search_with_an_objective_shows_the_heldout_comparison(duo, zoo_model, screenshot_dir):
    query = urllib.parse.urlencode({"model": "tiny-ioi", "prompt": PROMPT})
    duo.wait_for_page(f"{duo.server_url}/guidance?{query}")
    duo.wait_for_contains_text("#guidance-objective-help", "nats", timeout=20)
    duo.find_element("#guidance-run").click()
    duo.wait_for_element("#guidance-comparison-layer_guidance", timeout=120)

    model = zoo_model("tiny-ioi")
    objective = make_objective("ioi_logprob", model, n=16)
    select, heldout = split_rows(objective.n_prompts, seed=0)
    hunter = HeadHunter(method="identity", u=1.0, w=1.5, rounds=2).fit(
        model, objective, select=select, heldout=heldout
    )
    expected = heldout_comparison(hunter.result_)
    assert hunter.heads_, "the reference search should select heads on tiny-ioi"
    assert wait_until(duo, lambda: pills(duo)) == [str(h) for h in hunter.heads_]

    figure = wait_for_figure(duo, "guidance-comparison", lambda f: f["data"] and f["data"][0]["y"])
    assert figure["data"][0]["x"] == expected["label"].tolist()
    np.testing.assert_allclose(figure["data"][0]["y"], expected["mean"], rtol=1e-6)
    assert figure["layout"]["yaxis"]["title"]["text"].startswith("log p(IO)")
    assert "(nats)" in figure["layout"]["yaxis"]["title"]["text"]
    task = make_task("ioi", model, n=16, seed=0)  # the objective's prompts
    with torch.no_grad():  # no guidance, independently: log-softmax of the plain logits
        logits = model(task.clean_tokens[heldout].to(model.device)).cpu().double()
    rows = torch.arange(len(heldout))
    final = logits[rows, task.answer_pos[heldout]]  # [batch, d_vocab]
    plain = torch.log_softmax(final, -1)[rows, task.io_token[heldout]].mean()
    np.testing.assert_allclose(figure["data"][0]["y"][0], float(plain), rtol=1e-4, atol=1e-7)
    row = duo.find_element("#guidance-comparison-searched_heads").text
    assert ",".join(str(h) for h in hunter.heads_) in row
    assert duo.find_element("#guidance-comparison-random_heads").text.startswith("random heads")

    duo.find_element("#guidance-objective").click()
    option = wait_until(
        duo,
        lambda: [o for o in duo.find_elements("[role=option]") if o.text == "ioi_top1"],
        message="objective options listed",
    )
    option[0].click()
    duo.wait_for_contains_text("#guidance-objective-help", "greedy answer is IO", timeout=10)
    duo.find_element("#guidance-run").click()
    duo.wait_for_contains_text("#guidance-search-note", "HeadHunter selected no heads", timeout=120)
    wait_until(duo, lambda: pills(duo) == [], message="heads cleared")
    assert "none selected" in duo.find_element("#guidance-comparison-searched_heads").text
    save_page_screenshot(duo, screenshot_dir / "guidance_objectives.png")
    assert duo.get_logs() == []
