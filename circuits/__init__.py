"""Circuit discovery and evaluation: patching, attribution, pruning, SVD tracing, faithfulness.

Entry point: `circuits.trace(model, task, method=...) -> Circuit` (see `circuits.tracing`);
the per-method functions are re-exported here. See docs/circuits.md.
"""

from circuits.acdc import acdc
from circuits.attribution import eap, eap_ig, edge_attribution
from circuits.circuit import Circuit
from circuits.evaluation import (
    completeness,
    faithfulness,
    faithfulness_curve,
    patched_metric,
    roc_auc,
    roc_curve,
)
from circuits.graph import Graph, build_graph, supports_edges
from circuits.ground_truth import exhaustive_patching, reference_circuit
from circuits.patching import activation_patching, path_patching
from circuits.svd_tracing import svd_tracing
from circuits.tracing import METHODS, trace

__all__ = [
    "METHODS",
    "Circuit",
    "Graph",
    "acdc",
    "activation_patching",
    "build_graph",
    "completeness",
    "eap",
    "eap_ig",
    "edge_attribution",
    "exhaustive_patching",
    "faithfulness",
    "faithfulness_curve",
    "patched_metric",
    "path_patching",
    "reference_circuit",
    "roc_auc",
    "roc_curve",
    "supports_edges",
    "svd_tracing",
    "trace",
]
