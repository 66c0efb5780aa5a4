"""Training dynamics of the zoo decoders, measured over their saved training snapshots.

- `entropy_bound` / `EntropyBound`: measured attention entropy against sigma-Reparam's lower
  bound (Zhai et al. 2023) per head, prompt and checkpoint (`bound_math` holds the theorem).
- `loss_plateau` / `LossPlateau`: held-out loss, repetition bias of greedy outputs,
  representation collapse and attention-map progress per checkpoint (Gopalani & Hu 2025).
- `checkpoints`: the snapshots under `<checkpoint>/history/` and the final model.
"""

from analysis.training_dynamics.entropy_bound import EntropyBound, entropy_bound
from analysis.training_dynamics.loss_plateau import LossPlateau, loss_plateau

__all__ = ["EntropyBound", "LossPlateau", "entropy_bound", "loss_plateau"]
