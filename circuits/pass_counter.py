"""`PassCounter`: forward and backward passes a circuit method ran, for the benchmark's costs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PassCounter:
    """Forward/backward passes run by a method (each minibatch pass counts once)."""

    forward: int = 0
    backward: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as a dict with keys n_forward and n_backward."""
        return {"n_forward": self.forward, "n_backward": self.backward}


__all__ = ["PassCounter"]
