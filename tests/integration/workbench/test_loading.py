"""`load_model`: zoo names, local folders, hub ids offline, and the errors for bad input."""

from __future__ import annotations

import shutil
import time

import pytest
import torch

from workbench import ZOO, load_model


def test_local_checkpoint_folder_loads_like_the_zoo_model(tmp_path, zoo_model):
    folder = tmp_path / "my-checkpoint"
    shutil.copytree(ZOO["tiny-ioi"].path(), folder, ignore=shutil.ignore_patterns("history"))
    local = load_model(folder)
    zoo = zoo_model("tiny-ioi")
    assert local.source == "local" and local.is_causal
    tokens = zoo.to_tokens("When Mary and John went to the store, John gave a drink to")
    with torch.no_grad():
        assert torch.equal(local(tokens), zoo(tokens))


def test_hub_id_offline_fails_fast_with_one_clear_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(
        ValueError, match=r"cannot fetch hub model 'someorg/some-model': offline"
    ) as err:
        load_model("someorg/some-model")
    assert time.perf_counter() - started < 5  # no retry loop (a correctness bound, not a benchmark)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "expected a zoo name"),
        ("./does/not/exist", "no checkpoint folder at './does/not/exist'"),
        ("not a/valid/hub id", "neither a zoo name, a local folder nor a hub id"),
    ],
)
def test_bad_names_give_value_errors_naming_the_input(name, message):
    with pytest.raises(ValueError, match=message):
        load_model(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize(
    ("device", "message"), [("cuda", "no CUDA device"), ("gpu7", "not a torch device")]
)
def test_unavailable_device_is_rejected(device, message):
    with pytest.raises(ValueError, match=message):
        load_model("tiny-ioi", device=device)


def test_folder_without_config_is_rejected(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="not a HuggingFace checkpoint"):
        load_model(tmp_path)


def test_untrained_zoo_entry_names_the_training_command(monkeypatch, tmp_path):
    from workbench import zoo

    monkeypatch.setattr(zoo, "CHECKPOINT_DIR", tmp_path)
    with pytest.raises(ValueError, match="python -m workbench.zoo.train tiny-ioi"):
        load_model("tiny-ioi")


class _RunsCodeWhenUnpickled:
    """Unpickling this object creates `marker`: what a hostile pickle checkpoint would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("weights_file", ["pytorch_model.bin", "model.pt", "model.pth"])
def test_pickle_checkpoint_is_refused_without_being_unpickled(tmp_path, weights_file):
    folder = tmp_path / "pickled"
    shutil.copytree(ZOO["tiny-ioi"].path(), folder, ignore=shutil.ignore_patterns("history"))
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "code-ran"
    torch.save({"payload": _RunsCodeWhenUnpickled(str(marker))}, folder / weights_file)
    with pytest.raises(ValueError) as err:
        load_model(folder)
    assert str(err.value) == (
        f"model: the folder {str(folder)!r} holds a pickle checkpoint ({weights_file}), not "
        "safetensors; pickle checkpoints are refused (loading one can run code): convert it to "
        "model.safetensors"
    )
    assert not marker.exists()


def test_folder_without_weights_is_rejected(tmp_path):
    folder = tmp_path / "empty"
    shutil.copytree(ZOO["tiny-ioi"].path(), folder, ignore=shutil.ignore_patterns("history"))
    (folder / "model.safetensors").unlink()
    with pytest.raises(ValueError, match=r"has no weights \(no model.safetensors\)$"):
        load_model(folder)
