"""ACDC over a sweep of thresholds (taus), and the ROC that sweep gives.

`acdc_tau_sweep(model, task, taus, ...)` runs `circuits.acdc` once per tau and returns a
`Circuit` (method "acdc-sweep") whose score per edge is the largest tau at which ACDC kept it
(0: never kept), and whose included edges are those kept at some tau. Thresholding that score
at tau gives the union of the circuits of every tau' >= tau, so the edge sets, and the ROC
points `acdc_sweep_roc(sweep, reference)` draws from them, shrink monotonically as tau grows;
`circuits.roc(sweep, reference)` ranks edges by the same score. Each run's own circuit and,
given `reference`, its own (fpr, tpr) are kept in `config["runs"]` (ACDC is greedy and
order-dependent, so single runs need not nest).

Cost: every tau is a full ACDC run, 2 + n_edges forward passes on all prompts (tiny-ioi: 112,
minilm: 7,590), so a sweep of k taus costs k times that; `config["n_forward"]` counts them.

`acdc_sweep_roc` returns an `AcdcSweepRoc` result (run-store kind "acdc_sweep_roc",
`to_frame()`: tau, n_edges, fpr, tpr; `plot()`: the ROC points). Frame-style access
(`curve["tpr"]`, `curve.n_edges.iloc[0]`) still works with a `DeprecationWarning`, for one
release.

Caveats: taus must be > 0 (score 0 means "never kept"); ties between edges kept up to the same
tau are counted half by `roc`.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
import torch

from circuits.acdc import acdc
from circuits.circuit import Circuit
from circuits.evaluation import _as_mask
from circuits.graph import build_graph
from workbench.results import Result

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.model import Model
    from workbench.tasks import Task


def _check_taus(taus: Any) -> list[float]:
    try:
        values = [float(t) for t in taus]
    except (TypeError, ValueError):
        raise ValueError(f"taus: need a list of numbers > 0, got {taus!r}") from None
    if not values or not all(math.isfinite(t) and t > 0 for t in values):
        raise ValueError(f"taus: need a non-empty list of finite numbers > 0, got {values}")
    return sorted(set(values))


def _rates(kept: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    return {
        "fpr": float((kept & ~mask).sum() / (~mask).sum()),
        "tpr": float((kept & mask).sum() / mask.sum()),
    }


def acdc_tau_sweep(
    model: Model,
    task: Task,
    taus: list[float],
    *,
    distance: str = "kl",
    reference: Circuit | torch.Tensor | None = None,
    progress: bool = False,
    seed: int = 0,
) -> Circuit:
    """ACDC at every tau in `taus`; scores = largest tau keeping each edge (module docstring)."""
    taus = _check_taus(taus)
    graph = build_graph(model, readout=task.readout)
    mask = None if reference is None else _as_mask(reference, graph.n_edges)
    start = time.perf_counter()
    scores = torch.zeros(graph.n_edges, dtype=torch.float64)
    runs, n_forward = [], 0
    for tau in taus:
        run = acdc(model, task, threshold=tau, distance=distance, progress=progress, seed=seed)
        scores[run.included] = tau  # taus ascend: the last one keeping an edge is the largest
        n_forward += run.config["n_forward"]
        row = {
            "tau": tau,
            "n_edges": run.n_edges,
            "final_distance": run.config["final_distance"],
            "n_forward": run.config["n_forward"],
            "kept_edges": run.kept_edges,
        }
        if mask is not None:
            row.update(_rates(run.included, mask))
        runs.append(row)
    sweep = Circuit.from_scores(
        graph,
        task=task.name,
        method="acdc-sweep",
        scores=scores,
        config={
            "taus": taus,
            "distance": distance,
            "seed": seed,
            "runs": runs,
            "runtime_s": time.perf_counter() - start,
            "n_forward": n_forward,
            "n_backward": 0,
        },
    )
    return dataclasses.replace(sweep, included=scores > 0)


@dataclass(frozen=True)
class AcdcSweepRoc(Result):
    """One ROC point per tau of an ACDC sweep (edges kept at that tau or any larger one), tau
    ascending: `points` has tau, n_edges, fpr, tpr (non-increasing in tau by construction);
    `n_positive` / `n_negative` count the reference's edges in / out."""

    kind: ClassVar[str] = "acdc_sweep_roc"
    plot_kinds: ClassVar[tuple[str, ...]] = ("roc",)

    model_name: str
    task: str
    method: str
    points: pd.DataFrame
    n_positive: int = 0
    n_negative: int = 0

    def to_frame(self) -> pd.DataFrame:
        """The ROC points (a copy): tau, n_edges, fpr, tpr."""
        return self.points.copy()

    def plot(self, kind: str | None = "roc", **kwargs: Any) -> go.Figure:
        """`roc`: the sweep's (fpr, tpr) points labelled by tau, joined to (0, 0) and (1, 1),
        with the chance diagonal."""
        import plotly.graph_objects as go

        if kind not in (None, *self.plot_kinds):
            raise ValueError(
                f"kind: unknown plot kind {kind!r}; choose from {list(self.plot_kinds)}"
            )
        ordered = self.points.sort_values("tau", ascending=False)  # fewest edges first
        fig = go.Figure(
            go.Scatter(
                x=[0.0, *ordered["fpr"], 1.0],
                y=[0.0, *ordered["tpr"], 1.0],
                mode="lines+markers",
                text=["", *(f"tau {t:g}" for t in ordered["tau"]), ""],
                hoverinfo="text+x+y",
            )
        )
        fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot"}, name="chance")
        fig.update_layout(
            title=f"{self.model_name} {self.task}: ACDC tau sweep ROC ({len(self.points)} taus)",
            xaxis_title="false positive rate",
            yaxis_title="true positive rate",
            showlegend=False,
            **kwargs,
        )
        return fig

    def __getitem__(self, key: Any) -> Any:
        """Deprecated: frame-style column access, `result["tpr"]`."""
        _warn_frame(f"[{key!r}]")
        return self.points[key]

    def __getattr__(self, name: str) -> Any:
        """Deprecated: frame attributes (`result.tpr`, `result.iloc`) of `points`."""
        points = self.__dict__.get("points")
        if name.startswith("_") or points is None:
            raise AttributeError(name)
        if name in points.columns or hasattr(pd.DataFrame, name):
            _warn_frame(f".{name}")
            return getattr(points, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __bool__(self) -> bool:
        """Always true (a result, not an empty frame)."""
        return True

    def __len__(self) -> int:
        """Deprecated: the number of taus, as `len(frame)` was."""
        _warn_frame(" len()")
        return len(self.points)


def _warn_frame(access: str) -> None:
    warnings.warn(
        f"AcdcSweepRoc{access} as a DataFrame is deprecated; use .to_frame() or .points",
        DeprecationWarning,
        stacklevel=3,
    )


def acdc_sweep_roc(sweep: Circuit, reference: Circuit | torch.Tensor) -> AcdcSweepRoc:
    """One ROC point per tau of `sweep` (edges kept at that tau or any larger one), tau
    ascending: `.to_frame()` has tau, n_edges, fpr, tpr (non-increasing in tau by
    construction)."""
    taus = sweep.config.get("taus") if sweep.method == "acdc-sweep" else None
    if not taus:
        raise ValueError("sweep: need the circuit returned by acdc_tau_sweep")
    mask = _as_mask(reference, len(sweep.edges))
    rows = []
    for tau in taus:
        kept = sweep.scores >= tau
        rows.append({"tau": tau, "n_edges": int(kept.sum()), **_rates(kept, mask)})
    return AcdcSweepRoc(
        model_name=sweep.model_name,
        task=sweep.task,
        method=sweep.method,
        points=pd.DataFrame(rows, columns=["tau", "n_edges", "fpr", "tpr"]),
        n_positive=int(mask.sum()),
        n_negative=int((~mask).sum()),
    )


__all__ = ["AcdcSweepRoc", "acdc_sweep_roc", "acdc_tau_sweep"]
