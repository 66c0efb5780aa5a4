"""HeadHunter objectives measured on the guided output (`analysis.steering.objectives`).

References are independent of the code under test: batched guided decoding against the
one-prompt `guide` loop and, unguided, against HuggingFace's own greedy `generate`; text
metrics against hand-counted n-grams; the plain-model NLL against the HF model's logits in
float64; a generation objective's search score against `guide` run prompt by prompt; the
bootstrap against `circuits.bootstrap`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from analysis.steering.guidance import guide, guided_generate, guided_logits
from analysis.steering.head_hunter import (
    HeadHunter,
    HeadSearchResult,
    bootstrap_mean_interval,
    split_rows,
)
from analysis.steering.head_perturbation import HeadPerturbation, perturbed
from analysis.steering.objectives import (
    OBJECTIVES,
    induction_copy_objective,
    ioi_objective,
    make_objective,
)
from analysis.steering.text_metrics import distinct_n, plain_nll, seq_repetition
from circuits.bootstrap import bootstrap_interval
from workbench.results import Result
from workbench.tasks import make_task


def test_text_metrics_match_hand_counts():
    generated = torch.tensor([[1, 2, 3, 4, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10, 11, 12]])
    # row 0: 4-grams 1234 2341 3412 4123 1234 -> 4 distinct of 5; bigrams: 4 distinct of 7
    torch.testing.assert_close(seq_repetition(generated, n=4), torch.tensor([0.2, 0.0]).double())
    torch.testing.assert_close(distinct_n(generated, n=2), torch.tensor([4 / 7, 1.0]).double())
    short = torch.tensor([[3, 3]])  # no 4-gram at all: nothing repeated
    assert float(seq_repetition(short, n=4)[0]) == 0.0 and float(distinct_n(short, n=4)[0]) == 1.0


def test_plain_nll_matches_the_hf_model_in_float64(zoo_model):
    model = zoo_model("tiny-induction")
    prompts = torch.tensor([[1, 50, 60, 70], [1, 80, 90, 100]])
    generated = torch.tensor([[11, 12, 13], [14, 15, 16]])
    hf = model.bridge.original_model
    with torch.no_grad():
        logits = hf(torch.cat([prompts, generated], 1)).logits.double()  # [batch, pos, d_vocab]
    log_p = logits.log_softmax(-1)
    expected = torch.stack(
        [
            -torch.stack([log_p[b, 3 + i, generated[b, i]] for i in range(3)]).mean()
            for b in range(2)
        ]
    )
    torch.testing.assert_close(plain_nll(model, prompts, generated), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_batched_guided_generation_equals_the_one_prompt_loop(zoo_model, alpha):
    model = zoo_model("tiny-induction")
    prompts = ["def f(x):\n    return", "import os\nimport sy"]
    tokens = [model.to_tokens(p)[0] for p in prompts]
    width = min(len(t) for t in tokens)
    batch = torch.stack([t[:width] for t in tokens])  # [2, width] equal-length prompts
    p = HeadPerturbation(heads=((1, 4), (0, 2)), method="identity")
    got = guided_generate(model, batch, p, w=2.0, alpha=alpha, max_new_tokens=5)
    for row in range(2):
        text = model.tokenizer.decode(batch[row, 1:].tolist())
        assert model.to_tokens(text)[0].tolist() == batch[row].tolist()
        one = guide(model, text, p, w=2.0, alpha=alpha, max_new_tokens=5, stop_at_eos=False)
        assert got[row].tolist() == one.tokens.tolist()
    plain = guided_generate(model, batch, None, max_new_tokens=5)
    hf = model.bridge.original_model.generate(
        batch,
        max_new_tokens=5,
        min_new_tokens=5,
        do_sample=False,
        use_cache=False,
        attention_mask=torch.ones_like(batch),
    )
    assert plain.tolist() == hf[:, width:].tolist()
    assert not torch.equal(got, plain)  # and guidance did change the text


def test_guided_logit_difference_is_inflated_by_construction(zoo_model):
    model = zoo_model("tiny-ioi")
    task = make_task("ioi", model, n=8, seed=2)
    rows = torch.arange(8)
    p = HeadPerturbation(heads=((1, 0),), method="identity")
    with torch.no_grad():
        clean = model(task.clean_tokens)
        with perturbed(model, p):
            pert = model(task.clean_tokens)
    guided = guided_logits(model, task.clean_tokens, p, w=2.0, alpha=0.0)
    objective = ioi_objective(task)
    ld, ld_pert = objective.score(clean, rows), objective.score(pert, rows)
    torch.testing.assert_close(
        objective.score(guided, rows), ld + 2.0 * (ld - ld_pert), rtol=1e-4, atol=1e-4
    )
    assert objective.inflated and OBJECTIVES["ioi_logit_diff"].inflated
    assert not ioi_objective(task, metric="top1").inflated


def test_ioi_top1_and_logprob_read_the_guided_distribution(zoo_model):
    model = zoo_model("tiny-ioi")
    task = make_task("ioi", model, n=6, seed=3)
    rows = torch.tensor([1, 4])
    p = HeadPerturbation(heads=((1, 2),), method="identity")
    guided = guided_logits(model, task.clean_tokens[rows], p, w=1.5, alpha=0.0)
    final = guided[torch.arange(2), task.answer_pos[rows]]  # [2, d_vocab]
    top1 = ioi_objective(task, metric="top1").scores(model, rows, p, w=1.5, alpha=0.0)
    logprob = ioi_objective(task, metric="logprob").scores(model, rows, p, w=1.5, alpha=0.0)
    assert top1.tolist() == (final.argmax(-1) == task.io_token[rows]).float().tolist()
    expected = final.double().log_softmax(-1)[torch.arange(2), task.io_token[rows]]
    torch.testing.assert_close(logprob.double(), expected, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def copy_search(zoo_model):
    model = zoo_model("tiny-induction")
    objective = induction_copy_objective(model, n=8, seq_len=10, prefix=4, seed=1)
    select, heldout = split_rows(objective.n_prompts, seed=0)
    hunter = HeadHunter(
        w=1.0, alpha=0.1, rounds=1, candidates="L1H4, L1H6, L0H1", n_random=2, seed=3
    ).fit(model, objective, select=select, heldout=heldout)
    return model, objective, select, heldout, hunter


def test_generation_objective_scores_equal_a_naive_loop(copy_search):
    model, objective, select, _, hunter = copy_search
    first = hunter.history_.iloc[0]
    head = (int(first["layer"]), int(first["head"]))
    p = HeadPerturbation(heads=(head,), method="identity")
    hf = model.bridge.original_model
    shares = []
    for row in select.tolist():  # one prompt at a time, guidance formula written out
        seq = objective.tokens[row].tolist()
        for _ in range(6):
            with torch.no_grad():
                orig = hf(torch.tensor([seq])).logits[0, -1].double()  # [d_vocab]
                with perturbed(model, p):
                    pert = model(torch.tensor([seq]))[0, -1].double()  # [d_vocab]
            probs = orig.softmax(-1)
            guided = torch.where(probs >= 0.1 * probs.max(), 2 * orig - pert, -math.inf)
            seq.append(int(guided.argmax()))
        shares.append(
            np.mean([a == b for a, b in zip(seq[-6:], make_target(model, row), strict=True)])
        )
    assert float(first["score"]) == pytest.approx(float(np.mean(shares)), abs=1e-9)


def make_target(model, row):
    """The tokens the copy objective expects after prompt `row` (seq_len 10, prefix 4)."""
    from workbench.tasks.induction import random_repeated_tokens

    clean, _ = random_repeated_tokens(model, n=8, seq_len=10, seed=1)
    return clean[row, 1 + 10 + 4 :].tolist()


def test_heldout_table_has_every_baseline_and_round_trips(copy_search):
    model, objective, _, heldout, hunter = copy_search
    result = hunter.result_
    scores = result.heldout_scores
    k = len(result.heads)
    expected = {"no_guidance", "searched_heads", "layer_guidance"} | (
        {"random_heads"} if k else set()
    )
    assert set(scores["setting"]) == expected
    assert all(len(d.split(",")) == k for d in result.random_heads) and (
        len(result.random_heads) == (2 if k else 0)
    )
    per_prompt = result.per_prompt()
    assert len(per_prompt) == len(heldout)
    none = objective.scores(model, heldout, None, w=0.0, alpha=0.1).double().numpy()
    np.testing.assert_allclose(per_prompt["no_guidance"].to_numpy(), none)
    intervals = result.intervals(n_boot=300, seed=5).set_index("setting")
    reference = bootstrap_interval(per_prompt["searched_heads"].to_numpy(), n_boot=300, seed=5)
    row = intervals.loc["searched_heads"]
    assert (row["low"], row["high"]) == pytest.approx((reference.low, reference.high), abs=1e-12)
    assert intervals.loc["no_guidance", "diff_vs_none"] == 0.0
    back = Result.from_json(result.to_json())
    assert isinstance(back, HeadSearchResult) and back.random_heads == result.random_heads
    assert back.heldout_scores.equals(result.heldout_scores)


def test_fit_by_registered_name(zoo_model):
    model = zoo_model("tiny-ioi")
    select, heldout = split_rows(12, seed=0)
    hunter = HeadHunter(rounds=1, candidates="L1H0,L1H1", n_random=0).fit(
        model, "ioi_top1", select=select, heldout=heldout, objective_options={"n": 12, "seed": 9}
    )
    assert hunter.result_.objective == "ioi_top1" and not hunter.result_.inflated
    built = make_objective("ioi_top1", model, n=12, seed=9)
    again = HeadHunter(rounds=1, candidates="L1H0,L1H1", n_random=0).fit(
        model, built, select=select, heldout=heldout
    )
    assert again.result_.comparison == hunter.result_.comparison


def test_bootstrap_mean_interval_refuses_to_hide_non_finite_scores():
    mean, low, high = bootstrap_mean_interval(np.array([0.0, -math.inf, 1.0]), n_boot=50)
    assert math.isnan(low) and math.isnan(high) and mean == -math.inf


def test_guide_cli_searches_heads_by_objective(capsys):
    import json

    from workbench.cli import main

    prompt = "When Mary and John went to the store , John gave a drink to"
    argv = ["guide", "tiny-ioi", prompt, "--objective", "ioi_logit_diff"]
    argv += ["--objective-option", "n=8", "--rounds", "1", "--max-new-tokens", "2"]
    capsys.readouterr()
    assert main([*argv, "--json", "--quiet"]) == 0
    payload = json.loads(capsys.readouterr().out)
    search = payload["search"]
    assert search["objective"] == "ioi_logit_diff" and search["inflated_by_construction"]
    assert search["n_search"] == 4 and search["n_heldout"] == 4
    # the inflated objective always finds a head that "improves" it; guide decodes with it
    assert len(search["heads"]) == 1 and payload["heads"] == search["heads"]
    assert set(search["heldout"]) >= {"no_guidance", "searched_heads", "layer_guidance"}
