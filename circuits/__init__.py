"""Circuit discovery and evaluation: patching, attribution, pruning, SVD tracing, faithfulness.

Entry point: `circuits.trace(model, task, method=...) -> Circuit` (see `circuits.tracing`);
the per-method functions are re-exported here. Evaluation functions return results too
(`faithfulness -> FaithfulnessResult`, `completeness`, `faithfulness_curve`, `roc`,
`smallest_faithful_circuit -> SmallestCircuitResult`, `acdc_sweep_roc -> AcdcSweepRoc`), with
bootstrap intervals over prompts (`circuits.bootstrap`); the convention is in
`workbench.results`. See docs/circuits.md.
"""

from circuits.acdc import acdc
from circuits.acdc_sweep import AcdcSweepRoc, acdc_sweep_roc, acdc_tau_sweep
from circuits.attribution import eap, eap_ig, edge_attribution
from circuits.bootstrap import Interval, bootstrap_interval
from circuits.circuit import Circuit
from circuits.evaluation import (
    completeness,
    faithfulness,
    faithfulness_curve,
    patched_metric,
    patched_metrics,
    roc,
    roc_auc,
    roc_curve,
)
from circuits.evaluation_results import (
    CompletenessResult,
    FaithfulnessCurve,
    FaithfulnessResult,
    RocResult,
)
from circuits.graph import Graph, build_graph, supports_edges
from circuits.ground_truth import exhaustive_patching, reference_circuit
from circuits.patching import activation_patching, path_patching
from circuits.per_prompt import per_prompt_scores
from circuits.smallest_circuit import SmallestCircuitResult, smallest_faithful_circuit
from circuits.svd_tracing import svd_tracing
from circuits.tracing import METHODS, trace

__all__ = [
    "METHODS",
    "AcdcSweepRoc",
    "Circuit",
    "CompletenessResult",
    "FaithfulnessCurve",
    "FaithfulnessResult",
    "Graph",
    "Interval",
    "RocResult",
    "SmallestCircuitResult",
    "acdc",
    "acdc_sweep_roc",
    "acdc_tau_sweep",
    "activation_patching",
    "bootstrap_interval",
    "build_graph",
    "completeness",
    "eap",
    "eap_ig",
    "edge_attribution",
    "exhaustive_patching",
    "faithfulness",
    "faithfulness_curve",
    "patched_metric",
    "patched_metrics",
    "path_patching",
    "per_prompt_scores",
    "reference_circuit",
    "roc",
    "roc_auc",
    "roc_curve",
    "smallest_faithful_circuit",
    "supports_edges",
    "svd_tracing",
    "trace",
]
