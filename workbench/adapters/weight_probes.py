"""Measure a module's affine map or a norm's parameters by feeding it inputs, in float64.

Used by `workbench.adapters.weights` to read attention weights layout-independently:

- `probe_affine(module, d_in)`: `(W, b)` with `module(x) == x @ W + b`, from the zero vector and
  the identity basis (exact for any affine module: Linear, GPT-2's Conv1D, Falcon's Linear).
- `probe_norm(module, d)`: kind ("layernorm" / "rmsnorm"), gain, bias and eps of a norm: with
  `n` the standardised input, a norm is `g * n + beta`, so `f(x)` and `f(-x)` on a centred `x`
  give `g` and `beta` for either kind (Gemma's `(1 + w)` gain needs no rule) and a third input
  tells the kinds apart. eps is read from the module (`eps`, `variance_epsilon`, ...).

The module's parameters are cast to float64 for the call (`torch.func.functional_call`); the
module itself is not changed. Caveat: a module that computes in float32 internally (HF's
RMSNorms do, even in a float64 model) is measured to float32 precision, which is what it does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

_EPS_ATTRS = ("eps", "variance_epsilon", "epsilon", "layer_norm_eps")


def _params64(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    named = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    return {
        n: t.detach().to("cpu", torch.float64) if t.is_floating_point() else t
        for n, t in named.items()
    }


@torch.no_grad()
def _call64(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`module(x)` with its parameters in float64 (the module itself is not changed)."""
    out = torch.func.functional_call(module, _params64(module), (x,))
    return out.to(torch.float64)


def probe_affine(module: torch.nn.Module, d_in: int) -> tuple[np.ndarray, np.ndarray]:
    """`(W [d_in, d_out], b [d_out])` with `module(x) == x @ W + b`, measured in float64."""
    basis = torch.cat([torch.zeros(1, d_in), torch.eye(d_in)]).to(torch.float64)  # [1+d_in, d_in]
    out = _call64(module, basis).numpy()  # [1 + d_in, d_out]
    return out[1:] - out[0], out[0].copy()


def _eps(module: torch.nn.Module) -> float:
    for name in _EPS_ATTRS:
        value = getattr(module, name, None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    raise ValueError(f"model: cannot find the epsilon of norm {type(module).__name__}")


def _standardise(x: np.ndarray, kind: str, eps: float) -> np.ndarray:
    if kind == "layernorm":
        x = x - x.mean(-1, keepdims=True)
    return x / np.sqrt((x**2).mean(-1, keepdims=True) + eps)


def probe_norm(module: torch.nn.Module, d: int) -> dict[str, Any]:
    """Kind ("layernorm"/"rmsnorm"), gain [d], bias [d] and eps of a norm, measured.

    With `n` the standardised input, a norm is `g * n + beta`; `f(x)` and `f(-x)` give
    `g` and `beta` for either kind, and a third input tells the kinds apart (float64 unless
    the module computes in float32 itself, as Gemma's does: then to float32 precision).
    """
    eps = _eps(module)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, d)) * 3.0 + 0.5  # [2, d]
    x[0] -= x[0].mean()  # centred: n(x) is the same for both kinds, so g and beta follow
    out = _call64(module, torch.from_numpy(np.vstack([x[0], -x[0]]))).numpy()  # [2, d]
    n = _standardise(x[0], "rmsnorm", eps)
    gain, beta = (out[0] - out[1]) / (2 * n), (out[0] + out[1]) / 2
    test = _call64(module, torch.from_numpy(x[1:])).numpy()[0]  # [d]
    errors = {
        kind: np.abs(gain * _standardise(x[1], kind, eps) + beta - test).max()
        for kind in ("layernorm", "rmsnorm")
    }
    kind = min(errors, key=errors.get)
    tolerance = 1e-5 * max(1.0, np.abs(test).max())
    if errors[kind] > tolerance:
        raise ValueError(
            f"model: norm {type(module).__name__} is neither a LayerNorm nor an RMSNorm "
            f"(off by {errors[kind]:.1e})"
        )
    return {"norm": kind, "gain": gain, "beta": beta, "eps": eps}
