"""Token attacks on prompts, with an attention-dissipation term, and their random baseline.

`TokenAttack(...).fit(model, task) -> AttackResult` (`token_attack`: one span per prompt);
`UniversalAttack(...).fit(model, search).evaluate(model, held_out) -> UniversalAttackResult`
(`universal`: one span for many prompts, evaluated beside the random baseline with bootstrap
intervals; the result type is in `universal_result`); `random_baseline(model, attack, prompts)` (`baseline`: random spans of the same
length and token filter); `allowed_tokens` (`filters`: special tokens and, by default, every
IOI name banned). The objectives and the forward pass they read are in `objectives`.
"""

from analysis.attacks.baseline import random_baseline
from analysis.attacks.filters import allowed_tokens, name_token_ids
from analysis.attacks.objectives import ObjectiveSpec
from analysis.attacks.token_attack import (
    AttackResult,
    TokenAttack,
    attack_shard,
    prompt_seed,
    retokenises_same,
)
from analysis.attacks.universal import UniversalAttack
from analysis.attacks.universal_result import UniversalAttackResult

__all__ = [
    "AttackResult",
    "ObjectiveSpec",
    "TokenAttack",
    "UniversalAttack",
    "UniversalAttackResult",
    "allowed_tokens",
    "attack_shard",
    "name_token_ids",
    "prompt_seed",
    "random_baseline",
    "retokenises_same",
]
