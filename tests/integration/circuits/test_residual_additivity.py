"""Edge interventions refuse families whose blocks do not add sublayer outputs unchanged.

`circuits.residual_additivity` measures `block_out - block_in - attn_out - mlp_out` through the
bridge's hooks. The reference here is independent of TransformerLens: transformers' own
decoder layers, with forward hooks on each layer's `self_attn` and `mlp` modules and the
layer inputs/outputs from `output_hidden_states`. Llama adds both outputs as they are (the gap
is float32 round-off); Gemma-2 normalises them first (post-sublayer norms), so per-edge deltas
there would be wrong and every edge method must refuse rather than return numbers.
"""

from __future__ import annotations

import pytest
import torch

import circuits
from circuits.edge_patching import EdgePatcher
from circuits.graph import build_graph
from circuits.residual_additivity import additivity_gap, writer_sum_gap
from tests.integration.adapters.family_checkpoints import build_checkpoint, build_model
from workbench import load_model
from workbench.tasks import make_task

TOKENS = torch.arange(1, 9)[None]  # [1, 8]


def hf_gap(model: torch.nn.Module) -> float:
    """max |h_{l+1} - h_l - attn_l - mlp_l| / max |h_{l+1}| from transformers' own modules."""
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    for index, layer in enumerate(model.model.layers):
        for part in ("self_attn", "mlp"):
            module = getattr(layer, part)

            def keep(_module, _args, out, key=f"{part}{index}"):
                outputs[key] = out[0] if isinstance(out, tuple) else out

            handles.append(module.register_forward_hook(keep))
    try:
        with torch.no_grad():
            hidden = model.eval()(TOKENS, output_hidden_states=True).hidden_states
    finally:
        for handle in handles:
            handle.remove()
    gap = scale = 0.0
    n_layers = len(model.model.layers)
    for index in range(n_layers - 1):  # the last hidden state is after the final norm
        step = hidden[index + 1] - hidden[index] - outputs[f"self_attn{index}"]
        step = step - outputs[f"mlp{index}"]
        gap = max(gap, step.abs().max().item())
        scale = max(scale, hidden[index + 1].abs().max().item())
    return gap / scale


@pytest.mark.parametrize("family, additive", [("llama", True), ("gemma2", False)])
def test_gap_agrees_with_transformers_own_layers(tmp_path, family, additive):
    torch.manual_seed(0)
    reference = hf_gap(build_model(family))
    model = load_model(str(build_checkpoint(family, tmp_path / family)))
    gap = additivity_gap(model)
    if additive:
        assert reference < 1e-5 and gap < 1e-5, (reference, gap)
    else:
        assert reference > 0.1 and gap > 0.1, (reference, gap)


@pytest.mark.parametrize("method", ["path", "eap", "acdc"])
def test_edge_methods_refuse_post_sublayer_norms(tmp_path_factory, method):
    folder = build_checkpoint("gemma2", tmp_path_factory.mktemp("g2") / "gemma2")
    model = load_model(str(folder))
    task = make_task("induction", model, n=2)
    with pytest.raises(ValueError, match="add their attention and MLP outputs to the residual"):
        circuits.trace(model, task, method=method)


@pytest.mark.parametrize("name", ["tiny-ioi", "tiny-induction", "planted-induction-llama"])
def test_zoo_models_are_additive(zoo_model, name):
    assert additivity_gap(zoo_model(name)) < 1e-6


@pytest.mark.parametrize("family", ["gpt2", "gpt_neox", "falcon", "gpt_bigcode", "granite"])
def test_writer_outputs_sum_to_the_final_residual(tmp_path, family):
    model = load_model(str(build_checkpoint(family, tmp_path / family)))
    patcher = EdgePatcher(model, build_graph(model))
    assert writer_sum_gap(patcher) < 1e-5
