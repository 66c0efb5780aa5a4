"""`rotation_matrices` against transformers' own RoPE functions on synthetic tensors.

Rotate-half (GPT-NeoX's `apply_rotary_pos_emb`, which rotates only the first `cos.shape[-1]`
dims: partial rotary) and GPT-J's interleaved `rotate_every_two` on its first `rotary_dim` dims.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.models.gpt_neox import modeling_gpt_neox as neox
from transformers.models.gptj import modeling_gptj as gptj

from workbench.adapters.weights import rotation_matrices

N_POS, D_HEAD = 7, 16


def _angles(rotary_dim: int) -> np.ndarray:
    inv_freq = 1.0 / (10000 ** (np.arange(0, rotary_dim, 2) / rotary_dim))  # [rotary_dim / 2]
    return np.arange(N_POS)[:, None] * inv_freq[None]  # [pos, rotary_dim / 2]


@pytest.mark.parametrize("rotary_dim", [D_HEAD, 4, 8])
def test_rotate_half_matches_transformers_partial_rotary(rotary_dim):
    angles = np.concatenate([_angles(rotary_dim)] * 2, axis=-1)  # [pos, rotary_dim]
    cos, sin = np.cos(angles), np.sin(angles)
    q = np.random.default_rng(0).standard_normal((2, N_POS, D_HEAD))  # [head, pos, d_head]
    t = torch.from_numpy(q)[None]  # [1, head, pos, d_head]
    expected, _ = neox.apply_rotary_pos_emb(
        t, t, torch.from_numpy(cos)[None], torch.from_numpy(sin)[None]
    )
    rot = rotation_matrices(cos, sin, d_head=D_HEAD, style="half")  # [pos, d_head, d_head]
    ours = np.einsum("hpd,pde->hpe", q, rot)
    np.testing.assert_allclose(ours, expected[0].numpy(), atol=1e-12)
    np.testing.assert_allclose(ours[..., rotary_dim:], q[..., rotary_dim:], atol=0)


@pytest.mark.parametrize("rotary_dim", [D_HEAD, 8])
def test_interleaved_matches_transformers_gptj(rotary_dim):
    angles = _angles(rotary_dim)  # [pos, rotary_dim / 2]
    q = np.random.default_rng(1).standard_normal((N_POS, 2, D_HEAD))  # [pos, head, d_head]
    t = torch.from_numpy(q)[None]  # [1, pos, head, d_head]
    sin, cos = torch.from_numpy(np.sin(angles))[None], torch.from_numpy(np.cos(angles))[None]
    expected = torch.cat(
        [gptj.apply_rotary_pos_emb(t[..., :rotary_dim], sin, cos), t[..., rotary_dim:]], dim=-1
    )[0].numpy()
    per_dim = np.repeat(np.cos(angles), 2, -1), np.repeat(np.sin(angles), 2, -1)
    rot = rotation_matrices(*per_dim, d_head=D_HEAD, style="interleaved")
    np.testing.assert_allclose(np.einsum("phd,pde->phe", q, rot), expected, atol=1e-12)
    # the two conventions differ: a rotate-half reading of GPT-J would be wrong
    half = rotation_matrices(*per_dim, d_head=D_HEAD, style="half")
    assert np.abs(np.einsum("phd,pde->phe", q, half) - expected).max() > 1e-2


def test_rotations_are_orthogonal_and_identity_at_position_zero():
    angles = np.concatenate([_angles(8)] * 2, axis=-1)
    rot = rotation_matrices(np.cos(angles), np.sin(angles), d_head=D_HEAD)
    np.testing.assert_allclose(rot[0], np.eye(D_HEAD), atol=0)
    np.testing.assert_allclose(
        rot @ rot.transpose(0, 2, 1), np.eye(D_HEAD)[None].repeat(N_POS, 0), atol=1e-12
    )


def test_bad_rotary_arguments_are_refused():
    cos = np.ones((2, 6))
    with pytest.raises(ValueError, match="rotary_dim 6 does not fit d_head 4"):
        rotation_matrices(cos, cos, d_head=4)
    with pytest.raises(ValueError, match="unknown style 'spiral'"):
        rotation_matrices(cos, cos, style="spiral")
