"""Training data for the zoo decoders, all available offline.

- IOI sequences: `<bos> prompt answer` from the IOI generator.
- Text: the Python standard library's own source files (sorted, so the corpus is the same for
  the same Python version), split into a training and a held-out set by file.
- Repeated random token sequences, which make induction heads form quickly (NOTES-TL4).
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import torch


def stdlib_files() -> list[Path]:
    """The top-level Python stdlib modules plus a few packages, sorted for reproducibility."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(root.glob("*.py"))
    for package in ("json", "email", "http", "logging", "unittest", "asyncio", "importlib"):
        files += sorted((root / package).glob("*.py"))
    return [f for f in files if f.stat().st_size > 2_000]


def stdlib_texts() -> tuple[list[str], list[str]]:
    """(train, held-out) source texts: every 10th file is held out."""
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in stdlib_files()]
    train = [t for i, t in enumerate(texts) if i % 10 != 0]
    held_out = [t for i, t in enumerate(texts) if i % 10 == 0]
    return train, held_out


def token_stream(tokenizer, texts: list[str]) -> torch.Tensor:
    """All texts tokenised and concatenated into one 1-D stream."""
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer.encode(text, add_special_tokens=False))
    return torch.tensor(ids, dtype=torch.long)


def text_windows(
    stream: torch.Tensor, *, batch: int, length: int, bos: int, gen: torch.Generator
) -> torch.Tensor:
    """`[batch, length]` random windows of the stream, each starting with BOS."""
    starts = torch.randint(0, len(stream) - length, (batch,), generator=gen)
    windows = torch.stack(
        [stream[s : s + length - 1] for s in starts.tolist()]
    )  # [batch, length-1]
    return torch.cat([torch.full((batch, 1), bos), windows], dim=1)  # [batch, length]


def repeated_sequences(
    *,
    batch: int,
    length: int,
    vocab: int,
    n_special: int,
    bos: int,
    gen: torch.Generator,
    period: tuple[int, int] = (4, 64),
    source: torch.Tensor | None = None,
) -> torch.Tensor:
    """`[batch, length]` rows of BOS + a chunk (length drawn from `period`) repeated until
    `length`. Chunks are uniform random tokens, or windows of the `source` token stream."""
    rows = []
    for _ in range(batch):
        size = int(torch.randint(period[0], period[1] + 1, (1,), generator=gen))
        if source is None:
            chunk = torch.randint(n_special, vocab, (size,), generator=gen)
        else:
            start = int(torch.randint(0, len(source) - size, (1,), generator=gen))
            chunk = source[start : start + size]
        reps = (length - 1) // size + 1
        rows.append(torch.cat([torch.tensor([bos]), chunk.repeat(reps)[: length - 1]]))
    return torch.stack(rows)  # [batch, length]
