"""Model adapters: everything that reaches past the TransformerBridge into HF internals.

A TransformerLens or transformers upgrade should only touch this folder:

- `statistics_attention`: installs the statistics attention (`kernels.attention_with_stats`)
  into the bridge's / HF model's attention modules for the body of a `with` block;
- `weights`: per-head float64 weights read per architecture family (GPT-2, Llama-style, BERT),
  refusing any other family with one clear message;
- `snapshots`: a fresh Model with a training snapshot's weights loaded over its checkpoint;
- `modules`: the raw HF module behind a bridge component.
"""

from workbench.adapters import weights
from workbench.adapters.modules import hf_module
from workbench.adapters.snapshots import model_with_weights
from workbench.adapters.statistics_attention import StatisticsAttention, statistics_attention
from workbench.adapters.weights import HeadWeights, architecture, head_weights

__all__ = [
    "HeadWeights",
    "StatisticsAttention",
    "architecture",
    "head_weights",
    "hf_module",
    "model_with_weights",
    "statistics_attention",
    "weights",
]
