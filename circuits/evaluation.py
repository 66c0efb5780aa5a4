"""How good is a circuit: faithfulness, completeness, size curves, ROC/AUC against a reference.

Every entry point is a function returning a result (`circuits.evaluation_results`):

- `faithfulness(model, task, circuit) -> FaithfulnessResult`: patch every edge *outside* the circuit to its
  corrupted value and report the share of the clean->corrupted metric gap the circuit alone
  recovers, `(M_circuit - M_corrupted) / (M_clean - M_corrupted)` on mean metrics (1 = the
  circuit does everything the model does, 0 = nothing);
- `completeness(model, task, circuit) -> CompletenessResult`: patch only the circuit's edges; the share of the gap
  that disappears, `(M_clean - M_without) / (M_clean - M_corrupted)` (1 = nothing outside the
  circuit carries the behaviour);
- `faithfulness_curve(model, task, circuit, sizes) -> FaithfulnessCurve`: faithfulness of the
  top-k edges by |score| for each k;
- `roc(scores, reference) -> RocResult`: the ROC curve of |score| as a detector of the
  reference circuit's edges and its area `.auc` (Mann-Whitney statistic, ties counted half).
  `roc_auc` (a float) and `roc_curve` (a frame) are deprecated aliases, for one release.

Caveats: edge interventions need a pre-LN decoder (`circuits.edge_patching`). Mean metrics
are averaged over all prompts before the ratio; a tiny gap makes the ratios unstable.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import pandas as pd
import torch
from tqdm.auto import tqdm

from circuits.circuit import Circuit
from circuits.edge_patching import EdgePatcher
from circuits.evaluation_results import (
    CompletenessResult,
    FaithfulnessCurve,
    FaithfulnessResult,
    RocResult,
)
from circuits.graph import build_graph
from circuits.task_batches import task_batches

if TYPE_CHECKING:
    from workbench.model import Model
    from workbench.tasks import Task


@torch.no_grad()
def patched_metric(
    model: Model, task: Task, patched: torch.Tensor, *, batch_size: int = 64
) -> float:
    """Mean metric on the clean prompts with the edges where `patched` `[edge]` is True
    patched to their corrupted values."""
    patcher = EdgePatcher(model, build_graph(model, readout=task.readout))
    if patched.shape != (patcher.graph.n_edges,):
        raise ValueError(
            f"patched: need shape ({patcher.graph.n_edges},), got {tuple(patched.shape)}"
        )
    total = 0.0
    for sub in task_batches(task, batch_size):
        source = patcher.writer_outputs(sub.corrupted_tokens.to(model.device))
        logits = patcher.forward(sub.clean_tokens.to(model.device), patched.float(), source)
        total += sub.metric(logits).double().sum().item()
    return total / task.n_prompts


def check_circuit(model: Model, circuit: Circuit) -> None:
    """`ValueError` unless `circuit` was traced on `model` and spans its whole graph."""
    if circuit.model_name != model.name:
        raise ValueError(f"circuit: traced on {circuit.model_name}, not on {model.name}")
    expected = build_graph(model).edge_labels
    if circuit.edges != expected:
        raise ValueError(f"circuit: its edges do not match {model.name}'s graph")


def _gap(task: Task, model: Model) -> tuple[float, float]:
    summary = task.summary(model)
    return summary["clean"], summary["corrupted"]


def faithfulness(
    model: Model, task: Task, circuit: Circuit, *, batch_size: int = 64
) -> FaithfulnessResult:
    """Share of the metric gap recovered by the circuit alone (see module docstring)."""
    check_circuit(model, circuit)
    clean, corrupted = _gap(task, model)
    value = patched_metric(model, task, ~circuit.included, batch_size=batch_size)
    return FaithfulnessResult(
        model_name=model.name,
        task=task.name,
        method=circuit.method,
        faithfulness=(value - corrupted) / (clean - corrupted),
        circuit_metric=value,
        clean_metric=clean,
        corrupted_metric=corrupted,
        n_edges=circuit.n_edges,
        edge_share=circuit.n_edges / len(circuit.edges),
    )


def completeness(
    model: Model, task: Task, circuit: Circuit, *, batch_size: int = 64
) -> CompletenessResult:
    """Share of the gap lost when only the circuit's edges are patched."""
    check_circuit(model, circuit)
    clean, corrupted = _gap(task, model)
    value = patched_metric(model, task, circuit.included, batch_size=batch_size)
    return CompletenessResult(
        model_name=model.name,
        task=task.name,
        method=circuit.method,
        completeness=(clean - value) / (clean - corrupted),
        without_circuit_metric=value,
        clean_metric=clean,
        corrupted_metric=corrupted,
        n_edges=circuit.n_edges,
    )


def faithfulness_curve(
    model: Model,
    task: Task,
    circuit: Circuit,
    *,
    sizes: list[int] | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> FaithfulnessCurve:
    """Faithfulness of the top-k edges (by |score|) for each k in `sizes` (default: 10 steps)."""
    check_circuit(model, circuit)
    n = len(circuit.edges)
    if sizes is None:
        sizes = sorted({max(1, round(n * f / 10)) for f in range(0, 11)} | {0})
    bad = [k for k in sizes if not 0 <= k <= n]
    if bad:
        raise ValueError(f"sizes: {bad} outside 0..{n}")
    clean, corrupted = _gap(task, model)
    rows = []
    for k in tqdm(sizes, disable=not progress, desc="faithfulness curve"):
        kept = circuit.prune(top_n=k, connected=False).included  # plain top-k, as documented
        value = patched_metric(model, task, ~kept, batch_size=batch_size)
        rows.append(
            {
                "n_edges": k,
                "edge_share": k / n,
                "metric": value,
                "faithfulness": (value - corrupted) / (clean - corrupted),
            }
        )
    return FaithfulnessCurve(
        model_name=model.name, task=task.name, method=circuit.method, curve=pd.DataFrame(rows)
    )


def _as_mask(reference: Circuit | torch.Tensor, n: int) -> torch.Tensor:
    mask = reference.included if isinstance(reference, Circuit) else reference
    if mask.shape != (n,) or mask.dtype != torch.bool:
        raise ValueError(f"reference: need a circuit or a bool tensor of shape ({n},)")
    if mask.all() or not mask.any():
        raise ValueError("reference: needs both edges in and out of the circuit")
    return mask


def roc(scores: Circuit | torch.Tensor, reference: Circuit | torch.Tensor) -> RocResult:
    """ROC of |scores| `[edge]` (or a circuit's) separating the reference circuit's edges from
    the rest: `.auc` and the curve (`.to_frame()`: n_edges, fpr, tpr)."""
    values = (scores.scores if isinstance(scores, Circuit) else scores).double().abs()
    mask = _as_mask(reference, values.shape[0])
    pos, neg = values[mask], values[~mask]  # [n_pos], [n_neg]
    greater = (pos[:, None] > neg[None, :]).double()
    ties = (pos[:, None] == neg[None, :]).double()
    named = next((c for c in (scores, reference) if isinstance(c, Circuit)), None)
    return RocResult(
        model_name=named.model_name if named is not None else "",
        method=scores.method if isinstance(scores, Circuit) else "",
        auc=float((greater + 0.5 * ties).mean()),
        curve=_roc_frame(values, mask),
    )


def roc_auc(scores: Circuit | torch.Tensor, reference: Circuit | torch.Tensor) -> float:
    """Deprecated: `roc(scores, reference).auc`."""
    warnings.warn("roc_auc is deprecated; use roc(...).auc", DeprecationWarning, stacklevel=2)
    return roc(scores, reference).auc


def roc_curve(scores: Circuit | torch.Tensor, reference: Circuit | torch.Tensor) -> pd.DataFrame:
    """Deprecated: `roc(scores, reference).to_frame()`."""
    warnings.warn(
        "roc_curve is deprecated; use roc(...).to_frame()", DeprecationWarning, stacklevel=2
    )
    return roc(scores, reference).to_frame()


def _roc_frame(values: torch.Tensor, mask: torch.Tensor) -> pd.DataFrame:
    """False/true positive rates when keeping the top-k edges of `values` `[edge]`, k = 0..n."""
    order = torch.sort(values, descending=True, stable=True).indices
    hits = mask[order].double().cumsum(0)  # [edge]
    k = torch.arange(1, len(order) + 1, dtype=torch.float64)
    tpr = torch.cat([torch.zeros(1), hits / mask.sum()])
    fpr = torch.cat([torch.zeros(1), (k - hits) / (~mask).sum()])
    return pd.DataFrame({"n_edges": range(len(order) + 1), "fpr": fpr.numpy(), "tpr": tpr.numpy()})
