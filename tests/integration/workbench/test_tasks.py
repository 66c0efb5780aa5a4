"""Task datasets on real models: alignment of clean/corrupted pairs, metrics, tokenizers."""

from __future__ import annotations

import pytest
import torch

from workbench import load_model
from workbench.model import Model
from workbench.tasks import make_task
from workbench.tasks.ioi_prompts import generate_ioi_prompts


def test_ioi_task_is_aligned_and_its_metric_is_the_logit_difference(zoo_model):
    model = zoo_model("tiny-ioi")
    task = make_task("ioi", model, n=16, seed=7)
    assert task.clean_tokens.shape == task.corrupted_tokens.shape
    for i in range(task.n_prompts):
        strs = model.to_str_tokens(task.clean_tokens[i, : task.answer_pos[i] + 1])
        assert strs[-1] == "to" and strs[0] == "<bos>"
        assert (task.clean_tokens[i] != task.corrupted_tokens[i]).sum() == 1
    with torch.no_grad():
        logits = model(task.clean_tokens)
    rows = torch.arange(task.n_prompts)
    final = logits[rows, task.answer_pos]
    expected = final[rows, task.io_token] - final[rows, task.s_token]
    torch.testing.assert_close(task.metric(logits), expected, rtol=0, atol=0)


def _gpt2_style_model(folder) -> Model:
    """A random-weight GPT-2 with a GPT-2-style byte-level BPE tokenizer (leading-space name
    tokens such as 'ĠMary', '<|endoftext|>' as BOS and padding), built offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    texts = [p.text + " " + p.io for p in generate_ioi_prompts(3000, seed=0)]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=600,
            special_tokens=["<|endoftext|>"],
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tok = GPT2TokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(
        GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=64, n_layer=2, n_head=4)
    ).eval()
    hf.save_pretrained(folder)
    tok.save_pretrained(folder)
    return load_model(folder)


def test_ioi_task_builds_for_a_gpt2_style_bpe_tokenizer(tmp_path):
    model = _gpt2_style_model(tmp_path)
    task = make_task("ioi", model, n=12, seed=3)
    for i in range(task.n_prompts):
        last = int(task.answer_pos[i])
        strs = model.to_str_tokens(task.clean_tokens[i, : last + 1])
        assert strs[-1] == " to"
        assert (task.clean_tokens[i, last + 1 :] == model.tokenizer.pad_token_id).all()
        assert model.tokenizer.decode([int(task.io_token[i])]).startswith(" ")
    assert task.evaluate(model).shape == (12,)


def test_induction_task_repeats_and_corrupts_only_the_first_copy(zoo_model):
    model = zoo_model("tiny-induction")
    task = make_task("induction", model, n=8, seed=1)
    L = task.seq_len
    clean, corrupted = task.clean_tokens, task.corrupted_tokens
    assert torch.equal(clean[:, 1 : L + 1], clean[:, L + 1 :])
    assert torch.equal(clean[:, L + 1 :], corrupted[:, L + 1 :])
    assert (clean[:, 1 : L + 1] != corrupted[:, 1 : L + 1]).any(dim=1).all()
    summary = task.summary(model)
    assert summary["clean"] > summary["corrupted"] + 1.0  # nats: induction helps a lot


def test_similarity_task_separates_clean_from_corrupted_on_minilm(zoo_model):
    model = zoo_model("minilm")
    task = make_task("similarity", model, n=16, seed=2)
    assert task.readout == "blocks.5.hook_out"
    assert (task.evaluate(model) > task.evaluate(model, corrupted=True)).all()


@pytest.mark.parametrize(
    ("task", "model", "message"),
    [
        ("ioi", "minilm", "ioi needs a decoder"),
        ("induction", "minilm", "induction needs a decoder"),
        ("similarity", "tiny-ioi", "similarity needs an encoder"),
        ("sentiment", "tiny-ioi", "unknown task 'sentiment'"),
    ],
)
def test_tasks_refuse_models_they_do_not_suit(zoo_model, task, model, message):
    with pytest.raises(ValueError, match=message):
        make_task(task, zoo_model(model), n=4)
