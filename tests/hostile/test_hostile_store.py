"""Hostile input to the run store (issue 12, items 4 and 5): damaged indexes, store paths that
are not folders, corrupt run files, abandoned staging, a repair racing a live writer; through
the API, the CLI and the Runs page's callback helpers.

Every store here holds real `HeadStats` results of `tiny-ioi`, saved by the real `RunStore`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis import attention_stats
from tests.cli_helpers import run_cli
from workbench.store import RunStore

REPO = Path(__file__).resolve().parents[2]
PROMPTS = ["When Mary and John went to the store, John gave a drink to", "The cat sat on the"]
HOUR = 3600.0

# Begins a run, writes one table, says so, waits for the go file, then commits.
PAUSED_WRITER = """
import pathlib, sys, time
import pandas as pd
from workbench.store import RunStore
run = RunStore(sys.argv[1]).begin_run(kind="stats", model="tiny-ioi", config={"paused": 1})
run.write_table("main", pd.DataFrame({"x": [1, 2, 3]}))
pathlib.Path(sys.argv[2]).write_text(run.run_id)
go = pathlib.Path(sys.argv[3])
while not go.exists():
    time.sleep(0.02)
run.commit()
"""

# Saves `n` runs one after another, then exits.
SAVER = """
import sys
import pandas as pd
from workbench.store import RunStore
store = RunStore(sys.argv[1])
for i in range(int(sys.argv[2])):
    with store.begin_run(kind="stats", model="tiny-ioi", config={"saver": i}) as run:
        run.write_table("main", pd.DataFrame({"x": [i] * 3}))
"""


@pytest.fixture(scope="module")
def template(zoo_model, tmp_path_factory) -> dict:
    """A store with four published runs of real results; tests copy it."""
    model = zoo_model("tiny-ioi")
    results = [attention_stats(model, [p]) for p in PROMPTS]
    root = tmp_path_factory.mktemp("template") / "store"
    store = RunStore(root)
    ids = [
        store.save(results[i % 2], kind="stats", model="tiny-ioi", config={"i": i})
        for i in range(4)
    ]
    texts = {run_id: results[i % 2].to_json() for i, run_id in enumerate(ids)}
    store.close()
    return {"root": root, "ids": ids, "texts": texts}


@pytest.fixture
def seeded(template, tmp_path) -> Path:
    root = tmp_path / "store"
    shutil.copytree(template["root"], root)
    return root


def _assert_nothing_lost(store: RunStore, template: dict) -> None:
    assert [r.run_id for r in store.list_runs()] == template["ids"]
    for run_id, text in template["texts"].items():
        assert store.load_result(run_id).to_json() == text
        assert store.get_run(run_id).tables == ["main", "per_head"]


def _sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    with conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(4096))


def _header_then_garbage(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))


def _truncate(size: int):
    def cut(path: Path) -> None:
        with open(path, "r+b") as file:
            file.truncate(size if size > 0 else path.stat().st_size // 2)

    return cut


def _zero(path: Path) -> None:
    path.write_bytes(b"")


def _missing(path: Path) -> None:
    path.unlink()


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "inside").write_text("kept")


def _symlink(path: Path) -> None:
    target = path.parent.parent / "elsewhere.sqlite"
    target.write_bytes(os.urandom(2048))
    path.unlink()
    path.symlink_to(target)


def _wrong_schema(path: Path) -> None:
    _sql(path, "DROP TABLE runs", "CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT)")


# (damage, moved aside?, what the repair note says)
DAMAGES = {
    "garbage-bytes": (_garbage, True, "damaged \\(file is not a database\\)"),
    "sqlite-header-then-garbage": (_header_then_garbage, True, "damaged"),
    "truncated-to-half": (_truncate(0), True, "damaged \\(database disk image is malformed\\)"),
    "truncated-to-100-bytes": (_truncate(100), True, "damaged"),
    "directory-named-runs.sqlite": (_directory, True, "runs.sqlite is not a regular file"),
    "symlink-to-garbage": (_symlink, True, "runs.sqlite is not a regular file"),
    "wrong-schema": (_wrong_schema, True, "lacks column\\(s\\) run_id, kind"),
    "zero-bytes": (_zero, False, "incomplete: re-indexed 4 run\\(s\\)"),
    "deleted": (_missing, False, "incomplete: re-indexed 4 run\\(s\\)"),
    "dropped-table": (lambda p: _sql(p, "DROP TABLE runs"), False, "re-indexed 4 run\\(s\\)"),
    "rows-deleted": (lambda p: _sql(p, "DELETE FROM runs"), False, "re-indexed 4 run\\(s\\)"),
    "config-not-json": (
        lambda p: _sql(p, "UPDATE runs SET config = '{not json'"),
        False,
        "re-indexed 4 run\\(s\\).*old index copied to",
    ),
    "forged-row-without-files": (
        lambda p: _sql(
            p,
            "INSERT INTO runs (run_id, kind, model, config, status, created_at) VALUES "
            "('20000101-000000-deadbeef', 'k', 'm', '{bad', 'complete', 'never')",
        ),
        False,
        "re-indexed 0 run\\(s\\) from files, dropped 1 malformed row\\(s\\) \\(old index copied",
    ),
    "forged-status": (
        lambda p: _sql(p, "UPDATE runs SET status = 'pwned'"),
        False,
        "re-indexed 4 run\\(s\\)",
    ),
    "forged-created-at": (
        lambda p: _sql(p, "UPDATE runs SET created_at = 'yesterday'"),
        False,
        "re-indexed 4 run\\(s\\)",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_index_is_rebuilt_losing_nothing(seeded, template, damage):
    mangle, moved, note = DAMAGES[damage]
    index = seeded / "runs.sqlite"
    mangle(index)
    before = index.read_bytes() if index.is_file() and not index.is_symlink() else None
    store = RunStore(seeded)
    assert store.repaired is not None and re.search(note, store.repaired), store.repaired
    _assert_nothing_lost(store, template)
    aside = sorted(seeded.glob("runs.sqlite.damaged-*"))
    aside = [p for p in aside if not p.name.endswith(("-wal", "-shm"))]
    if moved:
        assert len(aside) == 1 and str(aside[0]) in store.repaired
        if before is not None:
            assert aside[0].read_bytes() == before  # moved, not rewritten: nothing lost
    assert store.repair().changed is False  # healed for good
    assert RunStore(seeded).repaired is None


def test_an_index_damaged_while_open_is_healed_on_the_next_query(seeded, template):
    store = RunStore(seeded)
    assert store.repaired is None and len(store.list_runs()) == 4
    junk = seeded / "junk"
    junk.write_bytes(os.urandom(4096))
    os.replace(junk, seeded / "runs.sqlite")
    _assert_nothing_lost(store, template)
    assert "file is not a database" in store.repaired


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: Path("/etc/passwd"), "store: /etc/passwd is not a folder"),
        (lambda tmp: _file(tmp / "plain-file"), "store: {root} is not a folder"),
        (lambda tmp: _file(tmp / "plain-file") / "below", "store: cannot create folder {root}"),
        (lambda tmp: _file(tmp / "s" / "runs").parent, "store: {root}/runs is not a folder"),
        (lambda tmp: _file(tmp / "s" / "staging").parent, "store: {root}/staging is not a folder"),
    ],
    ids=["etc-passwd", "a-file", "below-a-file", "runs-is-a-file", "staging-is-a-file"],
)
def test_a_store_path_that_is_not_a_folder_is_refused(tmp_path, make, message):
    root = make(tmp_path)
    with pytest.raises(ValueError, match=re.escape(message.format(root=root))):
        RunStore(root)


def _file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a folder")
    return path


RESULT_DAMAGES = {
    "garbage": lambda text: os.urandom(512),
    "truncated": lambda text: text[: len(text) // 2].encode(),
    "a-json-list": lambda text: b"[1, 2, 3]",
    "wrong-schema-version": lambda text: json.dumps(
        {**json.loads(text), "schema_version": 9}
    ).encode(),
    "unknown-type": lambda text: json.dumps({**json.loads(text), "type": "Evil"}).encode(),
    "fields-not-matching": lambda text: json.dumps({**json.loads(text), "fields": {}}).encode(),
}


@pytest.mark.parametrize("damage", list(RESULT_DAMAGES))
def test_a_corrupt_result_json_is_named(seeded, template, damage):
    run_id = template["ids"][1]
    path = seeded / "runs" / run_id / "result.json"
    path.write_bytes(RESULT_DAMAGES[damage](path.read_text()))
    store = RunStore(seeded)
    with pytest.raises(ValueError, match=f"cannot read {re.escape(str(path))}: "):
        store.load_result(run_id)
    assert store.load_result(template["ids"][0]).to_json() == template["texts"][template["ids"][0]]


def test_a_corrupt_table_is_named(seeded, template):
    run_id = template["ids"][2]
    path = seeded / "runs" / run_id / "main.parquet"
    path.write_bytes(os.urandom(300))
    with pytest.raises(ValueError, match=f"cannot read {re.escape(str(path))}: "):
        RunStore(seeded).load_table(run_id, "main")


META_DAMAGES = {
    "garbage": (lambda meta: os.urandom(64), "unreadable"),
    "not-an-object": (lambda meta: b'"meta"', "malformed \\(not a JSON object\\)"),
    "other-run-id": (lambda meta: {**meta, "run_id": "20000101-000000-deadbeef"}, "does not match"),
    "no-kind": (lambda meta: {k: v for k, v in meta.items() if k != "kind"}, "kind is missing"),
    "config-a-list": (lambda meta: {**meta, "config": [1]}, "config is missing or not an object"),
    "bad-created-at": (lambda meta: {**meta, "created_at": "soon"}, "Invalid isoformat"),
}


@pytest.mark.parametrize("damage", list(META_DAMAGES))
def test_a_corrupt_meta_json_is_named_and_its_run_left_in_place(seeded, template, damage):
    change, reason = META_DAMAGES[damage]
    run_id = template["ids"][3]
    path = seeded / "runs" / run_id / "meta.json"
    changed = change(json.loads(path.read_text()))
    path.write_bytes(changed if isinstance(changed, bytes) else json.dumps(changed).encode())
    _garbage(seeded / "runs.sqlite")
    store = RunStore(seeded)
    assert [r.run_id for r in store.list_runs()] == template["ids"][:3]
    report = store.repair()
    [skipped] = report.skipped
    assert skipped.startswith(f"{path}: ") and re.search(reason, skipped), skipped
    assert (seeded / "runs" / run_id / "result.json").is_file()  # left on disk, not deleted


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    for sub in [path, *path.rglob("*")]:
        os.utime(sub, (past, past), follow_symlinks=False)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _staged(store: RunStore, kind: str) -> str:
    """A staging folder in one of the states `clean` meets; returns its name."""
    if kind.startswith("orphan"):
        (store.staging_dir / "orphan" / "x.parquet.tmp").parent.mkdir()
        (store.staging_dir / "orphan" / "x.parquet.tmp").write_bytes(b"x" * 1000)
        return "orphan"
    sharded = "sharded" in kind
    run = (
        store.begin_sharded_run(kind="k", model="m", config={}, shard_ids=["a", "b"])
        if sharded
        else store.begin_run(kind="k", model="m", config={})
    )
    if kind.startswith("failed"):
        run.abort()
        run.folder.mkdir()  # a leftover an interrupted abort could leave
    elif kind.startswith("dead") or kind.startswith("sharded"):
        _sql(store.index_path, f"UPDATE runs SET pid = {_dead_pid()} WHERE run_id = '{run.run_id}'")
    return run.run_id


# (state, age in seconds, grace, resumable, removed?)
CLEANS = [
    ("dead-writer", 2 * HOUR, HOUR, False, True),
    ("dead-writer-young", 60, HOUR, False, False),
    ("orphan", 2 * HOUR, HOUR, False, True),
    ("orphan-young", 60, HOUR, False, False),
    ("failed-leftover", 2 * HOUR, HOUR, False, True),
    ("live-writer", 30 * HOUR, 0, False, False),
    ("sharded-dead-writer", 2 * HOUR, HOUR, False, False),
    ("sharded-dead-writer-resumable", 2 * HOUR, HOUR, True, True),
]


@pytest.mark.parametrize(("kind", "age", "grace", "resumable", "removed"), CLEANS)
def test_clean_removes_abandoned_staging_after_the_grace_period(
    tmp_path, kind, age, grace, resumable, removed
):
    store = RunStore(tmp_path)
    name = _staged(store, kind)
    _age(store.staging_dir / name, age)
    assert store.clean(grace, resumable=resumable) == ([name] if removed else [])
    assert (store.staging_dir / name).exists() is not removed
    assert store.list_runs() == []


def test_opening_the_store_cleans_old_abandoned_staging(seeded, template):
    store = RunStore(seeded)
    old, young = _staged(store, "dead-writer"), _staged(store, "dead-writer-young")
    _age(store.staging_dir / old, 2 * HOUR)
    store.close()
    reopened = RunStore(seeded)
    assert reopened.cleaned == [old] and not (seeded / "staging" / old).exists()
    assert (seeded / "staging" / young).is_dir()
    assert reopened.get_run(old).status == "abandoned"
    _assert_nothing_lost(reopened, template)


def test_clean_never_follows_a_symlink_out_of_staging(tmp_path):
    store = RunStore(tmp_path / "store")
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    (store.staging_dir / "link").symlink_to(outside)
    assert store.clean(0) == ["link"]
    assert (outside / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("grace", [-1, float("nan"), "1h", True])
def test_clean_refuses_a_bad_grace(tmp_path, grace):
    with pytest.raises(ValueError, match="grace: expected a number of seconds >= 0"):
        RunStore(tmp_path).clean(grace)


def _spawn(script: str, *args: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", script, *map(str, args)]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE)


def _wait_for(path: Path, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 120
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"helper exited early: {proc.stderr.read().decode()}")
        assert time.monotonic() < deadline, "helper never became ready"
        time.sleep(0.02)
    return path.read_text()


def test_a_rebuild_racing_a_live_writer_keeps_its_run(seeded, template, tmp_path):
    ready, go = tmp_path / "ready", tmp_path / "go"
    proc = _spawn(PAUSED_WRITER, seeded, ready, go)
    try:
        run_id = _wait_for(ready, proc)
        _garbage(seeded / "runs.sqlite")  # the index dies under the writer's feet
        store = RunStore(seeded)
        assert "damaged" in store.repaired
        assert store.get_run(run_id).status == "running"  # restored from its writer.json
        assert store.clean(0) == [] and (seeded / "staging" / run_id).is_dir()
        go.write_text("go")
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    finally:
        proc.kill()
    assert [r.run_id for r in store.list_runs()] == [*template["ids"], run_id]
    assert store.load_table(run_id, "main")["x"].tolist() == [1, 2, 3]
    assert store.get_run(run_id).status == "complete"


def test_a_killed_writer_stays_invisible_through_a_rebuild(seeded, template, tmp_path):
    ready, go = tmp_path / "ready", tmp_path / "never"
    proc = _spawn(PAUSED_WRITER, seeded, ready, go)
    try:
        run_id = _wait_for(ready, proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    _zero(seeded / "runs.sqlite")
    for suffix in ("-wal", "-shm"):
        Path(f"{seeded / 'runs.sqlite'}{suffix}").unlink(missing_ok=True)
    store = RunStore(seeded)
    _assert_nothing_lost(store, template)  # the partial run is not listed
    assert store.get_run(run_id).status == "abandoned"
    assert store.clean(0) == [run_id] and not (seeded / "staging" / run_id).exists()


def test_cli_refuses_a_store_that_is_a_file_in_one_line():
    proc = run_cli("runs", "--store", "/etc/passwd", "list")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "workbench: error: store: /etc/passwd is not a folder\n"


def test_cli_lists_a_rebuilt_index_and_says_so(seeded, template):
    _garbage(seeded / "runs.sqlite")
    proc = run_cli("runs", "--store", str(seeded), "list", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [r["run_id"] for r in json.loads(proc.stdout)] == template["ids"]
    [note] = proc.stderr.splitlines()
    assert note.startswith("workbench: note: run index was damaged (file is not a database)")
    again = run_cli("runs", "--store", str(seeded), "repair", "--json")
    assert again.returncode == 0 and again.stderr == ""
    assert json.loads(again.stdout)["runs"] == 4 and json.loads(again.stdout)["problem"] is None


def test_cli_clean_removes_abandoned_staging_now(tmp_path):
    store = RunStore(tmp_path)
    name = _staged(store, "dead-writer-young")
    kept = run_cli("runs", "--store", str(tmp_path), "clean", "--json")
    assert kept.returncode == 0 and json.loads(kept.stdout) == {"removed": []}
    proc = run_cli("runs", "--store", str(tmp_path), "clean", "--grace", "0")
    assert proc.returncode == 0 and proc.stdout == f"removed 1 abandoned run folder(s): {name}\n"


@pytest.mark.parametrize("grace", ["-5", "nan", "inf", "soon"])
def test_cli_clean_refuses_a_bad_grace(tmp_path, grace):
    proc = run_cli("runs", "--store", str(tmp_path), "clean", "--grace", grace)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "--grace: expected seconds >= 0" in proc.stderr


def test_repairs_and_index_damage_racing_a_saving_process_lose_no_run(seeded, template):
    proc = _spawn(SAVER, seeded, 12)
    repairs = 0
    try:
        while proc.poll() is None:
            junk = seeded / "junk"
            junk.write_bytes(os.urandom(4096))
            os.replace(junk, seeded / "runs.sqlite")  # damage it again and again
            store = RunStore(seeded)
            store.repair()
            repairs += 1
        assert proc.returncode == 0, proc.stderr.read().decode()
    finally:
        proc.kill()
    store = RunStore(seeded)
    saved = [r for r in store.list_runs() if "saver" in r.config]
    assert repairs > 0 and [r.config["saver"] for r in saved] == list(range(12))
    for info in saved:
        assert store.load_table(info.run_id, "main")["x"].tolist() == [info.config["saver"]] * 3
    _assert_nothing_lost_among(store, template)
    assert list((seeded / "staging").iterdir()) == []


def _assert_nothing_lost_among(store: RunStore, template: dict) -> None:
    listed = [r.run_id for r in store.list_runs()]
    assert [i for i in listed if i in template["texts"]] == template["ids"]
    for run_id, text in template["texts"].items():
        assert store.load_result(run_id).to_json() == text


# The Runs page over HTTP (Flask's test client): forged callback values and a damaged store
# give HTTP 200 with the page's alert, never a 500 or a blank list.
LIST_OUT = ["runs-list.children", "runs-pick.data"]
OPEN_OUT = ["runs-figure.figure", "runs-status.children", "runs-list.children", "runs-pick.data"]
JSON_OUT = ["runs-json-download.data", "runs-status.children"]
SESSION = "a1b2c3d4" * 4


@pytest.fixture(scope="module")
def page(template, tmp_path_factory):
    """The dashboard on a copy of the template store whose index is garbage at start."""
    from workbench.ui import create_app

    root = tmp_path_factory.mktemp("page") / "store"
    shutil.copytree(template["root"], root)
    for meta in (root / "runs").glob("*/meta.json"):  # the rebuilt index reads these
        body = json.loads(meta.read_text())
        meta.write_text(json.dumps({**body, "config": {"dashboard_session": SESSION}}))
    _garbage(root / "runs.sqlite")
    app = create_app(preload=[], store=str(root), jobs_folder=str(tmp_path_factory.mktemp("j")))
    return {"app": app, "client": app.server.test_client(), "root": root}


def _call(page, outputs, inputs, state, changed=None) -> dict:
    from workbench.ui.callback_client import post_callback

    answer = post_callback(page["app"], page["client"], outputs, inputs, state, changed=changed)
    return answer["response"]


def _listing(page, mine, session=SESSION) -> dict:
    inputs = {"runs-mine.checked": mine, "runs-refresh.n_clicks": 1}
    return _call(page, LIST_OUT, inputs, {"session-id.data": session})


def test_runs_page_shows_the_rebuilt_index_and_every_run(page, template):
    response = _listing(page, False)
    shown = json.dumps(response["runs-list"]["children"])
    assert "Run index rebuilt" in shown and "file is not a database" in shown
    assert [o["value"] for o in response["runs-pick"]["data"]] == template["ids"][::-1]
    opened = _open(page, template["ids"][0], False)
    assert opened["runs-status"]["children"]["props"]["id"] == "runs-opened"


def _open(page, run_id, mine, session=SESSION, button="runs-open") -> dict:
    clicks = {"runs-open.n_clicks": None, "runs-delete.n_clicks": None, f"{button}.n_clicks": 1}
    state = {"runs-pick.value": run_id, "runs-mine.checked": mine, "session-id.data": session}
    return _call(page, OPEN_OUT, clicks, state, changed=[f"{button}.n_clicks"])


@pytest.mark.parametrize(
    ("mine", "session", "message"),
    [
        ("false", SESSION, "the switch must be on or off"),
        (1, SESSION, "the switch must be on or off"),
        (True, {"$ne": None}, "malformed session id"),
        (True, "../../x", "malformed session id"),
    ],
    ids=["switch-string", "switch-int", "session-object", "session-path"],
)
def test_runs_page_list_answers_forged_values_with_its_alert(page, mine, session, message):
    response = _listing(page, mine, session)
    assert message in json.dumps(response["runs-list"]["children"])
    assert response["runs-pick"]["data"] == []


@pytest.mark.parametrize(
    ("run_id", "button", "message"),
    [
        (["x"], "runs-open", "choose one of the listed runs first"),
        ({"$gt": ""}, "runs-delete", "choose one of the listed runs first"),
        ("../../etc/passwd", "runs-open", "is not among the listed runs"),
        ("20000101-000000-deadbeef", "runs-delete", "is not among the listed runs"),
    ],
    ids=["id-list", "id-object-delete", "id-path", "unknown-id-delete"],
)
def test_runs_page_open_delete_answer_forged_run_ids_with_its_alert(
    page, template, run_id, button, message
):
    response = _open(page, run_id, True, button=button)
    assert message in json.dumps(response["runs-status"]["children"])
    assert [r.run_id for r in RunStore(page["root"]).list_runs()] == template["ids"]


def test_runs_page_names_a_corrupt_result_json(page, template):
    run_id = template["ids"][1]
    path = page["root"] / "runs" / run_id / "result.json"
    saved = path.read_bytes()
    try:
        path.write_bytes(b"{" + os.urandom(40))
        response = _open(page, run_id, True)
    finally:
        path.write_bytes(saved)
    assert f"cannot read {path}" in json.dumps(response["runs-status"]["children"])


def test_runs_page_json_export_answers_a_forged_id_with_its_alert(page):
    state = {"runs-pick.value": "..", "runs-mine.checked": True, "session-id.data": SESSION}
    response = _call(page, JSON_OUT, {"runs-json.n_clicks": 1}, state)
    assert "is not among the listed runs" in json.dumps(response["runs-status"]["children"])
    assert "runs-json-download" not in response


def test_runs_page_answers_a_store_path_that_is_a_file(page, tmp_path):
    from workbench.ui import state

    bad = _file(tmp_path / "not-a-store")
    state.configure(store=str(bad))
    try:
        response = _listing(page, True)
    finally:
        state.configure(store=str(page["root"]))
    assert f"store: {bad} is not a folder" in json.dumps(response["runs-list"]["children"])
