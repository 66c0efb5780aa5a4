"""Tokenizers for the zoo decoders, built offline with the `tokenizers` library.

- `word_level_tokenizer(words)`: one token per word or punctuation mark (tiny-ioi), so every
  name is a single token and prompts read naturally in token views.
- `bpe_tokenizer(texts, vocab_size)`: byte-level BPE trained on the given texts (tiny-induction).

Both reserve `<bos>` (id 0, prepended by TransformerLens' `to_tokens`) and `<pad>` (id 1).
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<bos>", "<pad>", "<unk>"]


def wrap_tokenizer(tokenizer: Tokenizer, **special: str) -> PreTrainedTokenizerFast:
    """`tokenizer` as a transformers tokenizer with the zoo's special tokens (`<bos>` doubling
    as EOS, `<pad>`, `<unk>`; right padding), plus any `special` ones (e.g. `sep_token`)."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<bos>",
        eos_token="<bos>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="right",
        **special,
    )


def word_level_tokenizer(words: Iterable[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over `words` (split on whitespace and punctuation)."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for word in sorted(set(words)):
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return wrap_tokenizer(tokenizer)


def bpe_tokenizer(texts: Iterable[str], *, vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on `texts` (deterministic for the same texts)."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return wrap_tokenizer(tokenizer)
