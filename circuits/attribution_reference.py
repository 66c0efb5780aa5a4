"""The weight-gradient formulation of EAP/EAP-IG, kept as the reference for `port_gradients`.

`weight_gradient_scores` is what `circuits.attribution` computed before per-port aggregation:
`EdgePatcher.forward` rebuilds every port's input as `resid - sum_e w_e * delta_u` inside
autograd with `w` requiring grad, and `dM/dw` is read off the weights. It holds every port's
stacked upstream differences for the backward (memory grows with edges x positions x
d_model), so it serves only the equivalence tests and the before/after benchmark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from circuits.edge_patching import EdgePatcher


def weight_gradient_scores(
    patcher: EdgePatcher,
    tokens: torch.Tensor,
    metric,
    *,
    deltas: torch.Tensor | None = None,
    source: torch.Tensor | None = None,
    alpha: float = 0.0,
    input_override: torch.Tensor | None = None,
) -> torch.Tensor:
    """`[edge]` float64 `dM/dw_e` at weights 0 (`deltas=`) or all `alpha` (`source=`)."""
    if (deltas is None) == (source is None):
        raise ValueError("weight_gradient_scores: give exactly one of deltas= and source=")
    n_edges = patcher.graph.n_edges
    with torch.enable_grad():
        weights = torch.full((n_edges,), float(alpha), requires_grad=True)  # [edge]
        output = patcher.forward(
            tokens, weights, source, deltas=deltas, force=True, input_override=input_override
        )
        (grad,) = torch.autograd.grad(metric(output).sum(), weights)
    return grad.double()  # [edge]


__all__ = ["weight_gradient_scores"]
