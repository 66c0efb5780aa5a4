"""Universal spans, random-span baselines and the name ban on tiny-ioi, checked against plain
forward passes of the model (logits read directly, no attack machinery)."""

from __future__ import annotations

import pytest
import torch

from analysis.attacks.baseline import random_baseline
from analysis.attacks.filters import allowed_tokens, name_token_ids
from analysis.attacks.spans import draw_spans, score_spans, with_spans
from analysis.attacks.token_attack import TokenAttack, retokenises_same
from analysis.attacks.universal import UniversalAttack
from workbench.tasks import make_task
from workbench.tasks.ioi_prompts import NAMES


@pytest.fixture(scope="module")
def ioi(zoo_model):
    model = zoo_model("tiny-ioi")
    return model, make_task("ioi", model, n=6, seed=2024), make_task("ioi", model, n=6, seed=31)


def logit_diff(model, tokens: torch.Tensor, case) -> torch.Tensor:
    """logit(IO) - logit(S) at the answer position from a plain forward pass -> `[batch]`."""
    with torch.no_grad():
        final = model(tokens.to(model.device))[:, case.answer_pos].float().cpu()
    return final[:, case.io_token] - final[:, case.s_token]


def test_every_ioi_name_is_banned_by_default_and_allowed_on_request(ioi):
    model = ioi[0]
    vocab = model.tokenizer.convert_ids_to_tokens(list(range(model.d_vocab)))
    names = {i for i, piece in enumerate(vocab) if piece.lstrip("Ġ ") in NAMES}
    assert len(names) == len(NAMES) == len(name_token_ids(model))
    assert set(name_token_ids(model)) == names
    banned = ~allowed_tokens(model)
    assert set(banned.nonzero()[:, 0].tolist()) == names | set(model.tokenizer.all_special_ids)
    open_ = allowed_tokens(model, ban_names=False)
    assert open_[list(names)].all() and not open_[model.tokenizer.all_special_ids].any()


def test_per_prompt_attack_never_inserts_a_name(ioi):
    model, task, _ = ioi
    attack = TokenAttack(objective="flip", steps=3, n_adv=4, batch_size=16, seed=1)
    attack.fit(model, task, rows=range(2))
    names = set(name_token_ids(model))
    for case, final in zip(attack.cases_, attack.final_tokens_, strict=True):
        assert not set(final[case.adv_positions].tolist()) & names


def test_span_scores_match_a_plain_forward_pass(ioi):
    model, task, _ = ioi
    attack = TokenAttack(objective="flip", n_adv=3)
    (case,) = attack._cases(model, task, [1])
    generator = torch.Generator().manual_seed(0)
    spans = draw_spans(model, case, attack._allowed_tokens(model), 12, generator)  # [12, 3]
    names = set(name_token_ids(model))
    assert spans.shape == (12, 3) and not set(spans.flatten().tolist()) & names
    assert all(retokenises_same(model, row) for row in with_spans(case, spans))
    scores = score_spans(model, attack.spec, case, spans)
    reference = logit_diff(model, with_spans(case, spans), case)
    torch.testing.assert_close(scores.metric, reference, rtol=1e-4, atol=1e-4)
    assert torch.equal(scores.success, reference < 0)


def test_random_baseline_is_seeded_and_counts_its_draws(ioi):
    model, task, _ = ioi
    attack = TokenAttack(objective="flip", n_adv=3)
    table = random_baseline(model, attack, task, rows=[0, 2], n_draws=6, seed=3)
    again = random_baseline(model, attack, task, rows=[2], n_draws=6, seed=3)
    assert list(table["index"]) == [0, 2] and (table["draws"] == 6).all()
    assert (table["rate"] == table["successes"] / 6).all()
    assert (table["any_success"] == (table["successes"] > 0)).all()
    # a prompt's draws do not depend on which other prompts are in the list
    assert table.iloc[1]["successes"] == again.iloc[0]["successes"]
    assert table.iloc[1]["metric_mean"] == pytest.approx(again.iloc[0]["metric_mean"])


def test_universal_span_is_scored_on_every_prompt_and_held_out(ioi):
    model, search, held = ioi
    attack = UniversalAttack(objective="flip", steps=3, n_adv=4, batch_size=24, seed=0)
    attack.fit(model, search, rows=range(4))
    assert attack.span_.shape == (4,) and attack.steps_used_ <= 3
    assert not set(attack.span_.tolist()) & set(name_token_ids(model))
    assert all(b <= a + 1e-6 for a, b in zip(attack.curve_, attack.curve_[1:], strict=False))
    assert len(attack.search_) == 4
    frame = attack.evaluate(model, held, baseline_draws=2, n_boot=20).to_frame()
    assert list(frame["index"]) == list(range(held.n_prompts))
    cases = attack.attack._cases(model, held, None)
    for case, row in zip(cases, frame.itertuples(), strict=True):
        before = logit_diff(model, case.tokens[None], case)
        after = logit_diff(model, with_spans(case, attack.span_[None]), case)
        assert row.metric_before == pytest.approx(float(before[0]), abs=1e-4)
        assert row.metric_after == pytest.approx(float(after[0]), abs=1e-4)
        assert row.success == bool(after[0] < 0)
    # the mean search loss the curve ends on is the clamped flip loss of the learned span
    search_cases = attack.attack._cases(model, search, range(4))
    losses = [
        logit_diff(model, with_spans(c, attack.span_[None]), c).clamp_min(-1.0)
        for c in search_cases
    ]
    assert attack.curve_[-1] == pytest.approx(float(torch.cat(losses).mean()), abs=1e-4)


def test_minilm_universal_suffix_cosine_matches_sentence_embeddings(zoo_model):
    model = zoo_model("minilm")
    sentences = ["the dog is in the garden .", "we talked about the car for hours ."]
    attack = UniversalAttack(objective="embedding", steps=1, n_adv=2, batch_size=8, seed=0)
    attack.fit(model, sentences[:1])
    frame = attack.evaluate(model, sentences, baseline_draws=0).to_frame()
    for text, row in zip(sentences, frame.itertuples(), strict=True):
        ids = model.to_tokens(text)[0].cpu()  # [pos]
        attacked = torch.cat([ids[:-1], attack.span_, ids[-1:]])[None]  # [1, pos + n_adv]
        with torch.no_grad():
            ref = torch.nn.functional.normalize(model.sentence_embedding(text), dim=-1)
            emb = torch.nn.functional.normalize(model.sentence_embedding(attacked), dim=-1)
        cosine = float((emb * ref).sum())
        assert row.metric_after == pytest.approx(cosine, abs=1e-4)
        assert row.success == (cosine < 0.5)
