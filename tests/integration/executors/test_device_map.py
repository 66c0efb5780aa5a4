"""`load_model(device_map=..., n_devices=...)`: passed through to TransformerLens 4 and checked
first. Only single-device maps can run here (no GPU): they must reproduce the plain load
exactly, hooks and caches included. Multi-GPU splits are untested on this machine."""

from __future__ import annotations

import pytest
import torch

from workbench import load_model

PROMPT = "When Mary and John went to the store, John gave a drink to"


@pytest.mark.parametrize("device_map", ["cpu", {"": "cpu"}, "auto"])
def test_single_device_maps_match_the_plain_load(zoo_model, device_map):
    plain = zoo_model("tiny-ioi")
    mapped = load_model("tiny-ioi", device_map=device_map)
    assert torch.equal(mapped(PROMPT), plain(PROMPT))
    name = "blocks.1.attn.hook_pattern"
    _, cache = mapped.run_with_cache(PROMPT, names=[name])
    assert torch.equal(cache[name], plain.run_with_cache(PROMPT, names=[name])[1][name])


def test_one_device_is_the_plain_load(zoo_model):
    assert torch.equal(load_model("tiny-ioi", n_devices=1)(PROMPT), zoo_model("tiny-ioi")(PROMPT))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_devices": 0}, "n_devices: expected a positive integer"),
        ({"n_devices": True}, "n_devices: expected a positive integer"),
        ({"device_map": "auto", "n_devices": 1}, "n_devices: pass either"),
        ({"device": "cpu", "device_map": "auto"}, "device_map: pass either device"),
        ({"device_map": ""}, "device_map: expected"),
        ({"device_map": {"transformer": True}}, "device_map: expected"),
        ({"device_map": {}}, "device_map: expected"),
    ],
)
def test_bad_placements_are_refused_before_loading(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_model("tiny-ioi", **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_devices": 2}, "n_devices: 2 CUDA devices requested, 0 available"),
        ({"device_map": {"": 0}}, "device_map: .* needs CUDA"),
        ({"device_map": "cuda:0"}, "device_map: .* needs CUDA"),
    ],
)
def test_cuda_placements_without_cuda_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_model("tiny-ioi", **kwargs)
