"""Per-port gradient aggregation (`circuits.port_gradients`) equals the weight-gradient EAP.

The reference is the formulation `circuits.attribution` used before: every port's input rebuilt
as `resid - sum_e w_e * delta_u` inside autograd and `dM/dw` read off the weights
(`circuits.attribution_reference.weight_gradient_scores`, built on `EdgePatcher.forward`).
Both modes are compared: weights 0 with fixed differences and a replaced input (EAP and the
"inputs" path of EAP-IG) and weights all `alpha` against a source run (the "edges" path), on
tiny-ioi (GPT-2), tiny-induction (Llama, RMSNorm, RoPE), MiniLM (post-LN encoder: frozen-LN
adjoints) and a random parallel-block GPT-NeoX checkpoint. Then `eap`/`eap_ig` themselves
against the reference summed over minibatches.
"""

from __future__ import annotations

import pytest
import torch
import transformers

from circuits import eap, eap_ig
from circuits.attribution_reference import weight_gradient_scores
from circuits.edge_patching import EdgePatcher
from circuits.graph import build_graph
from circuits.port_gradients import port_scores
from tests.integration.adapters.family_checkpoints import save_checkpoint
from workbench import load_model
from workbench.tasks import make_task


@pytest.fixture(scope="module")
def neox(tmp_path_factory):
    """A random parallel-block GPT-NeoX (2 layers, 4 heads, d_model 64), loaded by folder."""
    from workbench.tasks.induction import make_induction_task

    torch.manual_seed(0)
    config = transformers.GPTNeoXConfig(
        vocab_size=2048,
        num_hidden_layers=2,
        max_position_embeddings=128,
        hidden_size=64,
        num_attention_heads=4,
        intermediate_size=128,
        rotary_pct=0.25,
        use_parallel_residual=True,
        initializer_range=0.1,
    )
    hf = transformers.GPTNeoXForCausalLM(config).eval()
    with torch.no_grad():
        for param in hf.parameters():
            if param.dim() == 1:  # NeoX's two norms differ, so the wrong one would show
                param.add_(0.3 * torch.randn_like(param))
    model = load_model(str(save_checkpoint(hf, tmp_path_factory.mktemp("neox"))))
    return model, make_induction_task(model, n=3, seq_len=6, seed=1)


@pytest.fixture(scope="module")
def cases(zoo_model, neox):
    def get(name):
        if name == "neox":
            return neox
        model = zoo_model(name)
        task = {
            "tiny-ioi": lambda: make_task("ioi", model, n=4, seed=3),
            "tiny-induction": lambda: make_task("induction", model, n=3, seed=3),
            "minilm": lambda: make_task("similarity", model, n=3),
        }[name]()
        return model, task

    return get


def _close(new: torch.Tensor, ref: torch.Tensor) -> None:
    assert new.shape == ref.shape and new.dtype == torch.float64
    assert (ref != 0).sum() > ref.numel() // 2  # the comparison is not among zeros
    scale = ref.abs().max()
    torch.testing.assert_close(new, ref, atol=1e-6 * scale, rtol=1e-5)


@pytest.mark.parametrize("name", ["tiny-ioi", "tiny-induction", "minilm", "neox"])
def test_port_scores_equal_weight_gradients(name, cases):
    model, task = cases(name)
    patcher = EdgePatcher(model, build_graph(model, readout=task.readout))
    clean = patcher.writer_outputs(task.clean_tokens)  # [writer, batch, pos, d_model]
    corrupted = patcher.writer_outputs(task.corrupted_tokens)
    deltas = clean - corrupted
    point = corrupted[0] + 0.4 * deltas[0]  # an interior point of the input path
    for override in (None, point):
        args = (patcher, task.clean_tokens, task.metric)
        kwargs = {"deltas": deltas, "input_override": override}
        _close(port_scores(*args, **kwargs), weight_gradient_scores(*args, **kwargs))
    for alpha in (0.1, 0.7):  # the edges path: every edge partly patched
        args = (patcher, task.clean_tokens, task.metric)
        kwargs = {"source": corrupted, "alpha": alpha}
        _close(port_scores(*args, **kwargs), weight_gradient_scores(*args, **kwargs))


@pytest.mark.parametrize("ig_path", ["inputs", "edges"])
def test_eap_ig_over_minibatches_equals_the_reference(ig_path, cases):
    model, task = cases("tiny-induction")
    steps = 3
    got = eap_ig(model, task, ig_steps=steps, ig_path=ig_path, batch_size=2)
    patcher = EdgePatcher(model, build_graph(model, readout=task.readout))
    clean = patcher.writer_outputs(task.clean_tokens)
    corrupted = patcher.writer_outputs(task.corrupted_tokens)
    total = torch.zeros(patcher.graph.n_edges, dtype=torch.float64)
    for k in range(1, steps + 1):
        if ig_path == "inputs":
            point = corrupted[0] + k / steps * (clean[0] - corrupted[0])
            kwargs = {"deltas": clean - corrupted, "input_override": point}
        else:
            kwargs = {"source": corrupted, "alpha": (k - 0.5) / steps}
        total += weight_gradient_scores(patcher, task.clean_tokens, task.metric, **kwargs)
    _close(got.scores, total / (task.n_prompts * steps))
    assert got.config["n_forward"] == 2 * 2 + 2 * steps and got.config["n_backward"] == 2 * steps


def test_denoising_eap_on_ioi_equals_the_reference(cases):
    model, task = cases("tiny-ioi")
    got = eap(model, task, direction="denoising", batch_size=3)
    patcher = EdgePatcher(model, build_graph(model, readout=task.readout))
    clean = patcher.writer_outputs(task.clean_tokens)
    corrupted = patcher.writer_outputs(task.corrupted_tokens)
    ref = weight_gradient_scores(
        patcher, task.corrupted_tokens, task.metric, deltas=corrupted - clean
    )
    _close(got.scores, ref / task.n_prompts)


def test_port_scores_refuses_ambiguous_modes(cases):
    model, task = cases("tiny-ioi")
    patcher = EdgePatcher(model, build_graph(model, readout=task.readout))
    source = patcher.writer_outputs(task.corrupted_tokens)
    with pytest.raises(ValueError, match="exactly one of deltas= and source="):
        port_scores(patcher, task.clean_tokens, task.metric)
    with pytest.raises(ValueError, match="alpha must be 0"):
        port_scores(patcher, task.clean_tokens, task.metric, deltas=source, alpha=0.5)
