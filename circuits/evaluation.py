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

Uncertainty (`circuits.bootstrap`): faithfulness, completeness and every point of the curve
carry a percentile bootstrap interval over prompts (`n_boot` resamples, default 200, drawn
with `seed`; `n_boot=0` skips it). The per-prompt clean, corrupted and patched metrics are
computed once and resampled together, and each resample takes the ratio of its means (the
point estimate's own estimator), not the mean of per-prompt ratios. `roc(..., per_prompt=)`
resamples prompts of per-prompt edge scores `[prompt, edge]` (`circuits.per_prompt_scores`,
for methods whose score is a mean over prompts: EAP, EAP-IG, path/exhaustive patching) with
the reference held fixed; without them `roc` reports no interval. Resampling adds noise to
the averaged scores, so resampled AUCs lean low and the point AUC sits near the top of its
percentile interval (tiny-ioi EAP-IG: 0.958 in [0.917, 0.961]): read the interval as the
spread over prompts, not as centred on the estimate.

Caveats: edge interventions need a pre-LN decoder (`circuits.edge_patching`). Mean metrics
are averaged over all prompts before the ratio; a tiny gap makes the ratios unstable.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from circuits.bootstrap import (
    DEFAULT_LEVEL,
    DEFAULT_N_BOOT,
    bootstrap_interval,
    faithfulness_ratio,
    interval_from_samples,
    lost_share_ratio,
    resample_indices,
)
from circuits.circuit import Circuit
from circuits.edge_patching import EdgePatcher
from circuits.evaluation_results import (
    CompletenessResult,
    FaithfulnessCurve,
    FaithfulnessResult,
    RocResult,
    per_prompt_frame,
)
from circuits.graph import build_graph
from circuits.task_batches import task_batches

if TYPE_CHECKING:
    from workbench.model import Model
    from workbench.tasks import Task


@torch.no_grad()
def patched_metrics(
    model: Model, task: Task, patched: torch.Tensor, *, batch_size: int = 64
) -> torch.Tensor:
    """Metric per clean prompt `[prompt]` (float64) with the edges where `patched` `[edge]`
    is True patched to their corrupted values."""
    patcher = EdgePatcher(model, build_graph(model, readout=task.readout))
    if patched.shape != (patcher.graph.n_edges,):
        raise ValueError(
            f"patched: need shape ({patcher.graph.n_edges},), got {tuple(patched.shape)}"
        )
    values = []
    for sub in task_batches(task, batch_size):
        source = patcher.writer_outputs(sub.corrupted_tokens.to(model.device))
        logits = patcher.forward(sub.clean_tokens.to(model.device), patched.float(), source)
        values.append(sub.metric(logits).double().cpu())  # [batch]
    return torch.cat(values)  # [prompt]


def batch_mean(values: torch.Tensor, batch_size: int) -> float:
    """Mean of `values` `[prompt]` summed batch by batch (the order `patched_metric` always
    used, so its numbers do not move in the last bits)."""
    total = 0.0
    for start in range(0, len(values), batch_size):
        total += values[start : start + batch_size].sum().item()
    return total / len(values)


def patched_metric(
    model: Model, task: Task, patched: torch.Tensor, *, batch_size: int = 64
) -> float:
    """Mean metric on the clean prompts with the edges where `patched` `[edge]` is True
    patched to their corrupted values."""
    return batch_mean(patched_metrics(model, task, patched, batch_size=batch_size), batch_size)


def check_circuit(model: Model, circuit: Circuit) -> None:
    """`ValueError` unless `circuit` was traced on `model` and spans its whole graph."""
    if circuit.model_name != model.name:
        raise ValueError(f"circuit: traced on {circuit.model_name}, not on {model.name}")
    expected = build_graph(model).edge_labels
    if circuit.edges != expected:
        raise ValueError(f"circuit: its edges do not match {model.name}'s graph")


def baselines(model: Model, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean and corrupted metric per prompt `[prompt]` of unmodified runs (their means are
    `task.summary`'s clean and corrupted)."""
    return task.evaluate(model), task.evaluate(model, corrupted=True)


def check_bootstrap(n_boot: int, seed: int, level: float) -> None:
    """`ValueError` unless `n_boot` >= 0 and `seed` >= 0 are integers and 0 < `level` < 1."""
    for name, value in (("n_boot", n_boot), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}: need an integer >= 0, got {value!r}")
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise ValueError(f"level: need a number in (0, 1), got {level!r}")


def share_interval(
    rows: torch.Tensor, statistic, n_boot: int, seed: int, level: float
) -> tuple[float, float] | None:
    """Bootstrap `(low, high)` of a gap share from `rows` `[prompt, 3]` = (intervened, clean,
    corrupted); None when `n_boot` is 0."""
    if n_boot == 0:
        return None
    ci = bootstrap_interval(rows, statistic, n_boot, seed, level=level)
    return (ci.low, ci.high)


def faithfulness(
    model: Model,
    task: Task,
    circuit: Circuit,
    *,
    batch_size: int = 64,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> FaithfulnessResult:
    """Share of the metric gap recovered by the circuit alone, with its bootstrap interval
    over prompts (see module docstring)."""
    check_circuit(model, circuit)
    check_bootstrap(n_boot, seed, level)
    clean_pp, corrupted_pp = baselines(model, task)  # [prompt] each
    clean, corrupted = clean_pp.mean().item(), corrupted_pp.mean().item()
    values = patched_metrics(model, task, ~circuit.included, batch_size=batch_size)  # [prompt]
    value = batch_mean(values, batch_size)
    rows = torch.stack([values, clean_pp.double(), corrupted_pp.double()], dim=1)  # [prompt, 3]
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
        n_prompts=task.n_prompts,
        faithfulness_ci=share_interval(rows, faithfulness_ratio, n_boot, seed, level),
        n_boot=n_boot,
        bootstrap_seed=seed if n_boot else None,
        ci_level=float(level),
        per_prompt=per_prompt_frame(clean_pp, corrupted_pp, values, "circuit"),
    )


def completeness(
    model: Model,
    task: Task,
    circuit: Circuit,
    *,
    batch_size: int = 64,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> CompletenessResult:
    """Share of the gap lost when only the circuit's edges are patched, with its bootstrap
    interval over prompts."""
    check_circuit(model, circuit)
    check_bootstrap(n_boot, seed, level)
    clean_pp, corrupted_pp = baselines(model, task)  # [prompt] each
    clean, corrupted = clean_pp.mean().item(), corrupted_pp.mean().item()
    values = patched_metrics(model, task, circuit.included, batch_size=batch_size)  # [prompt]
    value = batch_mean(values, batch_size)
    rows = torch.stack([values, clean_pp.double(), corrupted_pp.double()], dim=1)  # [prompt, 3]
    return CompletenessResult(
        model_name=model.name,
        task=task.name,
        method=circuit.method,
        completeness=(clean - value) / (clean - corrupted),
        without_circuit_metric=value,
        clean_metric=clean,
        corrupted_metric=corrupted,
        n_edges=circuit.n_edges,
        n_prompts=task.n_prompts,
        completeness_ci=share_interval(rows, lost_share_ratio, n_boot, seed, level),
        n_boot=n_boot,
        bootstrap_seed=seed if n_boot else None,
        ci_level=float(level),
        per_prompt=per_prompt_frame(clean_pp, corrupted_pp, values, "without_circuit"),
    )


def faithfulness_curve(
    model: Model,
    task: Task,
    circuit: Circuit,
    *,
    sizes: list[int] | None = None,
    batch_size: int = 64,
    progress: bool = False,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> FaithfulnessCurve:
    """Faithfulness of the top-k edges (by |score|) for each k in `sizes` (default: 10 steps),
    each with its bootstrap interval (the same resamples at every k)."""
    check_circuit(model, circuit)
    check_bootstrap(n_boot, seed, level)
    n = len(circuit.edges)
    if sizes is None:
        sizes = sorted({max(1, round(n * f / 10)) for f in range(0, 11)} | {0})
    bad = [k for k in sizes if not 0 <= k <= n]
    if bad:
        raise ValueError(f"sizes: {bad} outside 0..{n}")
    clean_pp, corrupted_pp = baselines(model, task)  # [prompt] each
    clean, corrupted = clean_pp.mean().item(), corrupted_pp.mean().item()
    rows = []
    for k in tqdm(sizes, disable=not progress, desc="faithfulness curve"):
        kept = circuit.prune(top_n=k, connected=False).included  # plain top-k, as documented
        values = patched_metrics(model, task, ~kept, batch_size=batch_size)  # [prompt]
        value = batch_mean(values, batch_size)
        row = {
            "n_edges": k,
            "edge_share": k / n,
            "metric": value,
            "faithfulness": (value - corrupted) / (clean - corrupted),
        }
        if n_boot:
            stacked = torch.stack([values, clean_pp.double(), corrupted_pp.double()], dim=1)
            row["faithfulness_low"], row["faithfulness_high"] = share_interval(
                stacked, faithfulness_ratio, n_boot, seed, level
            )
        rows.append(row)
    return FaithfulnessCurve(
        model_name=model.name,
        task=task.name,
        method=circuit.method,
        curve=pd.DataFrame(rows),
        n_prompts=task.n_prompts,
        n_boot=n_boot,
        bootstrap_seed=seed if n_boot else None,
        ci_level=float(level),
    )


def _as_mask(reference: Circuit | torch.Tensor, n: int) -> torch.Tensor:
    mask = reference.included if isinstance(reference, Circuit) else reference
    if mask.shape != (n,) or mask.dtype != torch.bool:
        raise ValueError(f"reference: need a circuit or a bool tensor of shape ({n},)")
    if mask.all() or not mask.any():
        raise ValueError("reference: needs both edges in and out of the circuit")
    return mask


def roc(
    scores: Circuit | torch.Tensor,
    reference: Circuit | torch.Tensor,
    *,
    per_prompt: torch.Tensor | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> RocResult:
    """ROC of |scores| `[edge]` (or a circuit's) separating the reference circuit's edges from
    the rest: `.auc` and the curve (`.to_frame()`: n_edges, fpr, tpr).

    `per_prompt` `[prompt, edge]`: the per-prompt scores whose mean over prompts is `scores`
    (`circuits.per_prompt_scores`); given, `.auc_ci` is the percentile bootstrap interval of
    the AUC of |mean over resampled prompts| (the reference held fixed)."""
    values = (scores.scores if isinstance(scores, Circuit) else scores).double().abs()
    mask = _as_mask(reference, values.shape[0])
    check_bootstrap(n_boot, seed, level)
    pos, neg = values[mask], values[~mask]  # [n_pos], [n_neg]
    greater = (pos[:, None] > neg[None, :]).double()
    ties = (pos[:, None] == neg[None, :]).double()
    auc = float((greater + 0.5 * ties).mean())
    interval, n_prompts = None, 0
    if per_prompt is not None:
        per_prompt = _check_per_prompt(per_prompt, scores, values.shape[0])
        n_prompts = per_prompt.shape[0]
        if n_boot:
            indices = torch.from_numpy(resample_indices(n_prompts, n_boot, seed))  # [boot, prompt]
            means = per_prompt[indices].mean(dim=1).abs()  # [boot, edge]
            ci = interval_from_samples(
                auc, _auc(means, mask), level=level, seed=seed, n_prompts=n_prompts
            )
            interval = (ci.low, ci.high)
    named = next((c for c in (scores, reference) if isinstance(c, Circuit)), None)
    return RocResult(
        model_name=named.model_name if named is not None else "",
        method=scores.method if isinstance(scores, Circuit) else "",
        auc=auc,
        curve=_roc_frame(values, mask),
        n_prompts=n_prompts,
        auc_ci=interval,
        n_boot=n_boot if interval else 0,
        bootstrap_seed=seed if interval else None,
        ci_level=float(level),
    )


def _check_per_prompt(
    per_prompt: torch.Tensor, scores: Circuit | torch.Tensor, n: int
) -> torch.Tensor:
    """`per_prompt` as float64 once it is `[prompt, n]` and averages to `scores`."""
    if not isinstance(per_prompt, torch.Tensor) or per_prompt.dim() != 2:
        raise ValueError("per_prompt: need a [prompt, edge] tensor of per-prompt scores")
    if per_prompt.shape[1] != n or per_prompt.shape[0] < 1:
        raise ValueError(f"per_prompt: need shape (n_prompts, {n}), got {tuple(per_prompt.shape)}")
    per_prompt = per_prompt.detach().double().cpu()
    if not torch.isfinite(per_prompt).all():
        raise ValueError("per_prompt: contains nan or inf")
    signed = (scores.scores if isinstance(scores, Circuit) else scores).double().cpu()
    tolerance = 1e-4 * float(signed.abs().max()) + 1e-8
    if float((per_prompt.mean(0) - signed).abs().max()) > tolerance:
        raise ValueError("per_prompt: its mean over prompts is not the scores it should explain")
    return per_prompt


def _auc(values: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Mann-Whitney AUC (ties counted half) of each row of `values` `[row, edge]` as a
    detector of `mask` `[edge]`, by average ranks: `[row]`."""
    array = values.numpy()  # [row, edge]
    order = np.argsort(array, axis=1, kind="stable")
    ranks = np.empty_like(array)
    for row in range(array.shape[0]):
        sorted_values = array[row, order[row]]  # [edge]
        # average rank (1-based) of each run of tied values
        _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
        average = first + (counts + 1) / 2.0  # [distinct]
        ranks[row, order[row]] = np.repeat(average, counts)
    pos = mask.numpy()
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    u = ranks[:, pos].sum(axis=1) - n_pos * (n_pos + 1) / 2.0  # [row]
    return u / (n_pos * n_neg)


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
