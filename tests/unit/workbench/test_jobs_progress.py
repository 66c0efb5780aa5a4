"""Background jobs: progress per step, no bar on stderr, and a truthful state after Cancel.

Real jobs throughout: the attacks page's `attack_job` on tiny-ioi, run inside the forked
process of the dashboard's own `JobManager` (Dash's DiskcacheManager) and stopped with its
`terminate_job`, as Dash's Cancel does; the Cancel callback's answer is checked over HTTP.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

from workbench.ui import jobs, state
from workbench.ui.pages.attacks import attack_job

STEP = re.compile(r"^attack: (\d+)/(\d+)$")


def _attack(set_progress, steps: int, session: str | None = None) -> dict:
    """The attacks page's job, as its background callback runs it."""
    return jobs.job_outcome(
        attack_job,
        set_progress,
        session=session or uuid.uuid4().hex,
        model_name="tiny-ioi",
        prompt="When Mary and John went to the store, John gave a drink to",
        objective="flip",
        heads=(),
        weight=0.0,
        steps=steps,
        n_adv=1,
        n_prompts=2,
        seed=0,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    import torch

    state.configure(store=str(tmp_path_factory.mktemp("store")))
    state.open_model("tiny-ioi")  # loaded before the fork, as in the dashboard
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # a served dashboard runs torch on several threads before it forks
    torch.randn(256, 256) @ torch.randn(256, 256)  # start the OpenMP pool the child inherits
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def manager(tmp_path):
    return jobs.manager(str(tmp_path / "jobs"))


def _wait(condition, what: str, limit: int = 12_000):
    """Poll `condition()` until it is truthy (bounded by a count of polls, not a clock)."""
    import time

    for _ in range(limit):
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def test_progress_is_reported_per_step_and_no_bar_reaches_stderr(store, capfd):
    seen: list[tuple[int, str]] = []
    with jobs.tqdm_progress(seen.append, "attack", min_interval=0):
        from analysis.attacks.universal import UniversalAttack
        from workbench.tasks import make_task

        model = state.open_model("tiny-ioi")
        attack = UniversalAttack(
            objective="dissipation", heads=[(0, 0)], steps=3, n_adv=1, progress=True
        )
        attack.fit(model, make_task("ioi", model, n=2, seed=0))  # one bar step per step
    steps = [tuple(map(int, STEP.match(label).groups())) for _, label in seen]
    assert steps, seen
    total = steps[-1][1]
    assert total == 3
    assert [n for n, _ in steps] == list(range(1, total + 1))  # every step, in order
    assert [p for p, _ in seen] == [int(100 * n / total) for n, _ in steps]
    err = capfd.readouterr().err
    assert "attack:" not in err and "it/s" not in err, err


def test_a_finished_job_ends_with_finished_progress_and_its_run(store, manager):
    key = "finished-job"
    job = manager.call_job_fn(key, manager.make_job_fn(_attack, True), {"steps": 1}, {})
    _wait(lambda: manager.result_ready(key), "the job's result")
    result = manager.get_result(key, None)
    assert set(result) == {"run_id"}, result
    assert state.run_store().load_result(result["run_id"]).kind == "attack"
    manager.terminate_job(job)  # Cancel pressed after the job ended
    assert manager.cancel_outcome(job) == jobs.FINISHED_FIRST
    assert jobs._finished_state(result) == (jobs.FINISHED, 100)


def test_cancel_stops_a_running_job_and_says_cancelled(store, manager):
    key = "running-job"
    job = manager.call_job_fn(key, manager.make_job_fn(_attack, True), {"steps": 1000}, {})
    first = _wait(lambda: manager.get_progress(key), "the job's first progress")
    assert first[1] in {"preparing prompts"} or STEP.match(first[1]), first
    assert manager.job_running(job)
    assert manager.cancel_outcome(job) is None
    manager.terminate_job(job)
    assert not manager.job_running(job)
    assert manager.cancel_outcome(job) == jobs.CANCELLED
    manager.terminate_job(job)  # Dash's cancel callback and ours both call it
    assert manager.cancel_outcome(job) == jobs.CANCELLED
    assert not manager.result_ready(key)


def test_a_failed_job_says_failed_with_its_reason(store):
    answer = _attack(lambda _: None, 1, session="not a session")
    assert answer == {"error": "session: missing or malformed session id (reload the page)"}
    assert jobs._finished_state(answer) == (
        "failed: session: missing or malformed session id (reload the page)",
        0,
    )


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from workbench.ui import create_app

    return create_app(
        preload=["tiny-ioi"],
        store=str(tmp_path_factory.mktemp("app-store")),
        jobs_folder=str(tmp_path_factory.mktemp("app-jobs")),
    )


def test_every_job_page_gets_a_visible_job_state(app):
    assert jobs.register_job_state(app) == ["attacks", "attacks-uni", "circuits", "guidance"]


@pytest.mark.parametrize("prefix", ["attacks", "attacks-uni", "circuits", "guidance"])
def test_cancel_with_nothing_running_says_so(app, prefix):
    key = next(
        k
        for k, spec in app.callback_map.items()
        if [i["id"] for i in spec["inputs"]] == [f"{prefix}-cancel"]
        and f"{prefix}-progress-label.children" in k
    )
    parts = [p.split("@")[0] for p in key.strip(".").split("...")]
    body = {
        "output": key,
        "outputs": [dict(zip(("id", "property"), p.rsplit(".", 1), strict=True)) for p in parts],
        "inputs": [{"id": f"{prefix}-cancel", "property": "n_clicks", "value": 1}],
        "changedPropIds": [f"{prefix}-cancel.n_clicks"],
    }
    answer = app.server.test_client().post("/_dash-update-component", json=body)
    assert answer.status_code == 200, answer.data[:300]
    assert json.loads(answer.data)["response"] == {
        f"{prefix}-progress-label": {"children": jobs.NOTHING_RUNNING}
    }
