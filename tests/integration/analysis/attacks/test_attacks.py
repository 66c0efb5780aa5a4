"""GCG token attacks on zoo models: the one-hot gradient against finite differences, flips
within a small budget, protected positions, re-tokenisation, seeds, dissipation, MiniLM."""

from __future__ import annotations

import pytest
import torch

from analysis.attacks.objectives import ObjectiveSpec, decoder_cases, run_records
from analysis.attacks.token_attack import AttackResult, TokenAttack, retokenises_same
from workbench.results import Result
from workbench.tasks import make_task

LAYER1 = ((1, 0), (1, 1), (1, 2), (1, 3))


@pytest.fixture(scope="module")
def ioi(zoo_model):
    model = zoo_model("tiny-ioi")
    return model, make_task("ioi", model, n=8, seed=2024)


def protected_unchanged(attack: TokenAttack) -> bool:
    for case, final in zip(attack.cases_, attack.final_tokens_, strict=True):
        keep = torch.ones_like(case.tokens, dtype=torch.bool)
        keep[case.adv_positions] = False
        if final.shape != case.tokens.shape or not torch.equal(final[keep], case.tokens[keep]):
            return False
    return True


def test_one_hot_gradient_matches_finite_differences(ioi):
    model, task = ioi
    attack = TokenAttack(objective="flip", heads=LAYER1, dissipation_weight=2.0)
    (case,) = decoder_cases(task, [0], n_adv=3, init_token=4, ban_names=True)
    grad = attack.token_gradient(model, case, case.tokens)  # [n_adv, d_vocab]
    one_hot = torch.nn.functional.one_hot(case.tokens[None], model.d_vocab).double()

    def loss(x: torch.Tensor) -> float:
        with torch.no_grad():
            out, patterns = run_records(model, case.tokens[None], layers=[1], one_hot=x.float())
            return float(attack.spec.loss(out, patterns, case).double()[0])

    eps = 1e-2
    picks = grad.abs().flatten().topk(4).indices.tolist() + [17, 90]
    for flat in picks:
        slot, token = divmod(flat, model.d_vocab)
        step = torch.zeros_like(one_hot)
        step[0, int(case.adv_positions[slot]), token] = eps
        numeric = (loss(one_hot + step) - loss(one_hot - step)) / (2 * eps)
        assert numeric == pytest.approx(float(grad[slot, token]), rel=2e-2, abs=2e-3)


@pytest.mark.slow
def test_flip_attack_flips_within_a_small_budget_and_edits_only_the_span(ioi):
    model, task = ioi
    attack = TokenAttack(objective="flip", steps=10, n_adv=5, batch_size=48, seed=0, heads=LAYER1)
    result = attack.fit(model, task, rows=range(4)).result_
    assert result.success_rate > 0
    flipped = result.prompts[result.prompts["success"]]
    assert (flipped["metric_after"] < 0).all() and (flipped["metric_before"] > 0).all()
    assert (result.prompts["steps_used"] <= 10).all()
    assert protected_unchanged(attack)
    special = set(model.tokenizer.all_special_ids)
    for case, final in zip(attack.cases_, attack.final_tokens_, strict=True):
        span = set(final[case.adv_positions].tolist())
        assert not span & ({case.io_token, case.s_token} | special)
        assert retokenises_same(model, final)
    assert set(result.head_stats["stage"]) == {"before", "after"}
    assert len(result.head_stats) == 2 * 4 * len(LAYER1)
    back = Result.from_json(result.to_json())
    assert isinstance(back, AttackResult) and back.success_rate == result.success_rate
    for kind in ("metric", "entropy", "loss"):
        assert back.plot(kind).data


def test_retokenisation_check_rejects_unknown_tokens(ioi):
    model, task = ioi
    tokens = task.clean_tokens[0, : int(task.answer_pos[0]) + 1]
    assert retokenises_same(model, tokens)
    unk = model.tokenizer.convert_tokens_to_ids("<unk>")
    broken = tokens.clone()
    broken[2] = unk
    assert not retokenises_same(model, broken)


def test_attack_is_deterministic_given_the_seed(ioi):
    model, task = ioi
    runs = [
        TokenAttack(objective="dissipation", heads=((1, 2),), steps=3, batch_size=16, seed=7).fit(
            model, task, rows=[1]
        )
        for _ in range(2)
    ]
    assert torch.equal(runs[0].final_tokens_[0], runs[1].final_tokens_[0])
    assert runs[0].result_.prompts.equals(runs[1].result_.prompts)


def test_dissipation_objective_raises_the_targeted_heads_entropy(ioi):
    model, task = ioi
    attack = TokenAttack(
        objective="dissipation", heads=((1, 2),), steps=6, n_adv=6, batch_size=32, seed=1
    )
    result = attack.fit(model, task, rows=[3]).result_
    stats = result.head_stats.set_index("stage")
    assert stats.loc["after", "entropy"] > stats.loc["before", "entropy"] + 0.1
    assert result.entropy_progress() > 0
    assert protected_unchanged(attack)


@pytest.mark.slow
def test_minilm_suffix_attack_lowers_the_embedding_cosine(zoo_model):
    model = zoo_model("minilm")
    sentences = ["the dog is in the garden .", "my friend bought a car yesterday ."]
    attack = TokenAttack(
        objective="embedding", heads=((5, 0),), steps=4, n_adv=3, batch_size=24, seed=0
    )
    result = attack.fit(model, sentences).result_
    assert (result.prompts["metric_after"] < result.prompts["metric_before"] - 1e-3).all()
    assert (result.prompts["metric_before"] > 0.8).all()  # the initial suffix barely moves it
    assert protected_unchanged(attack)
    for case, final in zip(attack.cases_, attack.final_tokens_, strict=True):
        assert int(case.adv_positions[-1]) == len(final) - 2  # a suffix, before [SEP]
        emb = model.sentence_embedding(
            model.tokenizer.decode(final.tolist(), skip_special_tokens=True)
        )
        cosine = float(emb[0] @ case.reference)
        assert cosine == pytest.approx(result.prompts.loc[case.index, "metric_after"], abs=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"objective": "jailbreak"}, "objective: unknown objective"),
        ({"objective": "dissipation"}, "heads: the attention-dissipation term needs"),
        ({"objective": "flip", "dissipation_weight": 1.0}, "heads: the attention-dissipation term"),
        ({"objective": "flip", "steps": 0}, "steps: must be >= 1"),
        (
            {"objective": "flip", "heads": ((1, 0),), "dissipation": "blur"},
            "dissipation: unknown mode",
        ),
    ],
)
def test_bad_attack_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TokenAttack(**kwargs)


def test_objectives_check_the_model_kind(zoo_model, ioi):
    model, task = ioi
    with pytest.raises(ValueError, match="objective: 'embedding' needs an encoder"):
        TokenAttack(objective="embedding").fit(model, ["a sentence"])
    with pytest.raises(ValueError, match="objective: 'flip' needs a decoder"):
        TokenAttack(objective="flip").fit(zoo_model("minilm"), task)
    with pytest.raises(
        ValueError, match=r"layer: 4 is out of range for tiny-ioi \(2 layers: 0-1\)"
    ):
        ObjectiveSpec(name="flip", heads=((4, 0),), dissipation_weight=1.0).check(model)


def test_raise_loss_attack_on_a_bpe_decoder_with_plain_prompts(zoo_model):
    model = zoo_model("tiny-induction")
    pairs = [("one two three four . one two three", " four")]
    attack = TokenAttack(objective="raise_loss", heads=((1, 1),), steps=10, batch_size=16, seed=0)
    result = attack.fit(model, pairs).result_
    row = result.prompts.iloc[0]
    assert row["metric_before"] > -1.0  # the induction model predicts " four" at first ...
    assert row["success"] and row["metric_after"] < row["metric_before"]  # ... and no longer after
    assert protected_unchanged(attack)
    assert retokenises_same(model, attack.final_tokens_[0])
    with pytest.raises(ValueError, match="objective 'flip' needs an IOI task"):
        TokenAttack(objective="flip").fit(model, pairs)


def test_span_dissipation_moves_attention_off_the_protected_names(ioi):
    model, task = ioi
    (case,) = decoder_cases(task, [0], n_adv=5, init_token=4, ban_names=True)
    assert case.protected_keys.numel() >= 1  # the IO name's position(s)

    def mass_on_io(tokens: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            _, patterns = run_records(model, tokens[None], layers=[1])
        return patterns[1][0, :, case.answer_pos, case.protected_keys].sum(-1)  # [head]

    head = int(mass_on_io(case.tokens).argmax())  # the layer-1 head that reads the IO name
    attack = TokenAttack(
        objective="dissipation", heads=((1, head),), dissipation="span", steps=10, batch_size=32
    )  # 10 steps: with every IOI name banned from the span (the default), 4 were not enough
    attack.fit(model, task, rows=[0])
    before, after = mass_on_io(case.tokens)[head], mass_on_io(attack.final_tokens_[0])[head]
    assert before > 0.3 and after < before - 0.05
    with pytest.raises(ValueError, match="objective 'raise_loss' needs \\(prompt, target\\) pairs"):
        TokenAttack(objective="raise_loss").fit(model, ["When Mary and John went to the store"])
