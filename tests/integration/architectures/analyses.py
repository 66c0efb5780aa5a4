"""The columns of the architecture matrix: one tiny-budget run and one sanity check each.

`ANALYSES`: name -> `Analysis(run, check)`: `run(model)` runs one analysis with tiny budgets
and returns its result; `check(model, result)` raises `AssertionError` unless the numbers are
finite, non-zero on random weights and of the right shapes (a score decomposition must also sum
to the model's own q.k). The circuit methods are read from `circuits.tracing.METHODS` when this
module is imported, so a newly registered method gets a column. Used by matrix.py.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

PROMPT = "When Mary and John went to the store, John gave a drink to"
TEXTS = [PROMPT, "one two three four . one two three four"]
SENTENCES = ["the cat is in the garden .", "my friend bought a car yesterday ."]
OPTIONS = {  # tiny budgets; each method takes the ones its signature names
    "batch_size": 4,
    "ig_steps": 2,
    "n_prompts": 4,
    "threshold": 0.05,
    "seed": 0,
}
ENCODER_OPTIONS = {"distance": "metric"}  # the similarity task has no logits to take a KL of
NOT_FOR = {"eap": ("ig_steps",)}  # options a method's signature lists but refuses


@dataclass(frozen=True)
class Analysis:
    """One column of the matrix: `run(model) -> result` and `check(model, result)`."""

    run: Callable[[Any], Any]
    check: Callable[[Any, Any], None]


def _finite(name: str, values: Any) -> None:
    array = np.asarray(values.detach().cpu() if torch.is_tensor(values) else values, dtype=float)
    assert array.size > 0 and np.isfinite(array).all(), f"{name}: not all finite"


def _statistics(model):
    from analysis import attention_stats

    return attention_stats(model, [PROMPT])


def _check_statistics(model, stats) -> None:
    n = model.to_tokens(PROMPT).shape[1]
    assert tuple(stats.entropy.shape) == (1, model.n_layers, model.n_heads, n), "entropy shape"
    _finite("entropy", stats.entropy)
    _finite("max_prob", stats.max_prob)
    assert float(stats.max_prob.max()) <= 1 + 1e-6, "max_prob above 1"


def _corpus_statistics(model):
    from analysis.statistics import corpus_stats

    return corpus_stats(model, TEXTS, docs_per_shard=2)


def _check_corpus(model, stats) -> None:
    assert len(stats.per_head) == model.n_layers * model.n_heads, "per_head rows"
    _finite("per_head", stats.per_head.select_dtypes("number"))
    assert tuple(stats.distance_hist.shape[:2]) == (model.n_layers, model.n_heads)
    _finite("distance_hist", stats.distance_hist)


def _head_svd(model):
    from analysis import qk_ov_svd

    return qk_ov_svd(model, model.n_layers - 1, 1, n_components=2, top_tokens=3)


def _check_svd(model, svd) -> None:
    for name in ("qk_singular_values", "ov_singular_values"):
        values = getattr(svd, name)
        assert values.shape == (model.d_head,), f"{name} shape"
        _finite(name, values)
        assert (values >= 0).all() and (np.diff(values) <= 1e-9).all(), f"{name} not sorted"
        assert values.max() > 0, f"{name}: all zero on random weights"


def _score_decomposition(model):
    from analysis import decompose_score

    n = model.to_tokens(PROMPT).shape[1]
    key = n - 2 if model.is_causal else n - 1
    return decompose_score(model, PROMPT, model.n_layers - 1, 1, n - 1, key)


def _check_decomposition(model, d) -> None:
    assert d.terms.shape == (model.d_head,), "terms shape"
    _finite("terms", d.terms)
    tolerance = 1e-4 * max(1.0, abs(d.model_score))
    assert abs(d.score - d.model_score) <= tolerance, "terms do not sum to the model's q.k"


def _taxonomy(model):
    from analysis import head_taxonomy

    return head_taxonomy(model, texts=TEXTS, n_clusters=2)


def _check_taxonomy(model, taxonomy) -> None:
    scores = taxonomy.scores
    assert len(scores) == model.n_layers * model.n_heads, "one row per head"
    behaviours = scores[["previous_token", "sink", "local", "uniform"]]
    _finite("behaviours", behaviours)


def _entropy_collapse(model):
    from analysis import entropy_collapse

    return entropy_collapse(model, texts=TEXTS, history=False)


def _check_collapse(model, collapse) -> None:
    assert len(collapse.table) == model.n_layers * model.n_heads, "one row per head"
    _finite("entropy", collapse.table["entropy"])
    _finite("spectral_norm", collapse.table["spectral_norm"])
    assert (collapse.table["spectral_norm"] > 0).all(), "zero QK spectral norm on random weights"


def _guidance(model):
    from analysis import HeadPerturbation, guide

    perturbation = HeadPerturbation(heads=((model.n_layers - 1, 0),), method="identity")
    return guide(model, PROMPT, perturbation, max_new_tokens=2, stop_at_eos=False)


def _check_guidance(model, result) -> None:
    assert result.tokens.shape == (2,), "two decoded tokens"
    _finite("shift_norm", result.shift_norm)


def _attack(model):
    from analysis import TokenAttack

    layer = model.n_layers - 1
    if model.is_causal:
        attack = TokenAttack(
            objective="raise_loss", heads=((layer, 0),), steps=1, n_adv=2, batch_size=4
        )
        return attack.fit(model, [(PROMPT, " Mary")]).result_
    attack = TokenAttack(objective="embedding", heads=((layer, 0),), steps=1, n_adv=2, batch_size=4)
    return attack.fit(model, SENTENCES[:1]).result_


def _check_attack(model, result) -> None:
    assert len(result.prompts) == 1, "one attacked prompt"
    _finite("metric", result.prompts[["metric_before", "metric_after"]])
    _finite("head entropy", result.head_stats["entropy"])


def task_for(model):
    """The matrix's task for `model`: induction for decoders, similarity for encoders."""
    from workbench.tasks import make_induction_task, make_similarity_task

    if model.is_causal:
        return make_induction_task(model, n=2, seq_len=5, seed=0)
    return make_similarity_task(model, n=2, seed=0)


def _circuit(method: str) -> Analysis:
    def run(model):
        from circuits.tracing import method_function, trace

        params = inspect.signature(method_function(method)).parameters
        skip = NOT_FOR.get(method, ())
        given = OPTIONS if model.is_causal else {**OPTIONS, **ENCODER_OPTIONS}
        options = {k: v for k, v in given.items() if k in params and k not in skip}
        return trace(model, task_for(model), method=method, **options)

    def check(model, circuit) -> None:
        assert len(circuit.edges) > 0, "no edges"
        assert circuit.scores.shape == (len(circuit.edges),), "scores shape"
        _finite("scores", circuit.scores)
        assert circuit.scores.abs().max() > 0, "every score is zero on random weights"

    return Analysis(run, check)


def _circuit_methods() -> list[str]:
    from circuits.tracing import METHODS

    return list(METHODS)


ANALYSES: dict[str, Analysis] = {
    "statistics": Analysis(_statistics, _check_statistics),
    "corpus_statistics": Analysis(_corpus_statistics, _check_corpus),
    "head_svd": Analysis(_head_svd, _check_svd),
    "score_decomposition": Analysis(_score_decomposition, _check_decomposition),
    "taxonomy": Analysis(_taxonomy, _check_taxonomy),
    "entropy_collapse": Analysis(_entropy_collapse, _check_collapse),
    **{f"circuit:{method}": _circuit(method) for method in _circuit_methods()},
    "guidance": Analysis(_guidance, _check_guidance),
    "attack": Analysis(_attack, _check_attack),
}
