"""The IOI prompt generator: variety (against positional shortcuts), alignment, determinism."""

from __future__ import annotations

import pytest

from workbench.tasks.ioi_prompts import NAMES, TEMPLATES, generate_ioi_prompts, ioi_vocabulary


def test_generator_has_the_variety_the_task_needs():
    assert len(TEMPLATES) >= 10 and len(set(NAMES)) >= 40
    prompts = generate_ioi_prompts(2000, seed=1)
    assert {p.order for p in prompts} == {"ABBA", "BABA"}
    assert {p.template for p in prompts} == set(range(len(TEMPLATES)))
    assert {p.n_fillers for p in prompts} == {0, 1, 2, 3}
    assert len({p.io for p in prompts}) == len(set(NAMES))


def test_clean_prompt_repeats_s_and_corrupted_prompt_swaps_only_the_second_s():
    for p in generate_ioi_prompts(300, seed=2):
        clean, corrupted = p.text.split(), p.corrupted_text.split()
        assert len(clean) == len(corrupted)
        diffs = [(a, b) for a, b in zip(clean, corrupted, strict=True) if a != b]
        assert len(diffs) == 1 and diffs[0][0].strip(",.") == p.s and diffs[0][1].strip(",.") == p.c
        words = [w.strip(",.") for w in clean]
        assert words.count(p.s) == 2 and words.count(p.io) == 1
        assert p.c not in (p.io, p.s)
        first_io, first_s = words.index(p.io), words.index(p.s)
        assert (first_io < first_s) == (p.order == "ABBA")


def test_same_seed_same_prompts_other_seed_other_prompts():
    assert generate_ioi_prompts(50, seed=3) == generate_ioi_prompts(50, seed=3)
    assert generate_ioi_prompts(50, seed=3) != generate_ioi_prompts(50, seed=4)


def test_vocabulary_covers_every_generated_word():
    vocab = set(ioi_vocabulary())
    for p in generate_ioi_prompts(500, seed=5):
        for text in (p.text, p.corrupted_text):
            for word in text.replace(",", " , ").replace(".", " . ").split():
                assert word in vocab, word


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n: need at least one prompt"),
        ({"n": 5, "names": ["Ann", "Bo"]}, "names: need at least 3"),
        ({"n": 5, "templates": []}, "templates: need at least one"),
    ],
)
def test_bad_arguments_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_ioi_prompts(**kwargs)
