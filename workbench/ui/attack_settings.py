"""The settings the Attacks page's two jobs share (the per-prompt attack in
`workbench.ui.pages.attacks` and the universal one in `workbench.ui.attack_universal`): the
objectives, the bounds of the dissipation weight and the seed, the check of those controls,
and the attack options the dashboard fits with (minibatch 16, progress on)."""

from __future__ import annotations

from typing import Any

from workbench.ui import input_checks as check
from workbench.ui import state
from workbench.ui.shared import parse_heads

OBJECTIVES = ("flip", "raise_loss", "dissipation", "embedding")
WEIGHT_LIMITS = (0, 100)
SEED_LIMITS = (0, 2**31)


def check_shared(session: Any, objective: Any, heads: Any, weight: Any, seed: Any) -> dict:
    """The session and the shared controls, checked (`ValueError` naming the bad one)."""
    return {
        "session": state.check_session(session),
        "objective": check.choice(objective, "objective", OBJECTIVES),
        "heads": parse_heads(heads) if heads else (),
        "weight": check.number(weight or 0, "dissipation weight", *WEIGHT_LIMITS),
        "seed": check.whole(seed or 0, "seed", SEED_LIMITS[1] + 1),
    }


def attack_options(objective, heads, weight, steps, n_adv, seed) -> dict[str, Any]:
    """Keyword arguments of `TokenAttack` / `UniversalAttack` for checked page settings."""
    return {
        "objective": objective,
        "heads": heads,
        "dissipation_weight": float(weight),
        "steps": int(steps),
        "n_adv": int(n_adv),
        "batch_size": 16,
        "seed": int(seed),
        "progress": True,
    }
