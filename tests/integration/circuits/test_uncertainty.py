"""Bootstrap intervals over prompts in the circuit results, on tiny-ioi (8 prompts).

The per-prompt numbers are checked against independent runs (each prompt patched alone, each
prompt traced alone), and the intervals against a re-computation from the stored per-prompt
table with numpy alone; the new result types (`SmallestCircuitResult`, `AcdcSweepRoc`) keep
the old dict / frame access with a `DeprecationWarning`.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from circuits import (
    acdc_sweep_roc,
    acdc_tau_sweep,
    completeness,
    faithfulness,
    faithfulness_curve,
    patched_metric,
    per_prompt_scores,
    roc,
    smallest_faithful_circuit,
    trace,
)
from circuits.task_batches import task_slice
from workbench.results import Result


@pytest.fixture(scope="module")
def eap(ioi):
    model, task = ioi
    return trace(model, task, method="eap")


@pytest.fixture(scope="module")
def found(ioi, eap):
    model, task = ioi
    return faithfulness(model, task, eap.prune(top_n=20), n_boot=300, seed=4)


def _naive_ratio_interval(table, column, n_boot, seed, share):
    """Percentile interval of a ratio of means, numpy only, from the stored per-prompt table."""
    draws = np.random.default_rng(seed).integers(0, len(table), size=(n_boot, len(table)))
    clean, corrupted, inner = (table[c].to_numpy() for c in ("clean", "corrupted", column))
    stats = []
    for rows in draws:
        c, k, v = clean[rows].mean(), corrupted[rows].mean(), inner[rows].mean()
        stats.append((v - k) / (c - k) if share == "faithfulness" else (c - v) / (c - k))
    return np.quantile(stats, [0.025, 0.975])


def test_faithfulness_per_prompt_numbers_are_each_prompt_patched_alone(ioi, eap, found):
    model, task = ioi
    table = found.per_prompt
    assert list(table.columns) == ["prompt", "clean", "corrupted", "circuit"]
    assert len(table) == task.n_prompts == found.n_prompts
    outside = ~eap.prune(top_n=20).included
    for i in (0, 5):  # a prompt run alone gives the same metric as its row
        alone = patched_metric(model, task_slice(task, i, i + 1), outside)
        assert table.circuit[i] == pytest.approx(alone, abs=1e-4)
        assert table.clean[i] == pytest.approx(float(task_slice(task, i, i + 1).evaluate(model)[0]))
    assert table.circuit.mean() == pytest.approx(found.circuit_metric, abs=1e-9)
    assert table.clean.mean() == pytest.approx(found.clean_metric, abs=1e-5)


def test_faithfulness_interval_is_a_percentile_bootstrap_of_a_ratio_of_means(found):
    low, high = found.faithfulness_ci
    assert (found.n_boot, found.bootstrap_seed, found.ci_level) == (300, 4, 0.95)
    ref = _naive_ratio_interval(found.per_prompt, "circuit", 300, 4, "faithfulness")
    assert (low, high) == pytest.approx(tuple(ref), abs=1e-9)
    assert low < found.faithfulness < high
    frame = found.to_frame()
    assert (frame.faithfulness_low[0], frame.faithfulness_high[0]) == (low, high)
    assert "per_prompt" not in frame.columns and set(found.tables()) == {"main", "per_prompt"}
    assert str(round(low, 3)) in found.plot().layout.title.text
    same = Result.from_json(found.to_json())
    assert same.faithfulness_ci == (low, high) and same.per_prompt.equals(found.per_prompt)


def test_intervals_are_seeded_and_optional(ioi, eap, found):
    model, task = ioi
    small = eap.prune(top_n=20)
    again = faithfulness(model, task, small, n_boot=300, seed=4)
    assert again.faithfulness_ci == found.faithfulness_ci
    other = faithfulness(model, task, small, n_boot=300, seed=5)
    assert other.faithfulness_ci != found.faithfulness_ci
    none = faithfulness(model, task, small, n_boot=0)
    assert none.faithfulness_ci is None and none.bootstrap_seed is None
    assert none.faithfulness == found.faithfulness


def test_completeness_interval(ioi, eap):
    model, task = ioi
    kept = completeness(model, task, eap.prune(top_n=20), n_boot=200, seed=1)
    ref = _naive_ratio_interval(kept.per_prompt, "without_circuit", 200, 1, "completeness")
    assert kept.completeness_ci == pytest.approx(tuple(ref), abs=1e-9)


def test_curve_band_uses_the_same_resamples_at_every_size(ioi, eap, found):
    model, task = ioi
    curve = faithfulness_curve(model, task, eap, sizes=[0, 20, 110], n_boot=300, seed=4)
    frame = curve.to_frame()
    assert {"faithfulness_low", "faithfulness_high"} <= set(frame.columns)
    row = frame[frame.n_edges == 110].iloc[0]  # the whole graph: every resample gives 1
    assert row.faithfulness_low == pytest.approx(1.0) and row.faithfulness_high == pytest.approx(1)
    fills = [t for t in curve.plot().data if getattr(t, "fill", None) == "tonexty"]
    assert len(fills) == 1 and curve.n_boot == 300
    no_band = faithfulness_curve(model, task, eap, sizes=[0, 20], n_boot=0)
    assert "faithfulness_low" not in no_band.to_frame().columns


def test_per_prompt_scores_average_to_the_batched_scores(ioi, eap):
    model, task = ioi
    rows = per_prompt_scores(model, task, eap)
    assert rows.shape == (task.n_prompts, len(eap.edges))
    scale = float(eap.scores.abs().max())
    assert float((rows.mean(0) - eap.scores).abs().max()) < 1e-5 * scale
    reference = eap.prune(top_n=30, connected=False)
    shuffled = eap.scores[
        torch.randperm(len(eap.edges), generator=torch.Generator().manual_seed(0))
    ]
    result = roc(eap, reference, per_prompt=rows, n_boot=100, seed=2)
    assert result.auc == 1.0  # the reference is the top 30 of the same scores
    low, high = result.auc_ci
    assert 0.5 < low <= high <= 1.0 and (result.n_prompts, result.n_boot) == (8, 100)
    assert "AUC 1.000 [" in result.plot().layout.annotations[0].text
    assert roc(eap, reference).auc_ci is None
    with pytest.raises(ValueError, match="per_prompt: its mean over prompts is not the scores"):
        roc(shuffled, reference, per_prompt=rows)
    with pytest.raises(ValueError, match="no per-prompt scores whose mean is its score"):
        per_prompt_scores(model, task, "acdc")


def test_smallest_circuit_is_a_result_with_an_interval(ioi, eap):
    model, task = ioi
    best = smallest_faithful_circuit(model, task, eap, target=0.8, n_boot=100, seed=0)
    assert best.kind == "smallest_circuit" and best.model_name == model.name
    with pytest.warns(DeprecationWarning, match=r"\['top_n'\] is deprecated"):
        assert best["top_n"] == best.top_n
    with pytest.warns(DeprecationWarning):
        assert best.get("edges") == best.edges
    low, high = best.faithfulness_ci
    assert low <= best.faithfulness <= high
    again = faithfulness(model, task, eap.prune(top_n=best.top_n), n_boot=100, seed=0)
    assert again.faithfulness_ci == pytest.approx((low, high))  # the same per-prompt numbers
    frame = best.to_frame()
    assert frame.chosen.sum() >= 1 and len(frame) == len(best.evaluations)
    assert Result.from_json(best.to_json()).edges == best.edges
    json.dumps(best.to_dict())  # JSON-ready, as the dict was


def test_acdc_sweep_roc_is_a_result_with_frame_access(ioi, eap):
    model, task = ioi
    sweep = acdc_tau_sweep(model, task, [0.5], distance="metric")  # one tau: one ACDC run
    reference = eap.prune(top_n=20, connected=False)
    curve = acdc_sweep_roc(sweep, reference)
    assert curve.kind == "acdc_sweep_roc" and list(curve.to_frame().tau) == [0.5]
    assert (curve.n_positive, curve.n_negative) == (20, 90)
    kept = sweep.scores >= 0.5
    with pytest.warns(DeprecationWarning, match="as a DataFrame is deprecated"):
        assert list(curve["n_edges"]) == [int(kept.sum())]
    with pytest.warns(DeprecationWarning):
        assert curve.tpr.iloc[0] == float((kept & reference.included).sum() / 20)
    with pytest.raises(AttributeError):
        curve.no_such_column  # noqa: B018
    assert len(curve.plot().data[0].x) == 3  # (0, 0), the tau's point, (1, 1)
    assert Result.from_json(curve.to_json()).points.equals(curve.points)


def test_cli_faithfulness_json_carries_the_intervals(ioi, eap, tmp_path, capsys):
    from workbench.cli import main

    path = tmp_path / "c.json"
    path.write_text(eap.prune(top_n=20).to_json())
    argv = ["faithfulness", "tiny-ioi", "ioi", "--circuit", str(path), "--n", "8", "--seed", "3"]
    capsys.readouterr()
    assert main([*argv, "--n-boot", "300", "--boot-seed", "4", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["faithfulness"] == pytest.approx(faithfulness_value(ioi, eap))
    assert payload["faithfulness_ci"] == pytest.approx(list(faithfulness_ci(ioi, eap)))
    assert len(payload["completeness_ci"]) == 2
    assert (payload["n_boot"], payload["bootstrap_seed"], payload["n_prompts"]) == (300, 4, 8)
    assert main([*argv, "--corruption", "abc"]) == 0
    assert "bootstrap over 8 prompts" in capsys.readouterr().out


def faithfulness_value(ioi, eap):
    return faithfulness(*ioi, eap.prune(top_n=20), n_boot=0).faithfulness


def faithfulness_ci(ioi, eap):
    return faithfulness(*ioi, eap.prune(top_n=20), n_boot=300, seed=4).faithfulness_ci


def test_cli_circuit_json_names_the_corruption_and_the_interval(capsys):
    from workbench.cli import main

    argv = ["circuit", "tiny-ioi", "ioi", "--method", "eap", "--n", "8", "--seed", "3"]
    capsys.readouterr()
    extra = ["--corruption", "abc", "--target-faithfulness", "0.5", "--n-boot", "50", "--json"]
    assert main([*argv, *extra]) == 0
    payload = json.loads(capsys.readouterr().out)
    best = payload["smallest_faithful"]
    assert payload["corruption"] == "abc" and best["n_boot"] == 50
    low, high = best["faithfulness_ci"]
    assert low <= best["faithfulness"] <= high and best["bootstrap_seed"] == 0
