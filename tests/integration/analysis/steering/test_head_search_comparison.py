"""The held-out comparison table of a real head search (tiny-ioi, `ioi_logprob`): its means
and intervals equal `HeadSearchResult.intervals` and a naive numpy percentile bootstrap of the
paired HeadHunter-minus-setting differences; the figure plots those means with error bars."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.steering import HeadHunter, comparison_figure, heldout_comparison, split_rows


@pytest.fixture(scope="module")
def result(zoo_model):
    model = zoo_model("tiny-ioi")
    select, heldout = split_rows(12, seed=0)
    hunter = HeadHunter(w=1.5, rounds=1, n_random=2).fit(
        model, "ioi_logprob", objective_options={"n": 12}, select=select, heldout=heldout
    )
    assert hunter.heads_  # a comparison with random heads needs chosen heads
    return hunter.result_


def naive_interval(values: np.ndarray, n_boot: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(n_boot)]
    return values.mean(), *np.quantile(means, [0.025, 0.975])


def test_table_matches_the_result_intervals_and_a_naive_bootstrap(result):
    table = heldout_comparison(result).set_index("setting")
    reference = result.intervals().set_index("setting")
    assert list(table.index) == ["no_guidance", "searched_heads", "layer_guidance", "random_heads"]
    for column in ("mean", "low", "high", "diff_vs_none", "diff_low", "diff_high", "n_prompts"):
        np.testing.assert_allclose(table[column], reference.loc[table.index, column])
    per_prompt = result.per_prompt()
    for setting in ("no_guidance", "layer_guidance", "random_heads"):
        diff = (per_prompt["searched_heads"] - per_prompt[setting]).to_numpy()
        expected = naive_interval(diff)
        got = table.loc[setting, ["headhunter_minus", "hh_low", "hh_high"]].to_numpy(float)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert np.isnan(table.loc["searched_heads", "headhunter_minus"])
    assert table.loc["layer_guidance", "heads"] == f"all heads of layer {result.best_layer}"


def test_figure_plots_the_means_with_their_intervals(result):
    table = heldout_comparison(result)
    fig = comparison_figure(result, table)
    trace = fig.data[0]
    np.testing.assert_allclose(trace.y, table["mean"])
    np.testing.assert_allclose(np.asarray(trace.y) + trace.error_y.array, table["high"])
    np.testing.assert_allclose(np.asarray(trace.y) - trace.error_y.arrayminus, table["low"])
    assert "(nats)" in fig.layout.yaxis.title.text
    assert fig.layout.xaxis.title.text == "guidance setting"
