"""Token attacks on prompts, with an attention-dissipation term.

`TokenAttack(...).fit(model, task) -> AttackResult` (`token_attack`); the objectives and the
forward pass they read are in `objectives`.
"""

from analysis.attacks.objectives import ObjectiveSpec
from analysis.attacks.token_attack import (
    AttackResult,
    TokenAttack,
    attack_shard,
    prompt_seed,
    retokenises_same,
)

__all__ = [
    "AttackResult",
    "ObjectiveSpec",
    "TokenAttack",
    "attack_shard",
    "prompt_seed",
    "retokenises_same",
]
