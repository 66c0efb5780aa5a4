"""Tests for `workbench.executors` (shards, executor choice, Ray missing) and the store's
sharded runs (atomic shards, completeness, resuming interrupted and killed runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from workbench.executors import InProcessExecutor, make_shards, resolve_executor
from workbench.store import RunStore

REPO = Path(__file__).resolve().parents[3]
IDS = ["00000-a", "00001-b", "00002-c"]

# Begins a sharded run, writes its first shard, says so, then waits to be killed.
KILLED_SHARD_WRITER = """
import pathlib, sys, time
import pandas as pd
from workbench.store import RunStore
run = RunStore(sys.argv[1]).begin_sharded_run(
    kind="k", model="m", config={"n": 3}, shard_ids=["00000-a", "00001-b", "00002-c"])
run.write_shard("00000-a", pd.DataFrame({"x": [0.5]}))
pathlib.Path(sys.argv[2]).write_text(run.run_id)
time.sleep(120)
"""


def _frame(i: int) -> pd.DataFrame:
    return pd.DataFrame({"shard": [i, i], "value": [i / 3, -i / 7]})


def test_shard_ids_are_deterministic_and_cover_every_item():
    items = [f"doc {i}" for i in range(10)]
    shards = make_shards(items, size=4, key={"model": "m"})
    assert [s.items for s in shards] == [tuple(items[0:4]), tuple(items[4:8]), tuple(items[8:])]
    assert [s.start for s in shards] == [0, 4, 8]
    again = make_shards(items, size=4, key={"model": "m"})
    assert [s.shard_id for s in shards] == [s.shard_id for s in again]
    other_key = make_shards(items, size=4, key={"model": "other"})
    assert not {s.shard_id for s in shards} & {s.shard_id for s in other_key}
    assert sorted(s.shard_id for s in shards) == [s.shard_id for s in shards]  # sort = order


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
def test_bad_shard_size_is_refused(size):
    with pytest.raises(ValueError, match="shard size"):
        make_shards(["a"], size=size, key=None)


def test_no_items_is_refused():
    with pytest.raises(ValueError, match="items"):
        make_shards([], size=2, key=None)


def test_resolve_executor_names_and_instances():
    runner, owned = resolve_executor(None)
    assert isinstance(runner, InProcessExecutor) and owned
    mine = InProcessExecutor()
    assert resolve_executor(mine) == (mine, False)
    with pytest.raises(ValueError, match="executor: 'dask' is not one of inprocess, ray"):
        resolve_executor("dask")
    with pytest.raises(ValueError, match="executor: expected"):
        resolve_executor(42)
    with pytest.raises(ValueError, match="address"):
        resolve_executor("inprocess", address="127.0.0.1:6379")


def test_ray_executor_without_ray_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ValueError, match=r"executor: 'ray' needs Ray.*pip install") as info:
        resolve_executor("ray")
    assert isinstance(info.value.__cause__, ImportError)


def test_shards_publish_only_when_all_are_written(tmp_path):
    store = RunStore(tmp_path)
    run = store.begin_sharded_run(kind="k", model="m", config={"n": 3}, shard_ids=IDS)
    run.write_shard(IDS[0], _frame(0))
    run.write_shard(IDS[2], _frame(2))
    assert run.finished_shards() == {IDS[0], IDS[2]} and run.missing_shards() == [IDS[1]]
    with pytest.raises(RuntimeError, match="1 shard\\(s\\) missing"):
        run.commit()
    assert store.list_runs() == []
    assert not list((store.staging_dir / run.run_id / "shards").glob("*.tmp"))
    run.write_shard(IDS[1], _frame(1))
    run.commit()
    assert [r.run_id for r in store.list_runs()] == [run.run_id]
    shards = store.load_shards(run.run_id)
    assert list(shards) == IDS
    for i, frame in enumerate(shards.values()):
        assert_frame_equal(frame, _frame(i), check_exact=True)


def test_an_interrupted_run_resumes_with_its_finished_shards(tmp_path):
    store = RunStore(tmp_path)
    run = store.begin_sharded_run(kind="k", model="m", config={"n": 3}, shard_ids=IDS)
    with pytest.raises(KeyboardInterrupt), run:
        run.write_shard(IDS[0], _frame(0))
        raise KeyboardInterrupt
    assert store.get_run(run.run_id).status == "interrupted"
    assert store.cleanup() == [] and store.list_runs() == []  # kept for resuming, unpublished

    other = store.begin_sharded_run(kind="k", model="m", config={"n": 4}, shard_ids=IDS)
    assert other.run_id != run.run_id and other.finished_shards() == set()
    resumed = store.begin_sharded_run(kind="k", model="m", config={"n": 3}, shard_ids=IDS)
    assert resumed.run_id == run.run_id and resumed.finished_shards() == {IDS[0]}
    assert_frame_equal(resumed.read_shard(IDS[0]), _frame(0), check_exact=True)
    assert store.get_run(run.run_id).status == "running"
    with resumed:
        for i in (1, 2):
            resumed.write_shard(IDS[i], _frame(i))
    assert store.get_run(run.run_id).status == "complete"
    fresh = store.begin_sharded_run(kind="k", model="m", config={"n": 3}, shard_ids=IDS)
    assert fresh.run_id not in (run.run_id, other.run_id)  # complete runs are not reopened


def test_different_shard_ids_start_a_new_run(tmp_path):
    store = RunStore(tmp_path)
    store.begin_sharded_run(kind="k", model="m", config={}, shard_ids=IDS).interrupt()
    again = store.begin_sharded_run(kind="k", model="m", config={}, shard_ids=IDS[:2])
    assert again.finished_shards() == set() and len(store.list_runs(include_incomplete=True)) == 2


@pytest.mark.parametrize("ids", [[], ["a", "a"], ["../x"]])
def test_bad_shard_ids_are_refused(tmp_path, ids):
    with pytest.raises(ValueError, match="shard"):
        RunStore(tmp_path).begin_sharded_run(kind="k", model="m", config={}, shard_ids=ids)


@pytest.mark.slow
def test_a_killed_writer_is_resumed(tmp_path):
    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-c", KILLED_SHARD_WRITER, str(tmp_path / "store"), str(ready)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "writer never became ready"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = RunStore(tmp_path / "store")
    run_id = ready.read_text()
    assert store.get_run(run_id).status == "abandoned"
    resumed = store.begin_sharded_run(kind="k", model="m", config={"n": 3}, shard_ids=IDS)
    assert resumed.run_id == run_id and resumed.finished_shards() == {IDS[0]}
    assert resumed.read_shard(IDS[0])["x"].tolist() == [0.5]


def test_stdout_guard_sends_ray_threads_to_stderr_and_the_rest_to_stdout(capsys):
    import threading

    from workbench.executors.ray_local import StdoutGuard

    real = sys.stdout
    guard = StdoutGuard.install()
    try:
        assert StdoutGuard.install() is guard and sys.stdout is guard  # installed once
        print('{"json": true}')  # the CLI's own output, from the main thread
        for name in ("ray_listen_error_messages", "some-user-thread"):
            line = f"(raylet) A worker died, printed by {name}"
            thread = threading.Thread(target=print, args=(line,), name=name)
            thread.start()
            thread.join()
    finally:
        StdoutGuard.uninstall()
    assert sys.stdout is real
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        '{"json": true}',
        "(raylet) A worker died, printed by some-user-thread",
    ]
    assert captured.err == "(raylet) A worker died, printed by ray_listen_error_messages\n"
