"""Loss-plateau view on tiny-induction's training snapshots, checked against transformers
itself: greedy continuations from HF `generate`, losses from HF `labels=`, hidden states from
`output_hidden_states` and attention maps from eager `output_attentions`, each on a snapshot
loaded independently of the workbench. Also: the shipped run shows the paper's plateau signs
(repetition and collapse high early, low at the end), the result plots and round-trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from analysis.training_dynamics.loss_plateau import LossPlateau, loss_plateau
from analysis.training_dynamics.plateau_data import plateau_data

N, NEW = 4, 6


@pytest.fixture(scope="module")
def plateau(zoo_model):
    return loss_plateau(zoo_model("tiny-induction"), n=N, new_tokens=NEW)


def _hf(model, step: int | None):
    hf = AutoModelForCausalLM.from_pretrained(model.path, attn_implementation="eager").eval()
    if step is not None:
        state = {
            k: v.float()
            for k, v in load_file(f"{model.path}/history/step-{step:06d}.safetensors").items()
        }
        hf.load_state_dict(state, strict=False)
    return hf


def _cosine(hidden: np.ndarray) -> float:
    unit = hidden / np.linalg.norm(hidden, axis=-1, keepdims=True)
    sims = unit @ unit.T
    return float(sims[np.triu_indices(len(hidden), 1)].mean())


@torch.no_grad()
def test_matches_transformers_at_a_snapshot_and_the_end(plateau, zoo_model):
    model = zoo_model("tiny-induction")
    data = plateau_data(model, prompts=None, n=N, new_tokens=NEW)
    curve = plateau.curve.set_index("step")
    maps = {}
    for step in (200, None):
        hf = _hf(model, step)
        key = step if step is not None else curve.index.max()
        reps, cosines, losses, maps[key] = [], [], [], []
        for prompt, seq in zip(data.prompts, data.sequences, strict=True):
            out = hf.generate(
                prompt,
                max_new_tokens=NEW,
                min_new_tokens=NEW,
                do_sample=False,
                attention_mask=torch.ones_like(prompt),
                pad_token_id=0,
            )  # [1, pos + NEW]
            new = out[0, prompt.shape[1] :]
            reps.append((new[:-1] == new[1:]).double().mean().item())
            hidden = hf(out, output_hidden_states=True).hidden_states[1][0]  # after block 0
            cosines.append(_cosine(hidden[prompt.shape[1] - 1 : -1].double().numpy()))
            answer = hf(seq, labels=seq, output_attentions=True)
            losses.append(answer.loss.item())
            maps[key].append(answer.attentions[1][0].double().numpy())  # layer 1 [head, q, k]
        assert curve.loc[key, "repetition"] == pytest.approx(np.mean(reps), abs=1e-9)
        assert curve.loc[key, "loss"] == pytest.approx(np.mean(losses), rel=1e-4)
        layer0 = plateau.collapse.query("step == @key and layer == 0").cosine.iloc[0]
        assert layer0 == pytest.approx(np.mean(cosines), abs=1e-4)
    final = curve.index.max()
    tv = [
        0.5 * np.abs(a[:, 1:] - b[:, 1:]).sum(-1).mean(-1)
        for a, b in zip(maps[200], maps[final], strict=True)
    ]  # [head] per sequence
    got = plateau.attention.query("step == 200 and layer == 1").sort_values("head").distance
    np.testing.assert_allclose(got.to_numpy(), np.mean(tv, axis=0), atol=1e-5)


def test_checkpoints_and_plateau_signs(plateau, zoo_model):
    model = zoo_model("tiny-induction")
    steps = model.card["recipe"]["snapshots"]
    assert plateau.curve.step.tolist() == steps  # the final-step snapshot is the final model
    assert plateau.curve.checkpoint.tolist()[-1] == "final"
    last = plateau.attention.query("checkpoint == 'final'").distance
    assert (last == 0).all() and plateau.attention.distance.between(0, 1).all()
    first, end = plateau.curve.iloc[0], plateau.curve.iloc[-1]
    assert first.loss > end.loss and first.repetition > 0.5 > end.repetition
    assert first.repetition > first.data_repetition
    cos = plateau.collapse.pivot(index="step", columns="layer", values="cosine")
    assert (cos.iloc[0] > cos.iloc[-1]).all()


def test_summary_plots_and_round_trip(plateau):
    back = LossPlateau.from_json(plateau.to_json())
    assert back.to_frame().equals(plateau.to_frame())
    assert set(plateau.tables()) == {"main", "curve", "collapse", "attention"}
    summary = plateau.summary()
    assert [r["step"] for r in summary["checkpoints"]] == plateau.curve.step.tolist()
    curves = plateau.plot()
    assert len(curves.data) == 3 + 2 + 2  # loss, repetition + data, 2 layers x 2 panels
    assert len(plateau.plot("attention").data) == 16
    assert len(plateau.plot("collapse").data) == 2
    with pytest.raises(ValueError, match="kind: unknown plot kind 'pie'"):
        plateau.plot("pie")
