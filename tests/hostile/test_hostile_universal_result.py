"""Hostile stored payloads and options around the universal attack's result: a `result.json`
whose fields were forged or damaged (rates outside [0, 1], a rate that is not the mean of the
per-prompt rows, a span of negative ids, a table without its columns, a baseline without its
rates, a curve that does not fit the steps) is refused with a `ValueError` naming the file and
the field; bad `evaluate` options are `ValueError`s naming the option."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import pytest

from analysis.attacks import UniversalAttack
from workbench.store import RunStore
from workbench.tasks import make_task


@pytest.fixture(scope="module")
def stored(zoo_model, tmp_path_factory):
    model = zoo_model("tiny-ioi")
    attack = UniversalAttack(objective="flip", steps=1, n_adv=2, batch_size=8, seed=0)
    attack.fit(model, make_task("ioi", model, n=2, seed=7), task_seed=7)
    held = make_task("ioi", model, n=3, seed=1000)
    result = attack.evaluate(model, held, task_seed=1000, baseline_draws=2, n_boot=20)
    root = tmp_path_factory.mktemp("universal") / "store"
    run_id = RunStore(root).save(result)
    return {"model": model, "attack": attack, "held": held, "root": root, "run_id": run_id}


def _interval(fields: dict, name: str, **change) -> None:
    fields[name] = {**fields[name], **change}


FORGERIES = {
    "rate-above-one": (
        lambda f: _interval(f, "success", estimate=1.5),
        "success: rate 1.5 is outside \\[0, 1\\]",
    ),
    "rate-not-the-row-mean": (  # 3 prompts: a true mean is 0, 1/3, 2/3 or 1, never 0.5
        lambda f: _interval(f, "success", estimate=0.5, low=0.0, high=1.0),
        "success: estimate 0.5 is not the per-prompt mean",
    ),
    "bounds-reversed": (
        lambda f: _interval(f, "baseline_rate", low=0.9, high=0.1),
        "baseline_rate: interval \\[0.9, 0.1\\] is not a range of rates",
    ),
    "interval-missing-keys": (
        lambda f: f.update(success_before={"estimate": 0.5}),
        "success_before: need an interval with estimate, low, high",
    ),
    "interval-other-prompt-count": (
        lambda f: _interval(f, "success", n_prompts=99),
        "success: n_prompts 99 differs from the 3 rows",
    ),
    "negative-span-token": (
        lambda f: f.update(span_tokens={"$t": "tuple", "items": [-4, 5]}),
        "span_tokens: need an integer >= 0, got -4",
    ),
    "empty-span": (
        lambda f: f.update(span_tokens={"$t": "tuple", "items": []}),
        "span_tokens: empty span",
    ),
    "span-text-a-number": (lambda f: f.update(span_text=7), "span_text: need text"),
    "prompts-not-a-table": (lambda f: f.update(prompts=[1, 2]), "prompts: need a table"),
    "baseline-without-rates": (
        lambda f: f.update(baseline_rate=None),
        "baseline: the baseline table and its two rates come together",
    ),
    "curve-too-long": (
        lambda f: f.update(curve={"$t": "tuple", "items": [1.0, 2.0, 3.0, 4.0]}),
        "curve: 4 values for 1 steps",
    ),
    "search-rate-text": (
        lambda f: f.update(search_success_rate="all"),
        "search_success_rate: need a rate in \\[0, 1\\], got 'all'",
    ),
    "negative-seed": (
        lambda f: f.update(held_out_seed=-1),
        "held_out_seed: need an integer >= 0, got -1",
    ),
    "zero-search-prompts": (lambda f: f.update(n_search=0), "n_search: need an integer >= 1"),
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_forged_result_json_is_refused_naming_file_and_field(stored, tmp_path, forgery):
    change, message = FORGERIES[forgery]
    root = tmp_path / "store"
    shutil.copytree(stored["root"], root)
    path = root / "runs" / stored["run_id"] / "result.json"
    body = json.loads(path.read_text())
    change(body["fields"])
    path.write_text(json.dumps(body))
    with pytest.raises(ValueError) as err:
        RunStore(root).load_result(stored["run_id"])
    text = str(err.value)
    assert text.startswith(f"cannot read {path}: universal attack result: "), text
    assert re.search(message, text), text


def test_a_prompts_table_without_its_columns_is_refused(stored):
    good = RunStore(stored["root"]).load_result(stored["run_id"])
    with pytest.raises(ValueError, match="prompts: missing column\\(s\\) success"):
        dataclasses.replace(good, prompts=good.prompts.drop(columns=["success"]))
    with pytest.raises(ValueError, match="baseline: its prompts are not the held-out prompts"):
        dataclasses.replace(good, baseline=good.baseline.iloc[::-1].reset_index(drop=True))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline_draws": -1}, "baseline_draws: must be >= 0 (an integer), got -1"),
        ({"n_boot": 0}, "n_boot: must be >= 1 (an integer), got 0"),
        ({"boot_seed": 1.5}, "boot_seed: must be >= 0 (an integer), got 1.5"),
        ({"task_seed": -3}, "task_seed: must be >= 0 (an integer), got -3"),
    ],
)
def test_bad_evaluate_options_are_value_errors_naming_them(stored, kwargs, message):
    with pytest.raises(ValueError) as err:
        stored["attack"].evaluate(stored["model"], stored["held"], **kwargs)
    assert message in str(err.value)


UNIVERSAL_OUTPUTS = [
    "attacks-uni-span.children",
    "attacks-uni-rates.children",
    "attacks-uni-rates-figure.figure",
    "attacks-uni-outcomes.children",
    "attacks-uni-error.children",
]
SESSION = "b2c3d4e5" * 4


def _own_run(stored, *, session: str, forge: bool) -> str:
    """The stored result saved again in the dashboard's store as `session`'s run."""
    from workbench.ui import state
    from workbench.ui.shared import SESSION_KEY

    result = RunStore(stored["root"]).load_result(stored["run_id"])
    store = state.run_store()
    run_id = store.save(result, config={**result.config, SESSION_KEY: session})
    if forge:
        path = store.runs_dir / run_id / "result.json"
        body = json.loads(path.read_text())
        body["fields"]["span_tokens"] = {"$t": "tuple", "items": [-1]}
        path.write_text(json.dumps(body))
    return run_id


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"run_id": "no-such-run"}, "run: 'no-such-run' is not a universal_attack run of this"),
        ({"error": "boom"}, "boom"),
        ([1, 2], "universal attack: the job's answer names no run"),
        ("other-session", "is not a universal_attack run of this session"),
        ("forged", "universal attack result: span_tokens: need an integer >= 0, got -1"),
    ],
)
def test_the_universal_panel_answers_forged_jobs_with_its_alert(app, client, stored, job, message):
    from workbench.ui.callback_client import post_callback

    if job in ("other-session", "forged"):
        owner = "c3d4e5f6" * 4 if job == "other-session" else SESSION
        job = {"run_id": _own_run(stored, session=owner, forge=job == "forged")}
    answer = post_callback(
        app, client, UNIVERSAL_OUTPUTS, {"attacks-uni-job.data": job}, {"session-id.data": SESSION}
    )
    response = answer["response"]
    assert message in json.dumps(response["attacks-uni-error"]["children"])
    assert response["attacks-uni-rates"]["children"] is None
