"""Tests for `workbench.store`: publish protocol, crash safety and concurrent readers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from pandas.testing import assert_frame_equal

from workbench.results import Result
from workbench.store import RunInfo, RunNotFound, RunStore, new_run_id

REPO = Path(__file__).resolve().parents[3]

# A writer that begins a run, writes one table, says so, then waits to be killed.
KILLED_WRITER = """
import pathlib, sys, time
import pandas as pd
from workbench.store import RunStore
run = RunStore(sys.argv[1]).begin_run(kind="stats", model="m", config={"n": 1})
run.write_table("main", pd.DataFrame({"x": [1, 2, 3]}))
pathlib.Path(sys.argv[2]).write_text(run.run_id)
time.sleep(120)
run.commit()
"""

# A reader that polls list_runs until it sees `want` runs, loading every table it sees.
POLLING_READER = """
import json, pathlib, sys, time
from workbench.store import RunStore
store, want, out = RunStore(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3])
pathlib.Path(sys.argv[4]).write_text("ready")
counts, errors, deadline = [], [], time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        runs = store.list_runs()
        for info in runs:
            if store.load_table(info.run_id, "main")["x"].tolist() != [info.config["i"]] * 3:
                errors.append(f"wrong table in {info.run_id}")
    except Exception as exc:
        errors.append(repr(exc))
        continue
    counts.append(len(runs))
    if len(runs) >= want:
        break
out.write_text(json.dumps({"counts": counts, "errors": errors}))
"""


@dataclass(frozen=True)
class StoredScores(Result):
    """A small result with a tensor and two tables."""

    scores: torch.Tensor
    tokens: tuple[str, ...]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"token": list(self.tokens), "score": self.scores.float().numpy()})

    def plot(self, kind: str | None = None, **kwargs: Any) -> Any:
        raise NotImplementedError

    def tables(self) -> dict[str, pd.DataFrame]:
        return {**super().tables(), "summary": pd.DataFrame({"mean": [float(self.scores.mean())]})}


def _result() -> StoredScores:
    return StoredScores(scores=torch.tensor([0.5, 1.25, -2.0]), tokens=("a", "b", "c"))


def _spawn(script: str, *args: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-c", script, *map(str, args)]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE)


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"helper exited early: {proc.stderr.read().decode()}")
        assert time.monotonic() < deadline, "helper never became ready"
        time.sleep(0.02)
    return path.read_text()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_save_list_load_delete(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run_id = store.save(_result(), kind="scores", model="tiny-ioi", config={"layer": 1})
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{8}", run_id)
    [info] = store.list_runs()
    assert isinstance(info, RunInfo) and info == store.get_run(run_id)
    assert (info.run_id, info.kind, info.model, info.config) == (
        run_id,
        "scores",
        "tiny-ioi",
        {"layer": 1},
    )
    assert info.status == "complete" and info.completed_at >= info.created_at
    assert info.tables == ["main", "summary"]
    folder = tmp_path / "runs" / run_id
    assert {p.name for p in folder.iterdir()} == {
        "main.parquet",
        "summary.parquet",
        "result.json",
        "meta.json",
    }
    assert json.loads((folder / "meta.json").read_text())["tables"] == ["main", "summary"]
    assert_frame_equal(store.load_table(run_id, "main"), _result().to_frame())
    restored = store.load_result(run_id)
    assert isinstance(restored, StoredScores) and restored.tokens == ("a", "b", "c")
    assert torch.equal(restored.scores, _result().scores)
    store.delete_run(run_id)
    assert store.list_runs(include_incomplete=True) == [] and not folder.exists()
    with pytest.raises(RunNotFound, match=run_id) as caught:
        store.delete_run(run_id)
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, ValueError)
    assert str(caught.value).startswith("no run")  # not KeyError's quoted repr


def test_tables_round_trip(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    frames = {
        "ints": pd.DataFrame({"layer": np.arange(4), "head": np.arange(4, dtype=np.int8)}),
        "mixed": pd.DataFrame(
            {"x": [0.5, np.nan], "s": ["a", None], "c": pd.Categorical(["u", "v"])},
            index=pd.Index(["p", "q"], name="prompt"),
        ),
        "v1.2-final_": pd.DataFrame({"t": pd.to_datetime(["2024-01-01", "2025-06-30"])}),
    }
    with store.begin_run(kind="k", model="m", config={}) as run:
        for name, df in frames.items():
            run.write_table(name, df)
    [info] = store.list_runs()
    assert info.tables == sorted(frames)
    for name, df in frames.items():
        assert_frame_equal(store.load_table(info.run_id, name), df)
    with pytest.raises(FileNotFoundError, match="nope"):
        store.load_table(info.run_id, "nope")


@pytest.mark.parametrize("bad", ["", ".hidden", "../x", "a/b", "a\\b", "..", "a b", "é"])
def test_bad_names_are_rejected(tmp_path: Path, bad: str) -> None:
    store = RunStore(tmp_path)
    run_id = store.save(_result(), kind="k", model="m", config={})
    for call in (
        lambda: store.get_run(bad),
        lambda: store.load_table(bad, "main"),
        lambda: store.load_table(run_id, bad),
        lambda: store.delete_run(bad),
    ):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            call()
    with (
        store.begin_run(kind="k", model="m", config={}) as run,
        pytest.raises(ValueError, match=re.escape(repr(bad))),
    ):
        run.write_table(bad, pd.DataFrame())


def test_failing_writer_leaves_nothing_visible(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    with (
        pytest.raises(RuntimeError, match="boom"),
        store.begin_run(kind="k", model="m", config={}) as run,
    ):
        run.write_table("main", pd.DataFrame({"x": [1]}))
        raise RuntimeError("boom")
    assert store.list_runs() == []
    [info] = store.list_runs(include_incomplete=True)
    assert info.status == "failed" and info.run_id == run.run_id
    assert (
        list((tmp_path / "staging").iterdir()) == [] and list((tmp_path / "runs").iterdir()) == []
    )
    with pytest.raises(RunNotFound):
        store.load_table(run.run_id, "main")


def test_bad_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="config"):
        RunStore(tmp_path).begin_run(kind="k", model="m", config={"fn": print})


def test_root_defaults_to_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "env-store"))
    store = RunStore()
    assert store.root == tmp_path / "env-store" and (store.root / "runs.sqlite").is_file()


def test_run_ids_sort_by_time() -> None:
    ids = [new_run_id() for _ in range(50)]
    assert len(set(ids)) == 50 and all(ids[0][:15] <= i[:15] for i in ids)


def test_killed_writer_leaves_no_visible_run(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    kept = store.save(_result(), kind="k", model="m", config={})
    ready = tmp_path / "ready"
    proc = _spawn(KILLED_WRITER, tmp_path, ready)
    try:
        run_id = _wait_for(ready, proc)
        assert store.get_run(run_id).status == "running"  # alive: not abandoned yet
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert (tmp_path / "staging" / run_id / "main.parquet").is_file()
    assert [r.run_id for r in store.list_runs()] == [kept]
    with pytest.raises(RunNotFound):
        store.load_table(run_id, "main")
    statuses = {r.run_id: r.status for r in store.list_runs(include_incomplete=True)}
    assert statuses == {kept: "complete", run_id: "abandoned"}
    assert store.cleanup() == [run_id]
    assert not (tmp_path / "staging" / run_id).exists()
    assert store.get_run(run_id).status == "abandoned"
    new = store.save(_result(), kind="k", model="m", config={})
    assert [r.run_id for r in store.list_runs()] == [kept, new]


def test_killed_between_rename_and_status_update(tmp_path: Path) -> None:
    store = RunStore(tmp_path)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # stands in for SIGKILL after os.replace

    run = store.begin_run(kind="k", model="m", config={})
    run.write_table("main", pd.DataFrame({"x": [1]}))
    store._set_status = crash  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        run.commit()
    del store._set_status
    assert (tmp_path / "runs" / run.run_id / "main.parquet").is_file()
    assert store.list_runs() == []  # folder published, row not complete: invisible
    with pytest.raises(RunNotFound):
        store.load_result(run.run_id)
    assert store.cleanup() == []  # the writer (this process) is alive: leave it alone
    with store._db() as db:
        db.execute("UPDATE runs SET pid = ? WHERE run_id = ?", (_dead_pid(), run.run_id))
    assert store.cleanup() == [run.run_id]
    assert not (tmp_path / "runs" / run.run_id).exists()
    assert store.get_run(run.run_id).status == "abandoned"


def test_cleanup_finishes_orphans_and_interrupted_deletes(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    (tmp_path / "staging" / "orphan").mkdir()
    half_deleted = store.save(_result(), kind="k", model="m", config={})
    os.replace(tmp_path / "runs" / half_deleted, tmp_path / "staging" / half_deleted)
    assert store.list_runs() == []
    assert store.cleanup() == sorted(["orphan", half_deleted])
    assert store.list_runs(include_incomplete=True) == []
    assert list((tmp_path / "staging").iterdir()) == []


def test_delete_refuses_a_live_writer(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    with (
        store.begin_run(kind="k", model="m", config={}) as run,
        pytest.raises(ValueError, match="still being written"),
    ):
        store.delete_run(run.run_id)
    assert [r.status for r in store.list_runs()] == ["complete"]


def test_threads_share_a_store(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    with ThreadPoolExecutor(4) as pool:
        ids = list(
            pool.map(
                lambda i: store.save(_result(), kind="k", model="m", config={"i": i}), range(8)
            )
        )
        listed = list(pool.map(lambda _: len(store.list_runs()), range(4)))
    assert sorted(r.run_id for r in store.list_runs()) == sorted(ids) and listed == [8] * 4


def test_reader_process_polls_while_writer_commits(tmp_path: Path) -> None:
    store, want = RunStore(tmp_path), 12
    out, ready = tmp_path / "reader.json", tmp_path / "reader-ready"
    proc = _spawn(POLLING_READER, tmp_path, want, out, ready)
    try:
        _wait_for(ready, proc)
        for i in range(want):
            with store.begin_run(kind="k", model="m", config={"i": i}) as run:
                run.write_table("main", pd.DataFrame({"x": [i] * 3}))
            time.sleep(0.01)
        assert proc.wait(timeout=60) == 0, proc.stderr.read().decode()
    finally:
        proc.kill()
    report = json.loads(out.read_text())
    assert report["errors"] == []
    assert report["counts"][-1] == want and report["counts"] == sorted(report["counts"])


def test_staging_records_its_writer_until_commit(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    with store.begin_run(kind="k", model="m", config={"a": [1]}) as run:
        record = json.loads((run.folder / "writer.json").read_text())
        assert (record["pid"], record["run_id"], record["config"]) == (
            os.getpid(),
            run.run_id,
            {"a": [1]},
        )
    published = tmp_path / "runs" / run.run_id
    assert not (published / "writer.json").exists()
    meta = json.loads((published / "meta.json").read_text())
    assert meta["created_at"] == store.get_run(run.run_id).created_at.isoformat(
        timespec="microseconds"
    )


def test_commit_restores_a_row_a_rebuild_lost(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = store.begin_run(kind="k", model="m", config={"n": 2})
    run.write_table("main", pd.DataFrame({"x": [1]}))
    store._delete_row(run.run_id)  # what a rebuild racing this writer could leave
    run.commit()
    [info] = store.list_runs()
    assert (info.run_id, info.status, info.config) == (run.run_id, "complete", {"n": 2})


def test_an_interrupted_sharded_run_survives_an_index_rebuild(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = store.begin_sharded_run(kind="k", model="m", config={"n": 3}, shard_ids=["a", "b"])
    run.write_shard("a", pd.DataFrame({"x": [0.5]}))
    run.interrupt()
    store.close()
    (tmp_path / "runs.sqlite").write_bytes(b"\0garbage" * 512)
    reopened = RunStore(tmp_path)
    assert reopened.repaired is not None and "damaged" in reopened.repaired
    assert reopened.clean(0) == []  # resumable: kept
    resumed = reopened.begin_sharded_run(kind="k", model="m", config={"n": 3}, shard_ids=["a", "b"])
    assert resumed.run_id == run.run_id and resumed.finished_shards() == {"a"}
    with resumed:
        resumed.write_shard("b", pd.DataFrame({"x": [1.5]}))
    assert list(reopened.load_shards(run.run_id)) == ["a", "b"]


def test_repair_on_a_sound_index_changes_nothing(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    ids = [store.save(_result(), kind="k", model="m", config={"i": i}) for i in range(3)]
    report = store.repair()
    assert not report.changed and report.runs == 3 and report.skipped == ()
    assert report.message == "run index is sound: 3 published run(s) listed"
    assert [r.run_id for r in store.list_runs()] == ids and store.repaired is None
