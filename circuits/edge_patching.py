"""Edge-level interventions: run a model with chosen graph edges patched.

`EdgePatcher.forward(tokens, weights, source)` runs the model on `tokens` and rebuilds every
input port's residual as

    port_input = resid_actual - sum_u weights[u -> port] * (actual_out_u - source_out_u)

where `actual_out_u` is what upstream node `u` writes in *this* run and `source_out_u` what it
wrote in the source run (e.g. the corrupted prompt). Weight 1 patches the edge (the port sees
`u`'s source output), 0 keeps it, values in between interpolate; with `deltas=` given the
subtracted term is a fixed tensor instead (EAP/EAP-IG take gradients with respect to the
weights at 0).

Per-node outputs are computed from the hooks the bridge has in raw mode: a head's output is
`hook_z[:, :, h] @ W_O[h]` (valid everywhere, unlike `hook_result`), an MLP's is
`mlp.hook_out`, the input node's is `blocks.0.hook_resid_pre`. A modified port input reaches the
model by replacing that head's slice of `hook_q` / `hook_k` / `hook_v` with
`ln1(port_input) @ W + b` (before rotary, so RoPE still applies), the MLP's through
`ln2.hook_in`, the readout's through `ln_final.hook_in`. Ports without patched edges are left
untouched, so all-zero weights reproduce the clean run bit for bit. The attention output bias
`b_O` is constant across runs and cancels in every difference.

Caveats: pre-LN sequential decoders only (see `circuits.graph.supports_edges`); the model's
shared state is never changed (hooks live only inside `forward`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from circuits.graph import Graph, build_graph, supports_edges

if TYPE_CHECKING:
    from workbench.model import Model


class EdgePatcher:
    """Runs `model` with weighted edge patches over the graph of `circuits.graph`."""

    def __init__(self, model: Model, graph: Graph | None = None) -> None:
        if not supports_edges(model):
            raise ValueError(
                f"model: edge-level interventions need a sequential pre-LN decoder; "
                f"{model.name} is not one (use node activation patching instead)"
            )
        self.model = model
        self.graph = graph or build_graph(model)
        bridge = model.bridge
        self.n_writers = len(self.graph.writers)
        self._writer = {n: i for i, n in enumerate(self.graph.writers)}
        port_col = {p.name: i for i, p in enumerate(self.graph.ports)}
        self._edge_u = torch.tensor([self._writer[u] for u, _ in self.graph.edges])  # [edge]
        self._edge_p = torch.tensor([port_col[p] for _, p in self.graph.edges])  # [edge]
        self._cols: dict[tuple[int, str], list[int]] = {}
        self._n_up: dict[tuple[int, str], int] = {}
        for p in self.graph.ports:
            key = (p.layer, p.kind if p.kind in ("mlp", "output") else p.kind)
            self._cols.setdefault(key, []).append(port_col[p.name])
            self._n_up[key] = len(self.graph.upstream_of(p))
        self._attn = [bridge.blocks[layer].attn for layer in range(model.n_layers)]
        self._ln1 = [bridge.blocks[layer].ln1.original_component for layer in range(model.n_layers)]
        self._first_head = [self._writer[f"a{layer}.0"] for layer in range(model.n_layers)]
        self._mlp_writer = {
            layer: self._writer[f"m{layer}"]
            for layer in range(model.n_layers)
            if self.graph.has_mlp
        }

    # ------------------------------------------------------------------ weights
    def dense(self, weights: torch.Tensor) -> torch.Tensor:
        """`[writer, port]` weight matrix from `[edge]` weights (differentiable)."""
        out = torch.zeros(self.n_writers, len(self.graph.ports), dtype=weights.dtype)
        return out.index_put((self._edge_u, self._edge_p), weights)  # [writer, port]

    def _projection(self, layer: int, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
        attn = self._attn[layer]
        w = {"q": attn.W_Q, "k": attn.W_K, "v": attn.W_V}[kind]  # [head, d_model, d_head]
        b = {"q": attn.b_Q, "k": attn.b_K, "v": attn.b_V}[kind]  # [head, d_head] or None
        return w, (torch.zeros(w.shape[0], w.shape[2], dtype=w.dtype) if b is None else b)

    # ------------------------------------------------------------------ runs
    @torch.no_grad()
    def writer_outputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """`[writer, batch, pos, d_model]` outputs of every writer node on an unpatched run."""
        zero = torch.zeros(self.graph.n_edges)
        outs: list[torch.Tensor | None] = [None] * self.n_writers
        self.forward(tokens, zero, None, record=outs)
        return torch.stack(outs)  # [writer, batch, pos, d_model]

    def forward(
        self,
        tokens: torch.Tensor,
        weights: torch.Tensor,
        source: torch.Tensor | None,
        *,
        deltas: torch.Tensor | None = None,
        force: bool = False,
        input_override: torch.Tensor | None = None,
        record: list | None = None,
    ) -> torch.Tensor:
        """Logits `[batch, pos, d_vocab]` of a run with `weights` `[edge]` of edges patched.

        source: `[writer, batch, pos, d_model]` outputs of the source run (patched-in values);
        deltas: fixed `[writer, batch, pos, d_model]` differences to subtract instead;
        force: rebuild every port even at weight 0 (needed for gradients);
        input_override: `[batch, pos, d_model]` replacement for the input node's output.
        """
        dense = self.dense(weights)  # [writer, port]
        outs: list[torch.Tensor | None] = [None] * self.n_writers if record is None else record
        resid: dict[int, torch.Tensor] = {}

        def diff(n_up: int) -> torch.Tensor:
            if deltas is not None:
                return deltas[:n_up]  # [up, batch, pos, d_model]
            actual = torch.stack(outs[:n_up])  # [up, batch, pos, d_model]
            return actual - source[:n_up]

        def active(w: torch.Tensor) -> bool:
            return force or bool((w != 0).any())

        def resid_hook(layer):
            def hook(x, *, hook):
                if layer == 0 and input_override is not None:
                    x = input_override
                if layer == 0:
                    outs[0] = x
                resid[layer] = x
                return x

            return hook

        def z_hook(layer):
            def hook(z, *, hook):
                per_head = torch.einsum("bphd,hdm->bphm", z, self._attn[layer].W_O)
                first = self._first_head[layer]
                for h in range(per_head.shape[2]):
                    outs[first + h] = per_head[:, :, h]  # [batch, pos, d_model]

            return hook

        def mlp_out_hook(layer):
            def hook(x, *, hook):
                outs[self._mlp_writer[layer]] = x

            return hook

        def qkv_hook(layer, kind):
            key = (layer, kind)

            def hook(act, *, hook):  # act: [batch, pos, head, d_head]
                w = dense[: self._n_up[key], self._cols[key]]  # [up, head]
                if not active(w):
                    return act
                x = resid[layer][:, :, None, :] - torch.einsum(
                    "uh,ubpm->bphm", w, diff(self._n_up[key])
                )  # [batch, pos, head, d_model]
                proj, bias = self._projection(layer, kind)
                new = torch.einsum("bphm,hmd->bphd", self._ln1[layer](x), proj) + bias
                if force:
                    return new
                chosen = (w != 0).any(0)  # [head]
                return torch.where(chosen[None, None, :, None], new, act)

            return hook

        def port_hook(key):
            def hook(x, *, hook):  # x: [batch, pos, d_model], the residual this port reads
                w = dense[: self._n_up[key], self._cols[key][0]]  # [up]
                if not active(w):
                    return x
                return x - torch.einsum("u,ubpm->bpm", w, diff(self._n_up[key]))

            return hook

        hooks = []
        for layer in range(self.model.n_layers):
            hooks.append((f"blocks.{layer}.hook_resid_pre", resid_hook(layer)))
            hooks.append((f"blocks.{layer}.attn.hook_z", z_hook(layer)))
            for kind in ("q", "k", "v"):
                hooks.append((f"blocks.{layer}.attn.hook_{kind}", qkv_hook(layer, kind)))
            if self.graph.has_mlp:
                hooks.append((f"blocks.{layer}.ln2.hook_in", port_hook((layer, "mlp"))))
                hooks.append((f"blocks.{layer}.mlp.hook_out", mlp_out_hook(layer)))
        hooks.append(("ln_final.hook_in", port_hook((self.model.n_layers, "output"))))
        with self.model.intervene(hooks):
            return self.model(tokens)
