"""Planted-circuit models: small transformers whose weights are set by construction.

A circuit spec (`spec`: residual blocks, heads as maps between blocks, distractor MLPs) is
compiled into a GPT-2 (`compile`) or Llama (`compile_llama`) checkpoint whose task-carrying
edges are known exactly. The designs shipped in the zoo as `planted-*` are in `designs`, the
writer of the checkpoint folders and model cards in `build`. Regenerate them with `python -m workbench.zoo.planted build`.
"""

from workbench.zoo.planted.designs import SPECS

PLANTED = tuple(SPECS)

__all__ = ["PLANTED", "SPECS"]
