"""Every result type the workbench ships, built by its entry point on a zoo model: its `kind`
is in the registry, its first plot kind draws, JSON keeps the kind, and the run store files it
under that kind and model without being told.

A result class added without a builder here fails `test_every_registered_kind_is_built`.
"""

from __future__ import annotations

import pytest

import analysis
import circuits
from analysis.statistics import corpus_stats
from analysis.steering.head_hunter import ioi_objective, split_rows
from workbench.results import Result, result_kinds, result_type
from workbench.store import RunStore
from workbench.tasks import make_task

PROMPT = "When Mary and John went to the store, John gave a drink to"
TEXTS = ["one two three four . one two three four", "When Mary and John went to the store"]


def _ioi(zoo_model):
    model = zoo_model("tiny-ioi")
    return model, make_task("ioi", model, n=8, seed=3)


def _circuit(zoo_model):
    model, task = _ioi(zoo_model)
    return model, task, circuits.trace(model, task, method="eap")


def _decomposition(zoo_model):
    return analysis.decompose_score(zoo_model("tiny-ioi"), PROMPT, 1, 0, 14, 13)


def _head_search(zoo_model):
    model, task = _ioi(zoo_model)
    select, heldout = split_rows(task.n_prompts, seed=0)
    hunter = analysis.HeadHunter(rounds=1, candidates=[(1, 0), (1, 1)])
    return hunter.fit(model, ioi_objective(task), select=select, heldout=heldout).result_


def _attack(zoo_model):
    attack = analysis.TokenAttack(
        objective="raise_loss", heads=((1, 1),), steps=2, batch_size=8, seed=0
    )
    pairs = [("one two three four . one two three", " four")]
    return attack.fit(zoo_model("tiny-induction"), pairs).result_


def _universal_attack(zoo_model):
    from analysis.attacks import UniversalAttack

    model = zoo_model("tiny-ioi")
    attack = UniversalAttack(objective="flip", steps=1, n_adv=2, batch_size=8, seed=0)
    attack.fit(model, make_task("ioi", model, n=2, seed=7))
    held = make_task("ioi", model, n=2, seed=1000)
    return attack.evaluate(model, held, baseline_draws=2, n_boot=20)


def _guidance(zoo_model):
    perturbation = analysis.HeadPerturbation(heads=((1, 0),), method="identity")
    return analysis.guide(
        zoo_model("tiny-ioi"), PROMPT, perturbation, max_new_tokens=3, stop_at_eos=False
    )


def _faithfulness(zoo_model):
    model, task, circuit = _circuit(zoo_model)
    return circuits.faithfulness(model, task, circuit.prune(top_n=20))


def _completeness(zoo_model):
    model, task, circuit = _circuit(zoo_model)
    return circuits.completeness(model, task, circuit.prune(top_n=20))


def _curve(zoo_model):
    model, task, circuit = _circuit(zoo_model)
    return circuits.faithfulness_curve(model, task, circuit, sizes=[0, 20])


def _roc(zoo_model):
    _, _, circuit = _circuit(zoo_model)
    return circuits.roc(circuit, circuit.prune(top_n=20))


def _smallest(zoo_model):
    model, task, circuit = _circuit(zoo_model)
    return circuits.smallest_faithful_circuit(model, task, circuit, target=0.5, n_boot=20)


def _sweep_roc(zoo_model):
    model, task = _ioi(zoo_model)
    sweep = circuits.acdc_tau_sweep(model, task, [0.5], distance="metric")
    return circuits.acdc_sweep_roc(sweep, sweep.prune(top_n=20, connected=False))


BUILDERS = {
    "attention_stats": lambda zm: analysis.attention_stats(zm("tiny-ioi"), [PROMPT]),
    "corpus_stats": lambda zm: corpus_stats(zm("tiny-ioi"), TEXTS, docs_per_shard=1),
    "head_svd": lambda zm: analysis.qk_ov_svd(zm("tiny-ioi"), 1, 2),
    "score_decomposition": _decomposition,
    "upstream_contributions": lambda zm: analysis.upstream_contributions(
        zm("tiny-ioi"), _decomposition(zm)
    ),
    "head_taxonomy": lambda zm: analysis.head_taxonomy(zm("tiny-induction")),
    "entropy_collapse": lambda zm: analysis.entropy_collapse(zm("tiny-ioi"), history=False),
    "entropy_bound": lambda zm: analysis.entropy_bound(zm("tiny-ioi"), history=False),
    "logit_lens": lambda zm: analysis.logit_lens(zm("tiny-ioi"), PROMPT, k=3, task="ioi"),
    "loss_plateau": lambda zm: analysis.loss_plateau(zm("tiny-ioi"), n=2, new_tokens=2),
    "guidance": _guidance,
    "head_search": _head_search,
    "attack": _attack,
    "universal_attack": _universal_attack,
    "circuit": lambda zm: _circuit(zm)[2],
    "faithfulness": _faithfulness,
    "completeness": _completeness,
    "faithfulness_curve": _curve,
    "roc": _roc,
    "smallest_circuit": _smallest,
    "acdc_sweep_roc": _sweep_roc,
}


def test_every_registered_kind_is_built():
    assert set(result_kinds()) >= set(BUILDERS)
    shipped = {
        kind
        for kind, cls in result_kinds().items()
        if cls.__module__.startswith(("analysis.", "circuits."))
    }
    assert shipped == set(BUILDERS)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_result_kind_plot_json_and_store(zoo_model, tmp_path, kind):
    import plotly.graph_objects as go

    result = BUILDERS[kind](zoo_model)
    cls = type(result)
    assert cls.kind == kind and result_type(kind) is cls
    assert cls.plot_kinds and all(isinstance(k, str) for k in cls.plot_kinds)
    assert isinstance(result.model_name, str) and result.model_name
    assert isinstance(result.plot(cls.plot_kinds[0]), go.Figure)
    assert isinstance(result.plot(), go.Figure)
    assert len(result.to_frame()) > 0

    same = Result.from_json(result.to_json())
    assert type(same) is cls and same.kind == kind and same.model_name == result.model_name

    store = RunStore(tmp_path)
    run_id = store.save(result)
    info = store.get_run(run_id)
    assert (info.kind, info.model) == (kind, result.model_name)
    assert type(store.load_result(run_id)) is cls
