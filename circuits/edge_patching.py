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

Post-LN encoders (BERT, MiniLM): each block computes `mid = ln1(x + attn(x))` and
`x' = ln2(mid + mlp(mid))`, so the residual is not a sum of outputs. There every LayerNorm
between a writer and a port is *linearised at the run's own scale* ("frozen LN":
`v -> g * (v - mean v) / scale`), and the writer's difference is carried through those maps
(`embed_ln`, then `ln1`/`ln2` of each layer) before it is subtracted. Patching nothing is still
exact; patching every edge only approximates the corrupted run (the scales differ between runs).
The q/k/v ports read the block input directly (no norm before attention), the MLP port
`mlp.in.hook_in`, the readout port the task's readout `blocks.{last}.hook_out`.

Parallel attention/MLP blocks (GPT-NeoX/Pythia with `use_parallel_residual`, GPT-J, Falcon
with `parallel_attn`, Phi-1/2, StableLM; `Graph.parallel`): attention and MLP of layer L both
read the layer's input residual `resid_pre`, so the MLP port has no edges from layer L's heads
and is rebuilt from `resid_pre` like the q/k/v ports. Its input reaches the model by replacing
the MLP's own input, `mlp.hook_in` (the *normalised* residual), with `n_mlp(port_input)`, where
`n_mlp` is the norm that family's MLP reads (`workbench.adapters.parallel_blocks`: NeoX's
`post_attention_layernorm`; the attention's shared `ln_1` / `input_layernorm` in GPT-J, Falcon,
Phi). Attention still reads its unpatched input, since q/k/v ports are rebuilt separately.
Patching nothing is bit-exact and patching every edge reproduces the corrupted run (to float
rounding), as for sequential pre-LN decoders.

Caveats: post-LN encoders with parallel blocks, and parallel families whose MLP norm is not in
`workbench.adapters.parallel_blocks`, are refused (`circuits.graph.supports_edges`); the model's
shared state is never changed (hooks live only inside `forward`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from circuits.graph import Graph, build_graph, head_node, mlp_node, supports_edges
from circuits.residual_additivity import check_additive_residual, check_writer_sum
from workbench.adapters.modules import hf_module
from workbench.adapters.parallel_blocks import is_parallel, mlp_norm

if TYPE_CHECKING:
    from workbench.model import Model


class _WriterBuffer:
    """Write-only stand-in for the per-writer output list: `buf[i] = out` copies `out`
    `[batch, pos, d_model]` into one `[writer, batch, pos, d_model]` tensor."""

    def __init__(self, n_writers: int) -> None:
        self.n_writers = n_writers
        self.tensor: torch.Tensor | None = None

    def __setitem__(self, index: int, value: torch.Tensor) -> None:
        if self.tensor is None:
            self.tensor = value.new_empty(self.n_writers, *value.shape)
        self.tensor[index].copy_(value)


class EdgePatcher:
    """Runs `model` with weighted edge patches over the graph of `circuits.graph`."""

    def __init__(self, model: Model, graph: Graph | None = None) -> None:
        if not supports_edges(model):
            if model.is_causal:
                mlp_norm(model, 0)  # raises the ValueError naming the unknown block type
            raise ValueError(
                f"model: edge-level interventions model parallel attention/MLP blocks in "
                f"pre-LN decoders only; {model.name} is an encoder with parallel blocks "
                f"(use node activation patching instead)"
            )
        check_additive_residual(model)
        self.model = model
        self.graph = graph or build_graph(model)
        if self.graph.parallel != is_parallel(model):
            raise ValueError(
                f"graph: built for {'parallel' if self.graph.parallel else 'sequential'} blocks; "
                f"{model.name}'s are {'parallel' if is_parallel(model) else 'sequential'}"
            )
        self.post_ln = not model.is_causal  # BERT-style encoders
        self.parallel = self.graph.parallel and self.graph.has_mlp
        # parallel blocks: the norm each MLP reads its (rebuilt) input through
        self._mlp_norm = (
            [mlp_norm(model, n) for n in range(model.n_layers)] if self.parallel else []
        )
        last = f"blocks.{model.n_layers - 1}.hook_out"
        if self.graph.readout not in ((last,) if self.post_ln else (None,)):
            raise ValueError(
                f"task: edge interventions read {'the logits' if not self.post_ln else last}; "
                f"this task reads {self.graph.readout!r}"
            )
        bridge = model.bridge
        self.n_writers = len(self.graph.writers)
        self._writer = {n: i for i, n in enumerate(self.graph.writers)}
        port_col = {p.name: i for i, p in enumerate(self.graph.ports)}
        self._edge_u = torch.tensor([self._writer[u] for u, _ in self.graph.edges])  # [edge]
        self._edge_p = torch.tensor([port_col[p] for _, p in self.graph.edges])  # [edge]
        self._cols: dict[tuple[int, str], list[int]] = {}
        self._n_up: dict[tuple[int, str], int] = {}
        for p in self.graph.ports:
            key = (p.layer, p.kind)
            self._cols.setdefault(key, []).append(port_col[p.name])
            self._n_up[key] = len(self.graph.upstream_of(p))
        self._attn = [bridge.blocks[layer].attn for layer in range(model.n_layers)]
        self._ln1 = [
            (lambda x: x) if self.post_ln else hf_module(bridge, f"blocks.{layer}.ln1")
            for layer in range(model.n_layers)
        ]
        if self.post_ln:
            self._init_post_ln(bridge)
        self._first_head = [self._writer[head_node(layer, 0)] for layer in range(model.n_layers)]
        self._mlp_writer = {
            layer: self._writer[mlp_node(layer)]
            for layer in range(model.n_layers)
            if self.graph.has_mlp
        }
        if not self.post_ln:
            check_writer_sum(self)  # the per-head split must add up to the model's own residual

    def _init_post_ln(self, bridge) -> None:
        """LayerNorm stages of a post-LN encoder: embed_ln, then ln1/ln2 of every layer."""
        self._ln_names = ["embed_ln"] + [
            f"blocks.{layer}.{ln}" for layer in range(self.model.n_layers) for ln in ("ln1", "ln2")
        ]
        self._ln_gain = [
            hf_module(bridge, name).weight for name in self._ln_names
        ]  # each [d_model]
        stage = [0] + [
            1 + 2 * self.graph.writer_layer(n)[0] + self.graph.writer_layer(n)[1]
            for n in self.graph.writers[1:]
        ]  # heads of layer l write before ln1 (stage 1+2l), its MLP before ln2 (stage 2+2l)
        self._stage = torch.tensor(stage)  # [writer]
        self._read_stage = {"q": 0, "k": 0, "v": 0, "mlp": 1, "output": 0}

    def _through_norms(self, w, diff, read_stage: int, scales: dict) -> torch.Tensor:
        """sum_u w_u T_u(diff_u): each writer's difference carried through the frozen norms
        from where it writes up to (and including) stage `read_stage` (Horner's scheme)."""
        acc = None
        stage = self._stage[: diff.shape[0]]  # [up]
        for i in range(read_stage + 1):
            chosen = (stage == i).nonzero()[:, 0]
            if len(chosen):
                term = torch.einsum("u...,ubpm->bp...m", w[chosen], diff[chosen])
                acc = term if acc is None else acc + term
            if acc is not None:
                scale = scales[i].reshape(*scales[i].shape[:2], *([1] * (acc.dim() - 2)))
                acc = (acc - acc.mean(-1, keepdim=True)) / scale * self._ln_gain[i]
        return acc

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
        """`[writer, batch, pos, d_model]` outputs of every writer node on an unpatched run
        (written straight into one buffer: no per-writer copies are held)."""
        zero = torch.zeros(self.graph.n_edges)
        outs = _WriterBuffer(self.n_writers)
        self.forward(tokens, zero, None, record=outs)
        return outs.tensor  # [writer, batch, pos, d_model]

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
        """Logits `[batch, pos, d_vocab]` (encoders: the readout `[batch, pos, d_model]`) of
        a run with `weights` `[edge]` of edges patched.

        source: `[writer, batch, pos, d_model]` outputs of the source run (patched-in values);
        deltas: fixed `[writer, batch, pos, d_model]` differences to subtract instead;
        force: rebuild every port even at weight 0 (needed for gradients);
        input_override: `[batch, pos, d_model]` replacement for the input node's output.
        """
        dense = self.dense(weights).to(self.model.device)  # [writer, port] (differentiable)
        outs: list[torch.Tensor | None] = [None] * self.n_writers if record is None else record
        resid: dict[int, torch.Tensor] = {}
        scales: dict[int, torch.Tensor] = {}  # post-LN: stage -> [batch, pos, 1] norm scale
        readout: list[torch.Tensor] = []

        def weighted(w: torch.Tensor, key: tuple[int, str]) -> torch.Tensor:
            """sum_u w_u diff_u at the port's read point: w [up] -> [batch, pos, d_model],
            w [up, head] -> [batch, pos, head, d_model]."""
            n_up = self._n_up[key]
            fixed = deltas is not None
            # [up, batch, pos, d_model]
            diff = deltas[:n_up] if fixed else torch.stack(outs[:n_up]) - source[:n_up]
            if not self.post_ln:
                return torch.einsum("u...,ubpm->bp...m", w, diff)
            layer, kind = key
            read_stage = 2 * layer + self._read_stage[kind]
            return self._through_norms(w, diff, read_stage, scales)

        def active(w: torch.Tensor) -> bool:
            return force or bool((w != 0).any())

        def input_hook(x, *, hook):
            x = x if input_override is None else input_override
            outs[0] = x
            return x

        def resid_hook(layer):
            def hook(x, *, hook):
                if layer == 0 and not self.post_ln:
                    x = input_hook(x, hook=hook)
                resid[layer] = x
                return x

            return hook

        def scale_hook(stage):
            def hook(x, *, hook):
                scales[stage] = x

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
                x = resid[layer][:, :, None, :] - weighted(w, key)  # [batch, pos, head, d_model]
                proj, bias = self._projection(layer, kind)
                new = torch.einsum("bphm,hmd->bphd", self._ln1[layer](x), proj) + bias
                if force:
                    return new
                chosen = (w != 0).any(0)  # [head]
                return torch.where(chosen[None, None, :, None], new, act)

            return hook

        def mlp_input_hook(layer):
            key = (layer, "mlp")

            def hook(x, *, hook):  # x: [batch, pos, d_model], the MLP's normalised input
                w = dense[: self._n_up[key], self._cols[key][0]]  # [up]
                if not active(w):
                    return x
                return self._mlp_norm[layer](resid[layer] - weighted(w, key))

            return hook

        def port_hook(key):
            def hook(x, *, hook):  # x: [batch, pos, d_model], the residual this port reads
                w = dense[: self._n_up[key], self._cols[key][0]]  # [up]
                if active(w):
                    x = x - weighted(w, key)
                if key[1] == "output":
                    readout.append(x)
                return x

            return hook

        n_layers = self.model.n_layers
        hooks = []
        if self.post_ln:
            hooks.append(("embed_ln.hook_in", input_hook))
            hooks += [(f"{n}.hook_scale", scale_hook(i)) for i, n in enumerate(self._ln_names)]
        for layer in range(n_layers):
            hooks.append((f"blocks.{layer}.hook_resid_pre", resid_hook(layer)))
            hooks.append((f"blocks.{layer}.attn.hook_z", z_hook(layer)))
            for kind in ("q", "k", "v"):
                hooks.append((f"blocks.{layer}.attn.hook_{kind}", qkv_hook(layer, kind)))
            if self.parallel:
                hooks.append((f"blocks.{layer}.mlp.hook_in", mlp_input_hook(layer)))
            elif self.graph.has_mlp:
                mlp_in = "mlp.in.hook_in" if self.post_ln else "ln2.hook_in"
                hooks.append((f"blocks.{layer}.{mlp_in}", port_hook((layer, "mlp"))))
            if self.graph.has_mlp:
                hooks.append((f"blocks.{layer}.mlp.hook_out", mlp_out_hook(layer)))
        out_port = f"blocks.{n_layers - 1}.hook_out" if self.post_ln else "ln_final.hook_in"
        hooks.append((out_port, port_hook((n_layers, "output"))))
        with self.model.intervene(hooks):
            logits = self.model(tokens)
        return readout[0] if self.post_ln else logits
