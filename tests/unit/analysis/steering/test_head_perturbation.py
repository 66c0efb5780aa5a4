"""Head perturbation targets on synthetic attention patterns, against float64 references.

Every target and interpolation must keep rows valid (non-negative, summing to 1, causal for
decoders, no weight on padding keys for encoders); u=0 must be the identity bit for bit.
"""

from __future__ import annotations

import math

import pytest
import torch

from analysis.steering.head_perturbation import (
    PATTERN_METHODS,
    HeadPerturbation,
    parse_heads,
    soft_perturb,
    target_pattern,
    visible_keys,
)
from workbench.heads import Head


def random_pattern(batch=3, heads=2, n=7, *, causal=True, key_mask=None, seed=0):
    """(pattern, scores) with masked positions at -inf in the scores."""
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, heads, n, n, generator=gen, dtype=torch.float64) * 2
    vis = visible_keys(n, n, causal=causal, key_mask=key_mask)
    scores = scores.masked_fill(~vis, -math.inf)
    return torch.softmax(scores, dim=-1), scores


def encoder_mask():
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 5:] = 0  # second prompt padded after 5 tokens
    mask[2, 3:] = 0
    return mask


def assert_valid_rows(pattern, *, causal, key_mask=None):
    n = pattern.shape[-1]
    assert (pattern >= 0).all()
    vis = visible_keys(n, n, causal=causal, key_mask=key_mask)
    assert pattern.masked_select(~vis.expand_as(pattern)).abs().max() == 0
    sums = pattern.sum(-1)  # [batch, head, query]
    if key_mask is not None:  # padding query rows are not attention of real tokens
        sums = sums[key_mask[:, None, :].expand_as(sums).bool()]
    torch.testing.assert_close(sums, torch.ones_like(sums), rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", PATTERN_METHODS)
@pytest.mark.parametrize("u", [0.0, 0.3, 1.0])
def test_every_target_keeps_causal_rows_valid(method, u):
    pattern, _ = random_pattern(causal=True)
    out = soft_perturb(pattern, method, u, causal=True, tau=0.5)
    assert_valid_rows(out, causal=True)


@pytest.mark.parametrize("method", PATTERN_METHODS)
@pytest.mark.parametrize("u", [0.0, 0.6, 1.0])
def test_every_target_respects_encoder_padding(method, u):
    mask = encoder_mask()
    pattern, _ = random_pattern(causal=False, key_mask=mask, seed=1)
    out = soft_perturb(pattern, method, u, causal=False, key_mask=mask, tau=3.0)
    assert_valid_rows(out, causal=False, key_mask=mask)


@pytest.mark.parametrize("method", PATTERN_METHODS)
def test_u_zero_is_bitwise_identity(method):
    pattern, _ = random_pattern(seed=2)
    pattern = pattern.float()
    assert torch.equal(soft_perturb(pattern, method, 0.0, causal=True), pattern)


def test_identity_and_uniform_targets():
    pattern, _ = random_pattern()
    torch.testing.assert_close(
        target_pattern(pattern, "identity", causal=True),
        torch.eye(7, dtype=torch.float64).expand_as(pattern),
    )
    uniform = target_pattern(pattern, "uniform", causal=True)
    expected = torch.tril(torch.ones(7, 7, dtype=torch.float64)) / torch.arange(1, 8)[:, None]
    torch.testing.assert_close(uniform, expected.expand_as(pattern), rtol=0, atol=1e-15)


def test_temperature_target_equals_softmax_of_scaled_scores():
    for causal, mask in ((True, None), (False, encoder_mask())):
        pattern, scores = random_pattern(causal=causal, key_mask=mask, seed=3)
        for tau in (0.25, 1.0, 4.0):
            expected = torch.softmax(scores / tau, dim=-1)
            got = target_pattern(pattern, "temperature", causal=causal, key_mask=mask, tau=tau)
            if mask is not None:
                real = mask[:, None, :, None].bool().expand_as(got)
                got, expected = got[real], expected[real]
            torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_mean_query_target_matches_naive_loops():
    pattern, _ = random_pattern(seed=4)
    got = target_pattern(pattern, "mean_query", causal=True)
    for i in range(7):
        torch.testing.assert_close(got[:, :, i], pattern[:, :, : i + 1].mean(2), rtol=0, atol=1e-14)
    mask = encoder_mask()
    pattern, _ = random_pattern(causal=False, key_mask=mask, seed=5)
    got = target_pattern(pattern, "mean_query", causal=False, key_mask=mask)
    for b in range(3):
        n_real = int(mask[b].sum())
        expected = pattern[b, :, :n_real, :].mean(1)  # [head, key] mean over real query rows
        for i in range(n_real):
            torch.testing.assert_close(got[b, :, i], expected, rtol=0, atol=1e-14)


def test_interpolation_is_linear_in_u():
    pattern, _ = random_pattern(seed=6)
    target = target_pattern(pattern, "uniform", causal=True)
    out = soft_perturb(pattern, "uniform", 0.25, causal=True)
    torch.testing.assert_close(out, 0.75 * pattern + 0.25 * target, rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"heads": ()}, "heads: no heads"),
        ({"heads": ((0, 0),), "u": 1.5}, "u: perturbation strength"),
        ({"heads": ((0, 0),), "u": -0.1}, "u: perturbation strength"),
        ({"heads": ((0, 0),), "method": "shuffle"}, "method: unknown"),
        ({"heads": ((0, 0),), "tau": 0.0}, "tau:"),
    ],
)
def test_bad_perturbations_raise_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HeadPerturbation(**kwargs)


def test_parse_heads():
    assert parse_heads("L1H0, L0H3") == parse_heads("1.0, 0.3") == ((1, 0), (0, 3))
    assert parse_heads([(1, 2)]) == ((1, 2),)
    assert HeadPerturbation(heads="L1H0,1.2").heads == (Head(1, 0), Head(1, 2))
    with pytest.raises(ValueError, match="heads: no heads given"):
        parse_heads("")
    for bad in ("1", "a.b", "1.2.3"):
        with pytest.raises(ValueError, match=f"head: '{bad}' is not a head"):
            parse_heads(bad)
