"""Attention statistics: per-query entropy and friends from the instrumented attention.

- `attention_stats(model, prompts) -> HeadStats`: one statistics-attention forward pass (no
  n x n pattern), per (prompt, layer, head, query);
- `corpus_stats(model, texts) -> CorpusStats`: the same aggregated over a corpus, sharded;
- `attention_pattern(model, prompt, layer, head) -> HeadPattern` and `pattern_figure(...)`:
  one head's full pattern from a cached forward pass, and its heatmap.
"""

from analysis.statistics.attention_pattern import (
    HeadPattern,
    attention_pattern,
    pattern_figure,
)
from analysis.statistics.attention_stats import attention_stats
from analysis.statistics.corpus_stats import CorpusStats, corpus_stats
from analysis.statistics.head_stats import PLOT_KINDS, SCALAR_COLUMNS, HeadStats

__all__ = [
    "PLOT_KINDS",
    "SCALAR_COLUMNS",
    "CorpusStats",
    "HeadPattern",
    "HeadStats",
    "attention_pattern",
    "attention_stats",
    "corpus_stats",
    "pattern_figure",
]
