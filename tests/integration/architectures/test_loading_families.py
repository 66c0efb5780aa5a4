"""Loading families the way users do: a bare `RobertaModel` folder is refused with the fix
(and the fix works), and hub ids of real families fail fast offline, through the same loader
and error path as local folders, with one line (API) and exit 2 + one line (CLI)."""

from __future__ import annotations

import time

import pytest
import torch
import transformers

from analysis import attention_stats
from tests.cli_helpers import run_cli
from tests.integration.adapters.family_checkpoints import FAMILIES, save_checkpoint
from workbench import ZOO, load_model

ROBERTA_FIX = (
    "TransformerLens 4's bridge has no adapter for {arch}; save the checkpoint as "
    "RobertaForMaskedLM, which it loads "
    "(`RobertaForMaskedLM.from_pretrained(folder).save_pretrained(folder)`)"
)


@pytest.mark.parametrize("arch", ["RobertaModel", "RobertaForSequenceClassification"])
def test_roberta_without_its_mlm_head_is_refused_and_the_named_fix_loads(tmp_path, arch):
    torch.manual_seed(0)
    config = transformers.RobertaConfig(**FAMILIES["roberta"].kwargs)
    folder = save_checkpoint(getattr(transformers, arch)(config), tmp_path, encoder=True)
    with pytest.raises(ValueError) as err:
        load_model(str(folder))
    expected = f"model: cannot load the folder {str(folder)!r}: " + ROBERTA_FIX.format(arch=arch)
    assert str(err.value) == expected
    # the fix, as the message spells it: same encoder weights, an MLM head the bridge knows
    transformers.RobertaForMaskedLM.from_pretrained(folder).save_pretrained(folder)
    model = load_model(str(folder))
    assert not model.is_causal and model.n_layers == 2
    stats = attention_stats(model, ["the cat is in the garden ."])
    assert torch.isfinite(stats.entropy).all()


def test_an_architecture_without_an_adapter_or_a_sibling_is_named(tmp_path):
    torch.manual_seed(0)
    config = transformers.DistilBertConfig(
        vocab_size=30522, dim=64, n_layers=2, n_heads=4, hidden_dim=128
    )
    model = transformers.DistilBertForMaskedLM(config)
    folder = save_checkpoint(model, tmp_path, encoder=True)
    with pytest.raises(ValueError) as err:
        load_model(str(folder))
    assert str(err.value) == (
        f"model: cannot load the folder {str(folder)!r}: TransformerLens 4's bridge has no "
        "adapter for DistilBertForMaskedLM (supported: transformer_lens' SUPPORTED_ARCHITECTURES)"
    )


OFFLINE = (
    "offline mode (HF_HUB_OFFLINE is set). Zoo models: {zoo}; or pass a local checkpoint folder."
)


@pytest.mark.parametrize(
    "hub_id", ["EleutherAI/pythia-14m", "gpt2", "FacebookAI/roberta-base", "Qwen/Qwen3-0.6B"]
)
def test_hub_ids_offline_fail_fast_with_one_line(monkeypatch, hub_id):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(ValueError) as err:
        load_model(hub_id)
    assert time.perf_counter() - started < 5  # no retry loop (a correctness bound)
    expected = f"model: cannot fetch hub model {hub_id!r}: " + OFFLINE.format(zoo=", ".join(ZOO))
    assert str(err.value) == expected


def test_cli_hub_id_offline_exits_2_with_one_line(tmp_path):
    proc = run_cli("stats", "EleutherAI/pythia-14m", "hello", store=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "cannot fetch hub model 'EleutherAI/pythia-14m': offline mode" in lines[0]
    assert proc.stdout == ""
