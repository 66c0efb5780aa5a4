"""Entropy-collapse view on tiny-induction: snapshots load, the last snapshot reproduces the
final model, entropies match a naive float64 computation from hook_pattern."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from analysis.anatomy.entropy_collapse import (
    EntropyCollapse,
    entropy_collapse,
    entropy_collapse_view,
)
from analysis.anatomy.probe_data import natural_texts


@pytest.fixture(scope="module")
def collapse(zoo_model):
    return entropy_collapse(zoo_model("tiny-induction"))


def test_checkpoints_and_final_snapshot(collapse, zoo_model):
    model = zoo_model("tiny-induction")
    table = collapse.to_frame()
    steps = model.card["recipe"]["snapshots"]
    assert list(dict.fromkeys(table.checkpoint)) == [f"step {s}" for s in steps] + ["final"]
    assert len(table) == (len(steps) + 1) * model.n_layers * model.n_heads
    last = table[table.checkpoint == f"step {steps[-1]}"].reset_index(drop=True)
    final = table[table.checkpoint == "final"].reset_index(drop=True)
    # the last snapshot is the final weights stored in float16
    np.testing.assert_allclose(last.spectral_norm, final.spectral_norm, rtol=5e-3)
    np.testing.assert_allclose(last.entropy, final.entropy, atol=5e-3)
    first = table[table.checkpoint == f"step {steps[0]}"].reset_index(drop=True)
    assert np.abs(first.spectral_norm - final.spectral_norm).max() > 0.05  # training moved them
    assert set(collapse.correlations) == set(table.checkpoint)
    assert all(-1 <= rho <= 1 for rho in collapse.correlations.values())


def test_entropy_matches_naive_pattern_entropy(collapse, zoo_model):
    model = zoo_model("tiny-induction")
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.n_layers)]
    per_query = []
    for text in natural_texts(model):
        _, cache = model.run_with_cache(text, names=names)
        p = np.stack([cache[n][0].double().numpy() for n in names])  # [layer, head, query, key]
        ent = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)).sum(-1)
        per_query.append(ent)  # [layer, head, query]
    naive = np.concatenate(per_query, axis=-1).mean(-1)  # [layer, head]
    final = collapse.to_frame().query("checkpoint == 'final'")
    np.testing.assert_allclose(final.entropy.to_numpy(), naive.ravel(), atol=1e-4)


def test_round_trip_and_plots(collapse, zoo_model):
    back = EntropyCollapse.from_json(collapse.to_json())
    assert back.to_frame().equals(collapse.to_frame())
    scatter = collapse.plot()
    assert sum(len(trace.x) for trace in scatter.data) == 16  # one trace per layer
    assert scatter.layout.height and scatter.layout.margin.l
    assert len(collapse.plot("trajectories").data) == 16
    only_final = entropy_collapse(zoo_model("tiny-ioi"), history=False)
    assert set(only_final.to_frame().checkpoint) == {"final"}
    with pytest.warns(DeprecationWarning, match="entropy_collapse_view is deprecated"):
        old = entropy_collapse_view(zoo_model("tiny-ioi"), history=False)
    assert isinstance(old, EntropyCollapse)
    pd.testing.assert_frame_equal(old.to_frame(), only_final.to_frame())
    with pytest.raises(ValueError, match="kind"):
        collapse.plot("pie")


def test_tiny_ioi_snapshots_carry_their_own_qkv_biases(zoo_model):
    from safetensors.torch import load_file

    model = zoo_model("tiny-ioi")
    folder = Path(model.path)
    first = load_file(str(sorted((folder / "history").glob("step-*.safetensors"))[0]))
    final = load_file(str(folder / "model.safetensors"))
    name = "transformer.h.0.attn.c_attn.bias"
    assert name in first  # the QKV bias is stored and differs from the trained one
    assert not torch.equal(first[name].float(), final[name].half().float())
    view = entropy_collapse(model)
    assert view.notes == []  # nothing was borrowed from the final checkpoint
    table = view.to_frame()
    last = table[table.checkpoint == "step 3000"].reset_index(drop=True)
    final = table[table.checkpoint == "final"].reset_index(drop=True)
    np.testing.assert_allclose(last.spectral_norm, final.spectral_norm, rtol=5e-3)
    np.testing.assert_allclose(last.entropy, final.entropy, atol=5e-3)
