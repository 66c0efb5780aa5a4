"""`smallest_faithful_circuit`: the smallest connected prune of a circuit reaching a target.

Searches `top_n` for `circuit.prune(top_n=...)` (connected: edges on input -> output paths,
`circuits.connected`) whose faithfulness (`circuits.evaluation`: everything outside the
circuit patched to corrupted, share of the clean->corrupted gap recovered) reaches `target`:
doubling 1, 2, 4, ... until one reaches it, then bisection between the last miss and the first
hit. Each evaluation is one patched pass over the task (2 forward passes per minibatch: the
corrupted writers' outputs and the patched run); identical pruned sets are evaluated once.

Returns a `SmallestCircuitResult` (run-store kind "smallest_circuit"; `to_frame()` lists every
evaluated size, `plot()` draws faithfulness against size with the target line). Its
faithfulness carries a percentile bootstrap interval over prompts (`circuits.bootstrap`,
ratio of means per resample). The dict keys it used to return still work
(`result["top_n"]`) with a `DeprecationWarning`, for one release.

Caveats: bisection assumes faithfulness grows with size, which is typical but not guaranteed
(a larger prune can add an edge that hurts), so the answer is the smallest size *found*, with
every evaluated size listed in `evaluations`; a tiny clean-corrupted gap makes the ratio
unstable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
import torch

from circuits.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, faithfulness_ratio
from circuits.evaluation import (
    baselines,
    batch_mean,
    check_bootstrap,
    check_circuit,
    patched_metrics,
    share_interval,
)
from circuits.evaluation_results import DeprecatedKeys, ci_text
from workbench.results import Result

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from circuits.circuit import Circuit
    from workbench.model import Model
    from workbench.tasks import Task


@dataclass(frozen=True)
class SmallestCircuitResult(DeprecatedKeys, Result):
    """The smallest connected prune of a circuit found to reach a faithfulness `target`.

    reached (False when even the whole graph falls short), top_n (pass it to
    `circuit.prune`), n_edges, edge_share, faithfulness (with `faithfulness_ci` over
    `n_prompts` prompts), edges (the kept labels), evaluations (top_n, n_edges, faithfulness
    of every size tried, in order), n_evaluations and n_forward (forward passes, the
    clean/corrupted baseline included)."""

    kind: ClassVar[str] = "smallest_circuit"
    plot_kinds: ClassVar[tuple[str, ...]] = ("search",)

    model_name: str
    task: str
    method: str
    target: float
    reached: bool
    top_n: int
    n_edges: int
    edge_share: float
    faithfulness: float
    edges: list[str]
    evaluations: list[dict[str, Any]]
    n_evaluations: int
    n_forward: int
    n_prompts: int = 0
    faithfulness_ci: tuple[float, float] | None = None
    n_boot: int = 0
    bootstrap_seed: int | None = None
    ci_level: float = 0.95

    def to_frame(self) -> pd.DataFrame:
        """Every evaluated size in search order: top_n, n_edges, faithfulness, chosen."""
        frame = pd.DataFrame(self.evaluations, columns=["top_n", "n_edges", "faithfulness"])
        frame["chosen"] = frame["top_n"] == self.top_n
        return frame

    def plot(self, kind: str | None = "search", **kwargs: Any) -> go.Figure:
        """`search`: faithfulness of every evaluated size, the target line and the chosen
        circuit with its bootstrap interval as an error bar."""
        import plotly.graph_objects as go

        if kind not in (None, *self.plot_kinds):
            raise ValueError(
                f"kind: unknown plot kind {kind!r}; choose from {list(self.plot_kinds)}"
            )
        frame = self.to_frame().drop_duplicates("n_edges").sort_values("n_edges")
        fig = go.Figure(
            go.Scatter(x=frame["n_edges"], y=frame["faithfulness"], mode="markers", name="tried")
        )
        error = None
        if self.faithfulness_ci is not None:
            low, high = self.faithfulness_ci
            error = {
                "type": "data",
                "array": [high - self.faithfulness],
                "arrayminus": [self.faithfulness - low],
            }
        fig.add_scatter(
            x=[self.n_edges],
            y=[self.faithfulness],
            mode="markers",
            marker={"size": 12, "symbol": "star"},
            error_y=error,
            name="chosen",
        )
        fig.add_hline(y=self.target, line_dash="dot")
        interval = ci_text(self.faithfulness_ci, self.ci_level, self.n_boot)
        fig.update_layout(
            title=f"{self.model_name} {self.task} ({self.method}): {self.n_edges} edges reach "
            f"faithfulness {self.faithfulness:.3f}{interval}"
            + ("" if self.reached else f" (target {self.target} not reached)"),
            xaxis_title="edges in the connected prune",
            yaxis_title="faithfulness",
            showlegend=False,
            **kwargs,
        )
        return fig

    def get(self, key: str, default: Any = None) -> Any:
        """Deprecated dict-style `get`."""
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self) -> list[str]:
        """Deprecated: the field names (the old dict's keys and the new fields)."""
        return list(self.to_dict())


@torch.no_grad()
def smallest_faithful_circuit(
    model: Model,
    task: Task,
    circuit: Circuit,
    *,
    target: float = 0.8,
    batch_size: int = 64,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> SmallestCircuitResult:
    """Smallest connected `circuit.prune(top_n=...)` with faithfulness >= `target`; its
    faithfulness interval uses `n_boot` resamples of the prompts drawn with `seed`."""
    if isinstance(target, bool) or not isinstance(target, int | float):
        raise ValueError(f"target: need a number in (0, 1], got {target!r}")
    if not (math.isfinite(target) and 0 < target <= 1):
        raise ValueError(f"target: need a number in (0, 1], got {target}")
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    check_bootstrap(n_boot, seed, level)
    check_circuit(model, circuit)
    clean_pp, corrupted_pp = baselines(model, task)  # [prompt] each
    clean, corrupted = clean_pp.mean().item(), corrupted_pp.mean().item()
    passes_per_eval = 2 * math.ceil(task.n_prompts / batch_size)
    n = len(circuit.edges)
    seen: dict[bytes, tuple[float, torch.Tensor]] = {}  # pruned set -> faithfulness, [prompt]
    evaluations: list[dict[str, Any]] = []

    def evaluate(top_n: int) -> tuple[Circuit, float]:
        pruned = circuit.prune(top_n=top_n)
        key = bytes(pruned.included.numpy())
        if key not in seen:
            values = patched_metrics(model, task, ~pruned.included, batch_size=batch_size)
            value = batch_mean(values, batch_size)
            seen[key] = ((value - corrupted) / (clean - corrupted), values)
        evaluations.append(
            {"top_n": top_n, "n_edges": pruned.n_edges, "faithfulness": seen[key][0]}
        )
        return pruned, seen[key][0]

    miss, hit, k = 0, None, 1
    while n:
        pruned, value = evaluate(min(k, n))
        if value >= target:
            hit = (min(k, n), pruned, value)
            break
        miss = min(k, n)
        if k >= n:
            break
        k *= 2
    while hit is not None and hit[0] - miss > 1:
        mid = (miss + hit[0]) // 2
        pruned, value = evaluate(mid)
        if value >= target:
            hit = (mid, pruned, value)
        else:
            miss = mid
    if hit is None:  # not reached: report the largest size tried
        best = max(evaluations, key=lambda row: row["top_n"], default=None)
        top_n = best["top_n"] if best else 0
        hit = (top_n, circuit.prune(top_n=top_n), best["faithfulness"] if best else 0.0)
    top_n, pruned, value = hit
    chosen = seen.get(bytes(pruned.included.numpy()))
    interval = None
    if chosen is not None:
        rows = torch.stack([chosen[1], clean_pp.double(), corrupted_pp.double()], dim=1)
        interval = share_interval(rows, faithfulness_ratio, n_boot, seed, level)
    return SmallestCircuitResult(
        model_name=model.name,
        task=task.name,
        method=circuit.method,
        target=float(target),
        reached=bool(value >= target),
        top_n=top_n,
        n_edges=pruned.n_edges,
        edge_share=pruned.n_edges / n if n else 0.0,
        faithfulness=float(value),
        edges=list(pruned.kept_edges),
        evaluations=evaluations,
        n_evaluations=len(seen),
        n_forward=2 + passes_per_eval * len(seen),
        n_prompts=task.n_prompts,
        faithfulness_ci=interval,
        n_boot=n_boot if interval else 0,
        bootstrap_seed=seed if interval else None,
        ci_level=float(level),
    )


__all__ = ["SmallestCircuitResult", "smallest_faithful_circuit"]
