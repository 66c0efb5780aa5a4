"""SVD tracing after Franco & Crovella, "Sparse Attention Decomposition Applied to Circuit
Tracing" (arXiv 2410.00340; their code: github.com/gaabrielfranco/sparse-attention-decomposition).

The paper's method (GPT-2 small, IOI), as implemented here:

1. Omega = [[W_Q W_K^T, W_Q b_K], [b_Q W_K^T, b_Q b_K]] (the bias-augmented QK matrix, norm
   gain/bias folded) has the SVD U diag(sigma) V^T; with x~ = [normalised residual; 1] the raw
   score of query t on key j is `sum_k sigma_k (x~_t . u_k)(x~_j . v_k)` (d_head terms).
2. A head *fires* on (t, j) when its pattern is >= `attn_threshold` (paper: 0.5) and the score
   is positive; firings on key 0 are not traced (paper; `skip_first_key`).
3. Sparse term selection: terms sorted in the direction of the total, the fewest whose sum
   reaches `term_share` of it (paper's full tracing: 1.0; `analysis.anatomy.linalg`'s
   `fewest_reaching`; the paper stops at the first prefix *above* the share, a tie apart).
4. Upstream contribution of writer c on the query side: `sum_{k kept} sign_k sqrt(sigma_k)
   <u_k, c~_t>`, key side `sum_k sign_k sqrt(sigma_k) <v_k, c~_j>`, with `sign_k =
   sign(x~_t . u_k)` and c~ the writer's output centred (LayerNorm) and divided by the layer's
   norm scale. Per term, the contributions of all writers plus the constant (bias) row sum to
   `sign_k sqrt(sigma_k) (x~ . u_k)` and the query total times the key total is the term.
5. Edge selection: the writers whose contributions, sorted, first push the cumulative sum past
   `edge_share` (paper: 0.7) of the total; they become edges `c -> head<q>` / `c -> head<k>`.
6. Recursion: into every selected upstream head that itself fires at the token the
   contribution lands on (query side: t, key side: j), down to layer 0.
7. Aggregation over prompts: the paper's graph weight is the mean contribution over the prompts
   where an edge appears, with its count; here score = -(weight x count / n_prompts), i.e. the
   mean over all prompts with absent = 0 (negative = carries the behaviour, `Circuit`).

Where the workbench differs (labelled):

- [roots] The paper starts from hand-picked name movers at (END, IO). Here the roots are
  found from the output: at every position the metric reads, each writer's direct effect on
  the metric (`<c_p, P W_U g_p> / scale_final`, g = d metric / d logits at the clean run, see
  `circuits.svd_tracing_state`) is ranked with the same `edge_share` rule; the selected heads
  are traced. These direct effects, averaged over prompts, are also the scores of the
  `-> output` edges (dense: every writer). Nothing comes from patching.
- [value paths] Not in the paper (it explains where heads attend). A traced head h read along
  a direction rho (the metric direction for a root; the downstream head's query/key read
  direction `P sum_k sign_k sqrt(sigma_k) u_k / scale` otherwise) gets value-port edges
  `c -> h<v>` with contribution `sum_j A[t, j] <c~_j W_V W_O, rho>` over all keys (exact: the
  writers plus the biases sum to h's output along rho), selected by the `edge_share` rule and
  followed into heads firing at keys with pattern >= `attn_threshold`. `value_paths=False`
  gives the paper's q/k-only trace.
- [writers] Every writer is a source (embeddings, heads, MLPs); the paper used heads only and
  appended the constant 1 to every head's output; here the constant and the output biases
  are one "bias" source that is not a graph node. MLPs are scored but not traced through
  (no attention to decompose); MLP input ports get no score.
- [dedup] A (head, position) is traced once per prompt (the first time it is reached), and an
  edge reached several times in a prompt takes the mean of its contributions (the paper keeps
  the first).

Units differ between edge kinds (output: metric units; q/k: sqrt(score) units as in the paper;
v: the units of the read direction). Decoders with a logits readout only.

Families: every decoder `workbench.adapters.weights` supports, weights and rotations read only
through that module: GPT-2, OPT (learned positions), Llama, Mistral, Qwen-2, Qwen-3, Gemma,
Gemma-2, Phi-3 (fused QKV), GPT-NeoX/Pythia (partial rotary), GPT-J (interleaved rotary),
Falcon (multi-query), the last three with parallel attention/MLP blocks (heads read the layer
input either way; MLPs are not traced). RoPE: Omega is position-specific,
`W_Q R(t) R(j)^T W_K^T`. [qk-norm] Qwen-3's per-head q/k RMSNorm scale is taken at the clean
run and folded into Omega, like the layer norm's scale. [post-norm] Gemma-2's norm on the
attention output is the clean run's linear map (`circuits.svd_tracing_state`); its
soft-capped scores `cap tanh(score / cap)` are decomposed before the cap (the terms sum to
the raw q.k; the cap is monotone, so "fires" keeps its meaning); its sliding window only
zeroes pattern entries, which the firing rule reads from the model's own pattern.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from analysis.anatomy.linalg import factored_svd, fewest_reaching
from circuits.circuit import Circuit
from circuits.graph import OUTPUT, build_graph, head_node, parse_node, port_name
from circuits.pass_counter import PassCounter
from circuits.svd_tracing_state import PromptState, check_supported, prompt_states
from circuits.task_batches import task_slice
from workbench.adapters import weights

if TYPE_CHECKING:
    from circuits.graph import Graph
    from workbench.model import Model
    from workbench.tasks import Task


@dataclass(frozen=True)
class Firing:
    """Sparse decomposition of one score and its per-term upstream contributions."""

    terms: np.ndarray  # [d_head] sigma_k (x~_t . u_k)(x~_j . v_k)
    selected: list  # kept term indices
    query_terms: np.ndarray  # [n_up, n_kept] per writer, per kept term
    key_terms: np.ndarray  # [n_up, n_kept]
    query_rest: np.ndarray  # [n_kept] output biases + the constant row
    key_rest: np.ndarray  # [n_kept]
    read_query: np.ndarray  # [d_model] raw-residual read direction at the query
    read_key: np.ndarray  # [d_model] at the key


class _Context:
    """Weights, SVDs and upstream indices shared by all prompts of one trace."""

    def __init__(self, model: Model, graph: Graph):
        self.model, self.graph = model, graph
        self.heads = {}
        self.svds = {}
        self.upstream = [
            np.array([i for i, n in enumerate(graph.writers) if graph.writer_layer(n) < (lay, 0)])
            for lay in range(graph.n_layers)
        ]

    def head(self, layer: int, head: int) -> weights.HeadWeights:
        if (layer, head) not in self.heads:
            self.heads[layer, head] = weights.head_weights(self.model, layer, head)
        return self.heads[layer, head]

    def svd(self, state: PromptState, layer: int, head: int, query: int, key: int):
        """(U [d_model+1, r], sigma [r], V [d_model+1, r]) of Omega (position-specific on RoPE
        and with Qwen-3's q/k norms, whose clean-run scales are folded in)."""
        w = self.head(layer, head)
        if state.rot is None and state.q_scale is None:
            if (layer, head) not in self.svds:
                self.svds[layer, head] = factored_svd(w.W_Q, w.W_K.T)
            return self.svds[layer, head]
        w_q, w_k = w.W_Q, w.W_K  # [d_model + 1, d_head]
        if state.q_scale is not None:
            w_q = w_q * (w.q_norm_gain / state.q_scale[layer, head, query])
            w_k = w_k * (w.k_norm_gain / state.k_scale[layer, w.kv_head, key])
        if state.rot is not None:
            w_q, w_k = w_q @ state.rot[query], w_k @ state.rot[key]
        return factored_svd(w_q, w_k.T)


def decompose_firing(
    ctx: _Context, state: PromptState, layer: int, head: int, query: int, key: int, share: float
) -> Firing:
    """Steps 1, 3 and 4 of the module docstring for one (query, key) pair."""
    u, s, v = ctx.svd(state, layer, head, query, key)
    x_q = np.append(state.x_norm[layer, query], 1.0)  # [d_model + 1]
    x_k = np.append(state.x_norm[layer, key], 1.0)  # [d_model + 1]
    q_coord, k_coord = x_q @ u, x_k @ v  # [r], [r]
    terms = s * q_coord * k_coord  # [r]
    kept = fewest_reaching(terms, share)
    sel = np.array(kept, dtype=int)
    weight = np.sign(q_coord[sel]) * np.sqrt(s[sel])  # [n_kept] sign_k sqrt(sigma_k)
    ups = ctx.upstream[layer]
    sides = []
    for pos, basis in ((query, u), (key, v)):
        dirs = state.project(basis[:-1, sel].T).T / state.scale[layer, pos]  # [d_model, n_kept]
        per_term = (state.writers[ups, pos] @ dirs) * weight  # [n_up, n_kept]
        rest = (state.biases[:layer, pos] @ dirs).sum(0) * weight + basis[-1, sel] * weight
        sides.append((per_term, rest, dirs @ weight))
    return Firing(
        terms, kept, sides[0][0], sides[1][0], sides[0][1], sides[1][1], sides[0][2], sides[1][2]
    )


def _keep(contrib: np.ndarray, share: float | None) -> np.ndarray:
    """Indices selected by the paper's cumulative rule (all when `share` is None)."""
    if share is None or len(contrib) == 0:
        return np.arange(len(contrib))
    ordered = np.sort(contrib)[::-1]
    above = np.nonzero(np.cumsum(ordered) > share * contrib.sum())[0]
    cutoff = ordered[above[0]] if len(above) else ordered[0]
    return np.nonzero(contrib >= cutoff)[0]


class _PromptTrace:
    """Steps 2-6 on one prompt: edge label -> contributions, and the heads traced."""

    def __init__(self, ctx: _Context, state: PromptState, options: dict):
        self.ctx, self.state, self.o = ctx, state, options
        self.edges: dict[str, list[float]] = defaultdict(list)
        self.traced: set[str] = set()
        self.stack: list[tuple[int, int, int, np.ndarray | None]] = []
        self.seen: set[tuple[int, int, int]] = set()

    def run(self) -> None:
        st, g = self.state, self.ctx.graph
        positions = np.nonzero(np.abs(st.metric_read).sum(-1) > 0)[0]
        direct = np.einsum("wpd,pd->wp", st.writers, st.metric_read)  # [n_writer, pos]
        for w, node in enumerate(g.writers):
            self.edges[f"{node}->{OUTPUT}"].append(float(direct[w].sum()))
        for p in positions:
            for w in _keep(direct[:, p], self.o["edge_share"]):
                self._follow(g.writers[w], int(p), st.metric_read[p])
        while self.stack:
            self._trace_head(*self.stack.pop())

    def _follow(self, node: str, pos: int, read: np.ndarray | None) -> None:
        parsed = parse_node(node)
        if parsed.kind == "head":
            self.stack.append((parsed.layer, parsed.head, pos, read))

    def _record(self, port: str, ups: np.ndarray, contrib: np.ndarray, reads: list) -> None:
        """Edges to `port` from the selected writers; follow selected heads at `reads`
        ((position, read direction) pairs where the writer's output is read)."""
        names = [self.ctx.graph.writers[i] for i in ups]
        for i in _keep(contrib, self.o["edge_share"]):
            self.edges[f"{names[i]}->{port}"].append(float(contrib[i]))
            for p, read in reads:
                self._follow(names[i], p, read)

    def _trace_head(self, layer: int, head: int, pos: int, read: np.ndarray | None) -> None:
        if (layer, head, pos) in self.seen:
            return
        self.seen.add((layer, head, pos))
        self.traced.add(head_node(layer, head))
        st, ctx, o = self.state, self.ctx, self.o
        kv = weights.kv_head_of(ctx.model, head)
        ups = ctx.upstream[layer]
        pattern = st.pattern[layer, head, pos, : pos + 1]  # [key]
        material = [
            j
            for j in np.nonzero(pattern >= o["attn_threshold"])[0]
            if not (o["skip_first_key"] and j == 0)
        ]
        for j in material:
            f = decompose_firing(ctx, st, layer, head, pos, int(j), o["term_share"])
            if f.terms.sum() <= 0:
                continue
            q, k = f.query_terms.sum(1), f.key_terms.sum(1)  # [n_up]
            self._record(port_name(layer, head, "q"), ups, q, [(pos, f.read_query)])
            self._record(port_name(layer, kv, "k"), ups, k, [(int(j), f.read_key)])
        if not o["value_paths"] or read is None or len(ups) == 0:
            return
        w = ctx.head(layer, head)
        if st.post_factor is not None:  # Gemma-2: the head's write passes ln1_post
            read = read * st.post_factor[layer, pos]  # [d_model]
        mapped = st.project(w.W_V[:-1] @ (w.W_O @ read))  # [d_model]
        coef = pattern / st.scale[layer, : pos + 1, 0]  # [key]
        per_key = (st.writers[ups, : pos + 1] @ mapped) * coef  # [n_up, key]
        reads = [(int(j), coef[j] * mapped) for j in material]
        self._record(port_name(layer, kv, "v"), ups, per_key.sum(1), reads)


def svd_tracing(
    model: Model,
    task: Task,
    *,
    n_prompts: int = 32,
    attn_threshold: float = 0.5,
    term_share: float = 1.0,
    edge_share: float | None = 0.7,
    skip_first_key: bool = True,
    value_paths: bool = True,
    batch_size: int = 16,
    progress: bool = False,
    seed: int = 0,
) -> Circuit:
    """Trace `task` in `model` by sparse attention decomposition (see module docstring)."""
    if not 0 < term_share <= 1:
        raise ValueError(f"term_share: need 0 < term_share <= 1, got {term_share}")
    if edge_share is not None and not 0 < edge_share <= 1:
        raise ValueError(f"edge_share: need 0 < edge_share <= 1 or None, got {edge_share}")
    if not 0 < attn_threshold <= 1:
        raise ValueError(f"attn_threshold: need 0 < attn_threshold <= 1, got {attn_threshold}")
    if isinstance(n_prompts, bool) or not isinstance(n_prompts, int) or n_prompts < 1:
        raise ValueError(f"n_prompts: need a positive integer, got {n_prompts!r}")
    check_supported(model, task)
    torch.manual_seed(seed)
    start = time.perf_counter()
    graph = build_graph(model, readout=task.readout)
    ctx, counter = _Context(model, graph), PassCounter()
    options = {
        "attn_threshold": attn_threshold,
        "term_share": term_share,
        "edge_share": edge_share,
        "skip_first_key": skip_first_key,
        "value_paths": value_paths,
    }
    sub = task_slice(task, 0, min(n_prompts, task.n_prompts))
    total, count, traced, errors = defaultdict(float), defaultdict(int), set(), []
    for state in prompt_states(model, sub, graph, batch_size=batch_size, counter=counter):
        trace = _PromptTrace(ctx, state, options)
        trace.run()
        traced |= trace.traced
        errors.append(state.component_error)
        for edge, values in trace.edges.items():
            total[edge] += float(np.mean(values))
            count[edge] += 1
    scores = torch.zeros(graph.n_edges, dtype=torch.float64)
    for edge, value in total.items():
        scores[graph.edge_index[edge]] = -value / sub.n_prompts
    order = {n: i for i, n in enumerate(graph.writers)}
    return Circuit.from_scores(
        graph,
        task=task.name,
        method="svd",
        scores=scores,
        config={
            "n_prompts": sub.n_prompts,
            **options,
            "traced_heads": sorted(traced, key=order.__getitem__),
            "edge_frequency": {e: c / sub.n_prompts for e, c in count.items() if "output" not in e},
            "component_error": max(errors),
            "seed": seed,
            "runtime_s": time.perf_counter() - start,
            **counter.as_dict(),
        },
    )
