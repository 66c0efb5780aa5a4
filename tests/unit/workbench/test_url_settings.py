"""Page settings in the URL (`workbench.ui.selection.PAGE_KEYS`): parsing, checking, writing.

The declared keys must match the controls they stand for (the pages' own lists and bounds),
good values come back typed, and every bad or forged value is dropped (never an exception).
`clean` writes what the address bar holds; `page_url` and the Runs page's `reopen_link` build
a run's "reopen" link from its stored config.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from workbench.ui import selection
from workbench.ui.selection import PAGE_KEYS, clean, page_url, parse_page


def test_declared_keys_match_the_pages_controls():
    from analysis.steering.objectives import OBJECTIVES
    from workbench.ui import circuit_runs, guidance_search, head_grid
    from workbench.ui.pages import attacks, attention, circuits, guidance

    keys = PAGE_KEYS
    assert keys["attention"]["stat"].choices == tuple(attention.STATISTICS)
    assert keys["attention"]["block"].choices == tuple(attention.BLOCK_SIZES)
    assert keys["attention"]["grid"].choices == tuple(head_grid.SCOPE_LABELS)
    assert keys["circuits"]["method"].choices == tuple(circuits.METHODS)
    assert keys["circuits"]["corruption"].choices == tuple(circuits.CORRUPTIONS)
    assert keys["circuits"]["n"].high == circuit_runs.MAX_PROMPTS
    assert keys["guidance"]["method"].choices == tuple(guidance_search.METHODS)
    assert keys["guidance"]["w"].high == guidance_search.MAX_W
    assert keys["guidance"]["tokens"].high == guidance.MAX_NEW_TOKENS
    assert keys["guidance"]["objective"].choices() == sorted(OBJECTIVES)
    assert (keys["guidance"]["n"].low, keys["guidance"]["n"].high) == guidance_search.SEARCH_PROMPTS
    assert (keys["guidance"]["rounds"].low, keys["guidance"]["rounds"].high) == (
        guidance_search.SEARCH_ROUNDS
    )
    assert keys["attacks"]["objective"].choices == tuple(attacks.OBJECTIVES)
    for name, (low, high) in attacks.LIMITS.items():
        assert (keys["attacks"][name].low, keys["attacks"][name].high) == (low, high), name
    for page, settings in keys.items():  # a page key never shadows a shared one
        assert not set(settings) & set(selection.KEYS), page


@pytest.mark.parametrize(
    ("page", "query", "expected"),
    [
        (
            "attention",
            {"stat": "sink", "block": 16, "grid": "all"},
            {"stat": "sink", "block": "16", "grid": "all"},
        ),
        (
            "circuits",
            {"method": "atp*", "n": "8.0", "reference": "true", "task": "ioi"},
            {"method": "atp*", "n": 8, "reference": True},  # task: a shared key
        ),
        (
            "circuits",
            {"reference": False, "threshold": "0.350000001"},
            {"reference": False, "threshold": 0.35},
        ),
        (
            "guidance",
            {"heads": "L01H2, L0H1,L1H2,bad", "u": "0", "rounds": "4"},
            {"heads": ["L1H2", "L0H1"], "u": 0.0, "rounds": 4},
        ),
        (
            "guidance",
            {"heads": ["L3H0", 5, "L0H0"], "objective": "ioi_logprob"},
            {"heads": ["L3H0", "L0H0"], "objective": "ioi_logprob"},
        ),
        (
            "attacks",
            {"weight": "2.5", "seed": str(2**31), "run": {"run_id": "20260101-x"}},
            {"weight": 2.5, "seed": 2**31, "run": "20260101-x"},
        ),
        ("heads", {"key": "0", "token": "3"}, {"key": 0}),
    ],
)
def test_good_values_come_back_typed(page, query, expected):
    assert parse_page(page, query) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        " ",
        "abcd",
        "1e999",
        "-1e999",
        "nan",
        "inf",
        "9" * 5000,
        "1.5.2",
        True,
        False,
        [],
        ["a", "b"],
        {"$gt": ""},
        {"run_id": "../x"},
        b"bytes",
        1.5,
        -3,
        10**40,
        "../../etc",
        "<script>alert(1)</script>",
        "a\x00b",
    ],
    ids=lambda v: repr(v)[:20],
)
def test_bad_values_are_dropped_never_raised(value):
    for page, settings in PAGE_KEYS.items():
        parsed = parse_page(page, dict.fromkeys(settings, value))
        for key, got in parsed.items():  # the few that are fine (1.5 as u, -3 nowhere, ...)
            setting = settings[key]
            assert setting.kind in ("float", "int", "bool", "run"), (page, key, value)
            if setting.kind == "run":  # a well-formed id; the page checks the run is its own
                assert selection.RUN_ID_RE.fullmatch(got) and got == str(value)
            elif setting.kind != "bool":
                assert setting.low <= got and (setting.high is None or got <= setting.high)
                assert math.isfinite(got)
    assert parse_page("nowhere", {"stat": "sink"}) == {} and parse_page("heads", None) == {}


@pytest.mark.parametrize(
    ("page", "key", "value"),
    [
        ("attention", "stat", "Entropy"),
        ("attention", "block", "7"),
        ("circuits", "method", "atp**"),
        ("circuits", "n", "0"),
        ("circuits", "n", "257"),
        ("circuits", "n", "2.5"),
        ("circuits", "reference", "maybe"),
        ("circuits", "threshold", "1.01"),
        ("circuits", "threshold", "-0"),  # -0.0 is fine: 0
        ("circuits", "run", "../../etc/passwd"),
        ("circuits", "run", "x" * 65),
        ("circuits", "run", {"error": "boom"}),
        ("guidance", "heads", "L1H2;rm -rf"),
        ("guidance", "heads", ",".join(f"L{i}H0" for i in range(100))),
        ("guidance", "objective", "nope"),
        ("guidance", "w", "5.01"),
        ("attacks", "seed", str(2**31 + 1)),
        ("attacks", "n_adv", "33"),
        ("heads", "key", "-1"),
    ],
)
def test_out_of_range_and_unknown_values(page, key, value):
    parsed = parse_page(page, {key: value})
    if value == "-0":
        assert parsed == {key: 0.0}
    elif key == "heads" and "L0H0" in str(value):
        assert len(parsed["heads"]) == selection.MAX_HEADS  # the first 64 kept
    else:
        assert parsed == {}


def test_clean_writes_the_shared_selection_then_the_page_settings():
    written = clean(
        {
            "zzz": 1,
            "method": "eap-ig",
            "model": "tiny-ioi",
            "reference": True,
            "run": {"run_id": "r-1"},
            "threshold": 0.30000000000000004,
            "layer": "2",
            "n": None,
        },
        page="circuits",
    )
    assert written == {
        "model": "tiny-ioi",
        "layer": 2,
        "method": "eap-ig",
        "reference": "1",
        "threshold": 0.3,
        "run": "r-1",
    }
    assert list(written)[:2] == ["model", "layer"]
    assert clean({"heads": ["L1H2", "L0H1"], "prompt": "hi"}, page="guidance") == {
        "prompt": "hi",
        "heads": "L1H2,L0H1",
    }
    assert clean({"method": "eap", "model": "m"}) == {"model": "m"}  # no page: shared only
    assert parse_page("guidance", {"heads": "L1H2,L0H1"}) == {"heads": ["L1H2", "L0H1"]}


def test_page_url_and_the_runs_reopen_links():
    from workbench.ui.pages.runs import reopen_link

    def run(kind, config):
        return SimpleNamespace(kind=kind, model="tiny-ioi", run_id="20260101-abc", config=config)

    assert page_url("heads", {}) == "/heads"
    assert page_url("heads", {"key": 3, "stat": "sink", "model": "m"}) == "/heads?model=m&key=3"
    session = {"dashboard_session": "f" * 32}
    stats = run("attention_stats", {"prompt": "When Mary", "mass_block": 16, **session})
    assert reopen_link(stats) == (
        "Attention",
        "/attention?model=tiny-ioi&prompt=When+Mary&block=16",
    )
    circuit = {"task": "ioi", "method": "atp*", "n_prompts": 8, "reference": True, "ci_level": 0.95}
    assert reopen_link(run("circuit", circuit | {"corruption": "abc"})) == (
        "Circuits",
        "/circuits?model=tiny-ioi&task=ioi&method=atp%2A&corruption=abc&n=8&reference=1"
        "&run=20260101-abc",
    )
    search = {"objective": "ioi_logprob", "n": 8, "rounds": 1, "method": "zero", "u": 1, "w": 9}
    assert reopen_link(run("head_search", search)) == (  # w=9 is outside the page's range
        "Guidance",
        "/guidance?model=tiny-ioi&method=zero&u=1.0&objective=ioi_logprob&n=8&rounds=1"
        "&run=20260101-abc",
    )
    attack = {"objective": "flip", "heads": ["L1H0", "L0H2"], "steps": 5, "n_adv": 2, "seed": 0}
    assert reopen_link(run("attack", attack)) == (
        "Attacks",
        "/attacks?model=tiny-ioi&objective=flip&heads=L1H0%2CL0H2&steps=5&n_adv=2&seed=0"
        "&run=20260101-abc",
    )
    assert reopen_link(run("corpus_stats", {})) is None
