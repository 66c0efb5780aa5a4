"""Head taxonomy: planted heads in a hand-built GPT-2, the tiny-induction induction heads, and
parity of the detection scores with TransformerLens `detect_head`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from analysis.anatomy.taxonomy import HeadTaxonomy, head_taxonomy
from workbench.model import Model
from workbench.tasks.induction import induction_scores

WORDS = [f"w{i}" for i in range(13)]  # + 3 specials = 16 tokens = d_head
N_POS, D_MODEL, N_HEADS, D_HEAD = 32, 64, 4, 16
TOKEN, POS, BOS_FLAG, PREV = slice(0, 16), slice(16, 32), 32, slice(40, 56)


def _position_codes() -> tuple[np.ndarray, np.ndarray]:
    """Sinusoidal codes [pos, 16] and the rotation taking the code of p to that of p - 1."""
    omegas = 2 * np.pi / np.array([3.0, 5.0, 7.0, 11.0, 17.0, 26.0, 40.0, 64.0])
    p = np.arange(N_POS)[:, None]
    codes = np.concatenate([np.cos(omegas * p), np.sin(omegas * p)], 1) / np.sqrt(8)
    back = np.zeros((16, 16))  # code(p) @ back = code(p - 1)
    c, s = np.cos(omegas), np.sin(omegas)
    idx = np.arange(8)
    back[idx, idx], back[idx + 8, idx + 8] = c, c
    back[idx + 8, idx], back[idx, idx + 8] = s, -s
    return codes, back


def _planted_model(folder) -> Model:
    """2 layers x 4 heads: L0H0 previous-token, L0H1 sink, L1H0 induction (K-composition
    through L0H0, which copies the previous token into a PREV subspace); every other head has
    zero Q/K (uniform attention); MLPs write nothing."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from workbench import load_model
    from workbench.zoo.tokenizers import word_level_tokenizer

    tok = word_level_tokenizer(WORDS)
    cfg = GPT2Config(
        vocab_size=len(tok),
        n_positions=N_POS,
        n_embd=D_MODEL,
        n_layer=2,
        n_head=N_HEADS,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.bos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    hf = GPT2LMHeadModel(cfg)
    codes, back = _position_codes()
    norm = np.sqrt(D_MODEL / 2.0)  # LayerNorm scales a norm-sqrt(2) residual by about this
    with torch.no_grad():
        for p in hf.parameters():
            p.zero_()
        for block in hf.transformer.h:
            block.ln_1.weight.fill_(1.0)
            block.ln_2.weight.fill_(1.0)
        hf.transformer.ln_f.weight.fill_(1.0)
        wte = torch.zeros(len(tok), D_MODEL)
        wte[:, TOKEN] = torch.eye(16)
        hf.transformer.wte.weight.copy_(wte)
        wpe = torch.zeros(N_POS, D_MODEL)
        wpe[:, POS] = torch.tensor(codes, dtype=torch.float32)
        wpe[0, BOS_FLAG] = 1.0
        hf.transformer.wpe.weight.copy_(wpe)
        qkv0 = torch.zeros(D_MODEL, 3 * D_MODEL)  # Conv1D: x @ W, columns [q | k | v]
        qkv0[POS, 0:16] = 6.0 * torch.tensor(back, dtype=torch.float32)  # L0H0 query: code(p-1)
        qkv0[POS, D_MODEL : D_MODEL + 16] = torch.eye(16)  # L0H0 key: code(p)
        qkv0[TOKEN, 2 * D_MODEL : 2 * D_MODEL + 16] = torch.eye(16) / norm  # L0H0 value: token
        qkv0[BOS_FLAG, D_MODEL + 16] = 1.0  # L0H1 key: the first-position flag
        hf.transformer.h[0].attn.c_attn.weight.copy_(qkv0)
        hf.transformer.h[0].attn.c_attn.bias[16] = 6.0  # L0H1 query: a constant
        proj0 = torch.zeros(D_MODEL, D_MODEL)
        proj0[0:16, PREV] = torch.eye(16)  # L0H0 writes the previous token into PREV
        hf.transformer.h[0].attn.c_proj.weight.copy_(proj0)
        qkv1 = torch.zeros(D_MODEL, 3 * D_MODEL)
        qkv1[TOKEN, 0:16] = 1.5 * torch.eye(16)  # L1H0 query: current token
        qkv1[PREV, D_MODEL : D_MODEL + 16] = torch.eye(16)  # L1H0 key: previous token
        hf.transformer.h[1].attn.c_attn.weight.copy_(qkv1)
    hf.save_pretrained(folder)
    tok.save_pretrained(folder)
    return load_model(str(folder))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _planted_model(tmp_path_factory.mktemp("planted"))


def test_taxonomy_finds_planted_heads(planted):
    texts = [" ".join(np.random.default_rng(i).choice(WORDS, 24)) for i in range(4)]
    result = head_taxonomy(planted, texts=texts, n_clusters=4)
    frame = result.to_frame().set_index(["layer", "head"])
    assert frame.loc[(0, 0), "previous_token"] > 0.9
    assert frame.loc[(1, 0), "induction"] > 0.9
    assert frame.loc[(0, 1), "sink"] > 0.9
    assert result.heads("previous_token") == [(0, 0)]
    assert result.heads("induction") == [(1, 0)]
    assert result.heads("sink") == [(0, 1)]
    assert set(result.heads("uniform")) == {(0, 2), (0, 3), (1, 1), (1, 2), (1, 3)}
    assert frame.loc[(1, 1), "uniform"] == pytest.approx(1.0, abs=1e-4)  # zero Q/K
    # four behaviours, four clusters: the five uniform heads share one, each planted head has its own
    clusters = frame.cluster
    uniform_cluster = {clusters[h] for h in result.heads("uniform")}
    assert len(uniform_cluster) == 1
    planted_clusters = {clusters[(0, 0)], clusters[(0, 1)], clusters[(1, 0)]}
    assert len(planted_clusters) == 3 and not planted_clusters & uniform_cluster
    assert 0 < result.silhouette <= 1


def test_tiny_induction_induction_heads_are_the_top_scorers(zoo_model):
    model = zoo_model("tiny-induction")
    result = head_taxonomy(model)
    induction = result.heads("induction")
    assert induction
    reference = induction_scores(model, n=8, seq_len=25).flatten()  # [layer * head]
    top = torch.argsort(reference, descending=True)[: len(induction)]
    assert {divmod(int(i), model.n_heads) for i in top} == set(induction)
    frame = result.to_frame()
    np.testing.assert_allclose(
        frame.induction.to_numpy(), induction_scores(model, n=8, seq_len=20).flatten(), atol=0.02
    )  # same definition, same data (seed 0); only random repeats within r differ
    assert result.heads("previous_token") == [(0, 3)]


def test_detection_scores_match_transformer_lens_detect_head(zoo_model):
    from transformer_lens.head_detector import detect_head

    from analysis.anatomy.taxonomy import _detection_scores

    model = zoo_model("tiny-ioi")
    text = "When Mary and John went to the store , John gave a drink to Mary"
    tokens = model.to_tokens(text)
    ours = _detection_scores(model, tokens)
    n = tokens.shape[1]
    for kind, name in (
        ("previous_token", "previous_token_head"),
        ("duplicate_token", "duplicate_token_head"),
    ):
        theirs = detect_head(model.bridge, text, name).numpy()  # [layer, head]
        from transformer_lens import head_detector

        pattern = getattr(head_detector, f"get_{name}_detection_pattern")(tokens.cpu())
        n_target = int((pattern.sum(-1) > 0).sum())
        np.testing.assert_allclose(ours[kind], theirs * n / n_target, rtol=1e-5, atol=1e-6)


def test_round_trip_plots_and_arguments(zoo_model):
    model = zoo_model("tiny-ioi")
    result = head_taxonomy(model, method="agglomerative", n_clusters=2)
    back = HeadTaxonomy.from_json(result.to_json())
    assert back.to_frame().equals(result.to_frame())
    assert math.isnan(back.silhouette) == math.isnan(result.silhouette)
    assert result.plot().data[0].z.shape == (6, 8)
    assert result.plot("clusters").data
    with pytest.raises(ValueError, match="method"):
        head_taxonomy(model, method="dbscan")
    with pytest.raises(ValueError, match="texts"):
        head_taxonomy(model, texts=[])
