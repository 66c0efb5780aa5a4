"""The universal attack's result on tiny-ioi: intervals that equal `circuits.bootstrap`'s on the
per-prompt rows, the baseline rows that `random_baseline` gives independently, an exact round
trip through the run store shown by `workbench runs show`, and `workbench attack --universal
--save` storing a run that reads back to the printed span and rates."""

from __future__ import annotations

import json

import pytest

from analysis.attacks import UniversalAttack, UniversalAttackResult, random_baseline
from circuits.bootstrap import bootstrap_interval
from workbench.cli import main
from workbench.results import Result, result_type
from workbench.store import RunStore
from workbench.tasks import make_task

N_BOOT = 50


@pytest.fixture(scope="module")
def fitted(zoo_model):
    model = zoo_model("tiny-ioi")
    search = make_task("ioi", model, n=2, seed=7)
    held = make_task("ioi", model, n=4, seed=1000)
    attack = UniversalAttack(objective="flip", steps=2, n_adv=3, batch_size=8, seed=0)
    attack.fit(model, search, task_seed=7)
    result = attack.evaluate(model, held, task_seed=1000, baseline_draws=4, n_boot=N_BOOT)
    return model, held, attack, result


def test_result_holds_span_counts_seeds_and_bootstrap_intervals(fitted):
    model, held, attack, result = fitted
    assert isinstance(result, UniversalAttackResult) and result_type("universal_attack") is type(
        result
    )
    assert result.span_tokens == tuple(attack.span_.tolist()) and len(result.span_tokens) == 3
    assert result.span_text == model.tokenizer.decode(list(result.span_tokens))
    assert (result.n_search, result.search_seed) == (2, 7)
    assert (result.n_held_out, result.held_out_seed) == (4, 1000)
    assert list(result.to_frame()["index"]) == [0, 1, 2, 3]
    for name, column in (("success", "success"), ("success_before", "success_before")):
        values = result.prompts[column].astype(float).tolist()
        reference = bootstrap_interval(values, n_boot=N_BOOT, seed=0).to_dict()
        assert getattr(result, name) == reference
    table = random_baseline(model, attack, held, n_draws=4, seed=0)
    assert result.baseline[["index", "successes", "rate"]].equals(
        table[["index", "successes", "rate"]]
    )
    reference = bootstrap_interval(table["rate"].tolist(), n_boot=N_BOOT, seed=0).to_dict()
    assert result.baseline_rate == reference
    rates = result.rates()
    assert list(rates["name"]) == ["success", "success_before", "baseline_rate", "baseline_any"]
    assert (rates["low"] <= rates["estimate"]).all() and (rates["estimate"] <= rates["high"]).all()
    figure = result.plot()
    assert "95% percentile bootstrap intervals" in figure.layout.title.text
    assert figure.layout.xaxis.title.text == "success rate (share of held-out prompts)"
    assert list(figure.data[0].x) == list(rates["estimate"])
    assert list(figure.data[0].y) == list(rates["label"])


def test_round_trip_through_the_store_and_runs_show(fitted, tmp_path, capsys):
    result = fitted[3]
    assert Result.from_json(result.to_json()).to_json() == result.to_json()
    store = RunStore(tmp_path / "store")
    run_id = store.save(result)
    back = store.load_result(run_id)
    assert isinstance(back, UniversalAttackResult) and back.to_json() == result.to_json()
    assert back.baseline.equals(result.baseline) and back.success == result.success
    assert store.load_table(run_id, "rates").equals(result.rates())
    capsys.readouterr()
    assert main(["runs", "--store", str(tmp_path / "store"), "show", run_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["kind"] == "universal_attack" and shown["model"] == "tiny-ioi"
    assert shown["tables"] == ["baseline", "main", "rates"]
    config = shown["config"]
    assert (config["n_search"], config["search_seed"]) == (2, 7)
    assert (config["n_held_out"], config["held_out_seed"]) == (4, 1000)


def test_cli_universal_save_stores_the_printed_result(tmp_path, capsys):
    store = tmp_path / "store"
    argv = ["attack", "tiny-ioi", "--quiet", "--json", "--universal", "--save"]
    argv += ["--store", str(store), "--search-prompts", "2", "--n-prompts", "3"]
    argv += ["--steps", "1", "--batch-size", "8", "--baseline-draws", "2", "--n-boot", "30"]
    capsys.readouterr()
    assert main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    back = RunStore(store).load_result(payload["run_id"])
    assert isinstance(back, UniversalAttackResult)
    assert back.span_text == payload["span"] and list(back.span_tokens) == payload["span_tokens"]
    assert back.success == payload["success"] and back.n_held_out == payload["n_prompts"] == 3
    assert back.baseline_rate == payload["baseline"]["success_rate_per_draw"]
    assert (back.search_seed, back.held_out_seed) == (7, 1000)


def test_per_prompt_result_keeps_its_baseline_and_the_page_line_shows_both_rates(fitted, tmp_path):
    from analysis.attacks import TokenAttack
    from workbench.ui.attack_universal import RANDOM_DRAWS, baseline_line, with_baseline

    model = fitted[0]
    held = make_task("ioi", model, n=2, seed=1000)
    attack = TokenAttack(objective="flip", steps=1, n_adv=2, batch_size=8, seed=0)
    result = with_baseline(model, attack, held, attack.fit(model, held).result_)
    table = random_baseline(model, attack, held, n_draws=RANDOM_DRAWS, seed=0)
    assert result.baseline["rate"].tolist() == table["rate"].tolist()
    store = RunStore(tmp_path / "store")
    back = store.load_result(store.save(result))
    assert back.baseline.equals(result.baseline) and "baseline" in back.tables()
    text = baseline_line(back).children
    for values in (back.prompts["success"], back.baseline["rate"]):
        ci = bootstrap_interval([float(v) for v in values], n_boot=1000, seed=0)
        assert f"{ci.estimate:.1%} (95% interval {ci.low:.1%} – {ci.high:.1%})" in text
