"""Edge attribution scores from one gradient per port, aggregated as the backward pass runs.

For an edge `u -> p` whose weight `w` enters only port `p`'s input
`x_p = resid - w * d_u` (d_u: the writer's difference, carried through frozen norms in post-LN
encoders), `dM/dw = -T_u(d_u) . dM/dx_p`. So one gradient per port, `G_p = dM/dx_p`
(`[batch, pos, d_model]`, per head for q/k/v ports), scores all of that port's upstream edges
with one matmul, `[n_up, batch*pos*d_model] x [batch*pos*d_model]`, after which `G_p` is freed.
`port_scores` runs the model with every port input a distinct tensor, registers a tensor hook
on it that forms the port's scores when its gradient arrives, and backpropagates once to the
input node's output (the only leaf). Nothing of size edges x positions x d_model is ever held:
per batch the memory is the model's own activations for backward, the writer differences
`[writer, batch, pos, d_model]`, and one port's gradient at a time.

q/k/v ports: all heads of a layer read the same port input in an unpatched run, so the forward
computes `ln1(x) @ W + b` once per layer; the hook on that `[batch, pos, head, d_head]`
activation turns its gradient into the per-head port gradient `J_ln1(x)^T (W_h g_h)` with a
local vector-Jacobian product of `ln1` at `x` (the same numbers autograd forms through a per-head
copy of the input, as `EdgePatcher.forward` builds it). A layer's q, k and v ports share their
upstream writers, so their gradients are scored together once all three have arrived (the
writer differences are read once per layer, not three times).

Post-LN encoders: `T_u = L_r o ... o L_s` (the frozen norms `L_i v = g_i (v - mean v) / s_i`
from the writer's stage `s` to the port's read stage `r`); instead of pushing every writer's
difference forward, the port gradient is pulled back through the adjoints
`L_i^T G = centre(g_i G / s_i)` and each stage's writers are scored against it.

Two modes, matching `circuits.attribution`'s integration paths:
- `deltas=` (ig_path "inputs"): every edge weight is 0 (ports read the unpatched residual),
  `d_u = deltas[u]` fixed, the input node's output optionally replaced (`input_override`);
- `source=`, `alpha=` (ig_path "edges"): every edge weight is `alpha`, so each port reads
  `resid - alpha * sum_u (out_u - source_u)` (through the frozen norms in post-LN encoders)
  and `d_u = out_u - source_u` with this run's outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from circuits.edge_patching import EdgePatcher


def _centre(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(-1, keepdim=True)


def _dots(diff: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """`-<diff_u, grad_h>` as one matmul: diff `[up, batch, pos, d_model]`, grad
    `[batch, pos, d_model]` or `[batch, pos, head, d_model]` -> `[up, 1 or head]`."""
    flat = grad.unsqueeze(2) if grad.dim() == 3 else grad  # [batch, pos, head, d_model]
    flat = flat.permute(0, 1, 3, 2).reshape(-1, flat.shape[2])  # [batch*pos*d_model, head]
    return -(diff.reshape(diff.shape[0], -1) @ flat)  # [up, head]


class _PortRun:
    """State of one forward/backward: writer outputs, residuals, norm scales and the score
    matrix `[writer, port]` the gradient hooks fill."""

    def __init__(self, patcher: EdgePatcher, deltas, source, alpha, input_override) -> None:
        self.p = patcher
        self.deltas = deltas  # [writer, batch, pos, d_model] or None
        self.source = source  # [writer, batch, pos, d_model] or None
        self.alpha = alpha
        self.input_override = input_override
        self.outs: list[torch.Tensor | None] = [None] * patcher.n_writers
        self.resid: dict[int, torch.Tensor] = {}
        self.scales: dict[int, torch.Tensor] = {}  # post-LN: stage -> [batch, pos, 1]
        self.readout: list[torch.Tensor] = []
        self.pending: dict[int, dict[str, torch.Tensor]] = {}  # layer -> kind -> q/k/v grad
        self.leaf: torch.Tensor | None = None
        self.diff: torch.Tensor | None = None  # edges mode: [writer, batch, pos, d_model]
        self.scores = torch.zeros(patcher.n_writers, len(patcher.graph.ports), dtype=torch.float64)

    def release(self) -> None:
        """Drop every tensor this run holds (activations, differences, the leaf)."""
        self.outs = []
        self.resid, self.scales, self.readout = {}, {}, []
        self.leaf = self.diff = self.deltas = self.source = self.input_override = None

    # ------------------------------------------------------------ forward: port inputs
    def port_input(self, key: tuple[int, str], x: torch.Tensor, distinct: bool = True):
        """The port's input `[batch, pos, d_model]`; `distinct`: a tensor of its own (for a
        hook on it) even at weight 0."""
        if self.alpha == 0.0:
            return x.clone() if distinct else x  # a clone is apart from the residual it reads
        n_up = self.p._n_up[key]
        if not self.p.post_ln:
            outs = torch.stack(self.outs[:n_up]).sum(0)  # [batch, pos, d_model]
            return x - self.alpha * (outs - self.source[:n_up].sum(0))
        layer, kind = key
        read_stage = 2 * layer + self.p._read_stage[kind]
        stage = self.p._stage[:n_up]
        acc = None
        for i in range(read_stage + 1):  # Horner over norm stages, as EdgePatcher does
            chosen = (stage == i).nonzero()[:, 0].tolist()
            if chosen:
                term = torch.stack([self.outs[u] - self.source[u] for u in chosen]).sum(0)
                acc = term if acc is None else acc + term
            if acc is not None:
                acc = _centre(acc) / self.scales[i] * self.p._ln_gain[i]
        return x - self.alpha * acc

    # ------------------------------------------------------------ backward: scores
    def differences(self, n_up: int) -> torch.Tensor:
        """`[n_up, batch, pos, d_model]` writer differences d_u."""
        if self.deltas is not None:
            return self.deltas[:n_up]
        if self.diff is None:
            outs = torch.stack([o.detach() for o in self.outs])  # [writer, batch, pos, d_model]
            self.diff = outs - self.source
        return self.diff[:n_up]

    def score(self, key: tuple[int, str], grad: torch.Tensor, cols: list[int] | None = None):
        """Scores of the port group `key` from `grad` `[batch, pos, d_model]` or
        `[batch, pos, head, d_model]` (dM/d port input; `cols`: the ports of its heads when
        they are not `key`'s own), written into `self.scores`."""
        n_up = self.p._n_up[key]
        if cols is None:
            cols = self.p._cols[key] if grad.dim() == 4 else self.p._cols[key][:1]
        diff = self.differences(n_up)  # [up, batch, pos, d_model]
        grad = grad.double() if diff.dtype == torch.float64 else grad
        if not self.p.post_ln:
            self.scores[:n_up, cols] = _dots(diff, grad).double().cpu()
            return
        layer, kind = key
        read_stage = 2 * layer + self.p._read_stage[kind]
        stage = self.p._stage[:n_up]
        for i in range(read_stage, -1, -1):  # G <- L_i^T G, then score stage-i writers
            scale = self.scales[i].detach()
            scale = scale.reshape(*scale.shape[:2], *([1] * (grad.dim() - 2)))
            grad = _centre(grad * self.p._ln_gain[i].detach() / scale)
            chosen = (stage == i).nonzero()[:, 0]
            if len(chosen):
                out = _dots(diff[chosen], grad).double().cpu()  # [chosen, port]
                self.scores[chosen[:, None], torch.tensor(cols)[None, :]] = out

    def qkv_grad(self, key: tuple[int, str], x: torch.Tensor, proj: torch.Tensor):
        """Hook on a q/k/v activation: its gradient `[batch, pos, head, d_head]` becomes the
        per-head port gradient through `proj` and a local VJP of `ln1` at `x`."""
        layer = key[0]

        def hook(grad: torch.Tensor) -> None:
            g_ln = torch.einsum("bphd,hmd->bphm", grad, proj.detach())  # [b, p, head, d_model]
            if self.p.post_ln:
                g_x = g_ln
            else:
                with torch.enable_grad():
                    xh = x[:, :, None, :].expand_as(g_ln).clone().requires_grad_(True)
                    (g_x,) = torch.autograd.grad(self.p._ln1[layer](xh), xh, g_ln)
            self.pending.setdefault(layer, {})[key[1]] = g_x
            if len(self.pending[layer]) == 3:
                self.flush(layer)

        return hook

    def flush(self, layer: int) -> None:
        """Score a layer's q/k/v ports together (they share their upstream writers, so their
        differences are read once): `[batch, pos, 3 * head, d_model]` against them."""
        group = self.pending.pop(layer)
        kinds = sorted(group)
        cols = [c for kind in kinds for c in self.p._cols[(layer, kind)]]
        self.score((layer, kinds[0]), torch.cat([group[k] for k in kinds], dim=2), cols)

    def port_grad(self, key: tuple[int, str]):
        def hook(grad: torch.Tensor) -> None:
            self.score(key, grad)

        return hook


def port_scores(
    patcher: EdgePatcher,
    tokens: torch.Tensor,
    metric,
    *,
    deltas: torch.Tensor | None = None,
    source: torch.Tensor | None = None,
    alpha: float = 0.0,
    input_override: torch.Tensor | None = None,
) -> torch.Tensor:
    """`[edge]` float64 `dM/dw_e` at edge weights all 0 (`deltas=`) or all `alpha`
    (`source=`), `M = metric(output).sum()`; one forward and one backward on `tokens`."""
    if (deltas is None) == (source is None):
        raise ValueError("port_scores: give exactly one of deltas= and source=")
    if deltas is not None and alpha != 0.0:
        raise ValueError("port_scores: deltas= scores at weight 0 (alpha must be 0)")
    p = patcher
    run = _PortRun(p, deltas, source, float(alpha), input_override)
    record = deltas is None  # writer outputs are only read in the edges mode

    def input_hook(x, *, hook):
        x = (x if input_override is None else input_override).detach().requires_grad_(True)
        run.leaf = x
        run.outs[0] = x
        return x

    def resid_hook(layer):
        def hook(x, *, hook):
            if layer == 0 and not p.post_ln:
                x = input_hook(x, hook=hook)
            run.resid[layer] = x
            return x

        return hook

    def scale_hook(stage):
        def hook(x, *, hook):
            run.scales[stage] = x

        return hook

    def z_hook(layer):
        def hook(z, *, hook):
            per_head = torch.einsum("bphd,hdm->bphm", z, p._attn[layer].W_O)
            first = p._first_head[layer]
            for h in range(per_head.shape[2]):
                run.outs[first + h] = per_head[:, :, h]  # [batch, pos, d_model]

        return hook

    def mlp_out_hook(layer):
        def hook(x, *, hook):
            run.outs[p._mlp_writer[layer]] = x

        return hook

    def qkv_hook(layer, kind):
        key = (layer, kind)

        def hook(act, *, hook):  # act: [batch, pos, head, d_head]
            x = run.port_input(key, run.resid[layer], distinct=False)  # [batch, pos, d_model]
            proj, bias = p._projection(layer, kind)
            new = torch.einsum("bpm,hmd->bphd", p._ln1[layer](x), proj) + bias
            new.register_hook(run.qkv_grad(key, x.detach(), proj))
            return new

        return hook

    def mlp_input_hook(layer):
        key = (layer, "mlp")

        def hook(x, *, hook):  # parallel blocks: the MLP's normalised input
            port = run.port_input(key, run.resid[layer])
            port.register_hook(run.port_grad(key))
            return p._mlp_norm[layer](port)

        return hook

    def port_hook(key):
        def hook(x, *, hook):  # the residual this port reads
            port = run.port_input(key, x)
            port.register_hook(run.port_grad(key))
            if key[1] == "output":
                run.readout.append(port)
            return port

        return hook

    n_layers = p.model.n_layers
    hooks = []
    if p.post_ln:
        hooks.append(("embed_ln.hook_in", input_hook))
        hooks += [(f"{n}.hook_scale", scale_hook(i)) for i, n in enumerate(p._ln_names)]
    for layer in range(n_layers):
        hooks.append((f"blocks.{layer}.hook_resid_pre", resid_hook(layer)))
        if record:
            hooks.append((f"blocks.{layer}.attn.hook_z", z_hook(layer)))
        for kind in ("q", "k", "v"):
            hooks.append((f"blocks.{layer}.attn.hook_{kind}", qkv_hook(layer, kind)))
        if p.parallel:
            hooks.append((f"blocks.{layer}.mlp.hook_in", mlp_input_hook(layer)))
        elif p.graph.has_mlp:
            mlp_in = "mlp.in.hook_in" if p.post_ln else "ln2.hook_in"
            hooks.append((f"blocks.{layer}.{mlp_in}", port_hook((layer, "mlp"))))
        if p.graph.has_mlp and record:
            hooks.append((f"blocks.{layer}.mlp.hook_out", mlp_out_hook(layer)))
    out_port = f"blocks.{n_layers - 1}.hook_out" if p.post_ln else "ln_final.hook_in"
    hooks.append((out_port, port_hook((n_layers, "output"))))
    with torch.enable_grad():
        with p.model.intervene(hooks):
            output = p.model(tokens.to(p.model.device))
        output = run.readout[0] if p.post_ln else output
        value = metric(output).sum()
        torch.autograd.grad(value, run.leaf)
    for layer in list(run.pending):  # q/k/v ports some of which got no gradient
        run.flush(layer)
    scores = run.scores[p._edge_u, p._edge_p]  # [edge]
    run.release()  # the hooks' closures hold `run`: break the cycles so tensors free now
    return scores


__all__ = ["port_scores"]
