"""Run store: SQLite (WAL) for run metadata and status, one Parquet file per result table.

Layout under the root (`WORKBENCH_STORE`, else the platform user-data dir):
`runs.sqlite`; `runs/<run_id>/` holds published runs (`<table>.parquet`, `result.json`,
`meta.json`); `staging/<run_id>/` holds writes in progress. Modules: this one (the store and
its index), `workbench.store_writer` (`RunWriter`, re-exported here), `workbench.store_repair`
(index checks and rebuilds, staging clean-up).

Kinds: `save(result)` files a run under `result.kind` (the result type's one canonical kind,
`workbench.results`); runs stored under an older kind name are listed under the canonical one.

Atomic publish: `begin_run` inserts a 'running' row (with the writer's pid and host) and then
creates the staging folder; tables are written as `name.parquet.tmp`, fsynced and renamed;
`commit` fsyncs the folder, renames it into `runs/` and only then sets status 'complete'.
A run is visible only when its row is complete AND its folder is in `runs/`, so a writer
killed at any point leaves nothing visible. Deleting renames the folder back into `staging/`
before removing it and the row. `clean()` finishes what dead writers and deletes left.

Sharded runs (`begin_sharded_run`, used by `workbench.executors`): each shard's table is its own
`shards/<shard_id>.parquet`, written atomically as it finishes; `shards.json` lists the shard
ids the run needs and `commit` refuses while any is missing. A sharded run whose writer raised
is marked 'interrupted' (its staging folder is kept), and a later `begin_sharded_run` with the
same kind, model, config and shard ids takes it over, finished shards included; so does one
whose writer died ('running', dead pid); `clean` keeps both unless asked (`resumable=True`).

The index is a cache of the runs' own files (`meta.json` in every published run, `writer.json`
with the writer's pid in every staging folder). Opening a store checks it: an unreadable,
corrupt or wrongly shaped `runs.sqlite` is moved aside (`runs.sqlite.damaged-<time>`) and rebuilt,
and published runs missing from it are re-indexed (see `workbench.store_repair`); `repaired`
then says what happened. A damaged index met later, mid-query, is healed the same way, and a
connection whose index file was replaced reopens it. Opening also removes abandoned staging
unchanged for an hour (`clean`). A corrupt `result.json` or table raises `ValueError` naming it.

Caveats:
- Liveness is `kill(pid, 0)` on the same host (zombies count as dead on Linux). A recycled pid
  makes a dead writer look alive; rows written on another host are never judged abandoned.
- A writer killed between the rename and the status update leaves its folder in `runs/`
  unpublished; `clean()` marks it abandoned and removes it (a rebuild of a damaged index
  publishes it instead: its `meta.json` is already complete).
- Every open takes `runs.lock`, runs `PRAGMA quick_check` and lists `runs/` and `staging/`:
  cheap for thousands of runs, not free for millions.
- `synchronous=NORMAL` can lose the last status update on power loss (not on a crash), which
  then reads as an abandoned run. WAL needs a local filesystem, not a network share.
- One sqlite3 connection per process and thread; a `RunStore` may be shared across threads.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import platformdirs

from workbench import store_repair
from workbench.results import KIND_ALIASES, Result, canonical_kind, frame_from_parquet
from workbench.store_repair import DEFAULT_GRACE_S, RepairReport, writer_dead
from workbench.store_writer import RunWriter, validate_name

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, model TEXT NOT NULL, config TEXT NOT NULL,
    status TEXT NOT NULL, pid INTEGER, host TEXT, created_at TEXT NOT NULL, completed_at TEXT
)"""
_INSERT = """INSERT INTO runs (run_id, kind, model, config, status, pid, host, created_at)
    VALUES (:run_id, :kind, :model, :config, :status, :pid, :host, :created_at)"""
_UPSERT = """INSERT INTO runs (run_id, kind, model, config, status, pid, host, created_at,
    completed_at) VALUES (:run_id, :kind, :model, :config, :status, :pid, :host, :created_at,
    :completed_at) ON CONFLICT (run_id) DO UPDATE SET status = excluded.status,
    completed_at = excluded.completed_at"""


class RunNotFound(KeyError, ValueError):
    """No published run (or no run at all) has this id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "run not found"


class MissingRunFile(FileNotFoundError, ValueError):
    """A published run lacks a file it was asked for (a table, its result object)."""


@dataclass(frozen=True)
class RunInfo:
    """One run as the store sees it; `status` is running/complete/failed/abandoned (or
    interrupted: a sharded run that can be resumed)."""

    run_id: str
    kind: str
    model: str
    config: dict[str, Any]
    status: str
    created_at: datetime
    completed_at: datetime | None
    tables: list[str]


def new_run_id() -> str:
    """A sortable unique id: UTC `YYYYmmdd-HHMMSS-<8 hex>`."""
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


def _config_text(config: dict[str, Any]) -> str:
    try:
        return json.dumps(dict(config), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config is not JSON-serialisable: {exc}") from exc


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _folder(path: Path) -> Path:
    """`path` as an existing folder (created if missing); ValueError when it cannot be one."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"store: {path} is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"store: cannot create folder {path}: {exc.strerror or exc}") from exc
    return path


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


class RunStore:
    """The results store: runs of analyses, their config, tables and result JSON.

    `repaired` is None, or one line saying how a damaged or incomplete index was rebuilt (on
    opening or later); `cleaned` lists the abandoned staging folders removed on opening."""

    def __init__(self, root: str | Path | None = None) -> None:
        if root is None:
            env = os.environ.get("WORKBENCH_STORE")
            root = env or Path(platformdirs.user_data_dir("attention-workbench", False)) / "store"
        self.root = _folder(Path(root).expanduser())
        self.runs_dir = _folder(self.root / "runs")
        self.staging_dir = _folder(self.root / "staging")
        self.index_path = self.root / "runs.sqlite"
        self._local = threading.local()
        self.repaired: str | None = None
        self._note(store_repair.heal(self))
        self.cleaned: list[str] = []
        with contextlib.suppress(OSError, ValueError):  # best effort: a read-only store still opens
            self.cleaned = self.clean()

    def _note(self, report: RepairReport) -> RepairReport:
        if report.changed:
            self.repaired = report.message
        return report

    def _db(self) -> sqlite3.Connection:
        """This thread's (and process's) connection, opened on first use and reopened when the
        index file was replaced (a repair in another process moved it aside)."""
        conn = getattr(self._local, "conn", None)
        mine = conn is not None and self._local.pid == os.getpid()
        if mine and self._local.file == _file_id(self.index_path):
            return conn
        if mine:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local.conn = None
        before = _file_id(self.index_path)  # if it is replaced from here on, reopen next time
        conn = self._connect()
        conn.row_factory = sqlite3.Row
        self._local.conn, self._local.pid = conn, os.getpid()
        self._local.file = before or _file_id(self.index_path)
        return conn

    def _connect(self) -> sqlite3.Connection:
        """A new connection in WAL mode with the schema in place. Switching a fresh index to
        WAL can answer 'locked' at once when another process does the same: retried."""
        for attempt in range(100):
            conn = sqlite3.connect(self.index_path, timeout=30)
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
                return conn
            except sqlite3.OperationalError as exc:
                conn.close()
                if attempt == 99 or not str(exc).startswith(
                    ("database is locked", "database is busy")
                ):
                    raise
                time.sleep(0.02)
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")

    def _sql(self, sql: str, params: Any = ()) -> tuple[list[sqlite3.Row], int]:
        """Run one statement in its own transaction: (rows, rowcount). A damaged index is healed
        and the statement retried (three times at most); other SQLite errors become ValueError
        naming the index."""
        for attempt in range(4):
            try:
                db = self._db()
                with db:
                    cursor = db.execute(sql, params)
                    return cursor.fetchall(), cursor.rowcount
            except sqlite3.IntegrityError:
                raise
            except sqlite3.Error as exc:
                if attempt < 3 and store_repair.is_damage(exc):
                    self._note(store_repair.heal(self))
                    continue
                raise ValueError(f"store: run index {self.index_path}: {exc}") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    def repair(self) -> RepairReport:
        """Check the index and rebuild it from the runs' `meta.json`/`writer.json` files: an
        unreadable one is moved aside and replaced, missing or malformed rows are restored.
        Returns what was found (published runs listed, run ids re-indexed, folders skipped)."""
        return self._note(store_repair.heal(self))

    def clean(self, grace: float = DEFAULT_GRACE_S, *, resumable: bool = False) -> list[str]:
        """Remove abandoned staging: folders unchanged for `grace` seconds whose writer is gone
        (dead pid on this host, or failed/aborted/deleted runs, or no record at all). A live
        writer's folder is kept whatever its age; so are resumable sharded runs (interrupted,
        or 'running' with a dead writer) unless `resumable`. Returns the run ids touched."""
        return store_repair.clean(self, grace=grace, resumable=resumable)

    def cleanup(self) -> list[str]:
        """`clean(grace=0)`: everything abandoned now (resumable sharded runs kept)."""
        return self.clean(0)

    def begin_run(self, *, kind: str, model: str, config: dict[str, Any]) -> RunWriter:
        """Start a run: a 'running' row, then a staging folder holding `writer.json`; returns
        its writer. `kind` is stored canonical (`workbench.results.canonical_kind`)."""
        row = {
            "kind": canonical_kind(kind),
            "model": model,
            "config": _config_text(config),
            "pid": os.getpid(),
        }
        row.update(status="running", host=socket.gethostname(), created_at=_now())
        for _ in range(5):  # retry in the unlikely event of an id collision
            row["run_id"] = new_run_id()
            try:
                self._sql(_INSERT, row)
            except sqlite3.IntegrityError:
                continue
            (self.staging_dir / row["run_id"]).mkdir()  # after the row commits: clean needs it
            return RunWriter(self, dict(row))
        raise RuntimeError("could not allocate a unique run id")

    def begin_sharded_run(
        self, *, kind: str, model: str, config: dict[str, Any], shard_ids: list[str]
    ) -> RunWriter:
        """Start a run written shard by shard, or resume an interrupted one with the same kind,
        model, config and shard ids (its finished shards are kept); returns its writer."""
        ids = [validate_name(s, "shard id") for s in shard_ids]
        if not ids or len(set(ids)) != len(ids):
            raise ValueError("shard_ids: expected a non-empty list of distinct ids")
        manifest = json.dumps(ids).encode()
        kinds = [canonical_kind(kind)]
        kinds += [old for old, new in KIND_ALIASES.items() if new == kinds[0]]
        rows, _ = self._sql(
            f"SELECT * FROM runs WHERE kind IN ({', '.join('?' * len(kinds))}) AND model = ? "
            "AND config = ? AND status IN ('interrupted', 'running') "
            "ORDER BY created_at DESC, run_id DESC",
            (*kinds, model, _config_text(config)),
        )
        for row in rows:
            staged = self.staging_dir / row["run_id"] / "shards.json"
            resumable = row["status"] == "interrupted" or writer_dead(row)
            if resumable and staged.is_file() and staged.read_bytes() == manifest:
                _, taken = self._sql(  # take it over unless another writer just did
                    "UPDATE runs SET status = 'running', pid = ?, host = ? WHERE run_id = ? "
                    "AND status = ? AND pid IS ?",
                    (os.getpid(), socket.gethostname(), row["run_id"], row["status"], row["pid"]),
                )
                if taken == 1:
                    meta = {**dict(row), "pid": os.getpid(), "host": socket.gethostname()}
                    return RunWriter(self, meta, resumable=True)
        writer = self.begin_run(kind=kind, model=model, config=config)
        writer.resumable = True
        (writer.folder / "shards").mkdir()
        writer._write_file("shards.json", lambda f: f.write(manifest))
        return writer

    def load_shards(self, run_id: str) -> dict[str, pd.DataFrame]:
        """Every shard table of a published sharded run, by shard id in sorted order."""
        folder = self._published(run_id) / "shards"
        return {p.stem: _read_table(p) for p in sorted(folder.glob("*.parquet"))}

    def save(
        self,
        result: Result,
        *,
        kind: str | None = None,
        model: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> str:
        """Store `result` (its JSON and every table) as a new published run; returns its id.

        kind: defaults to `result.kind` (pass it only for a result class without one).
        model: defaults to `result.model_name`. config: defaults to `result.config` if the
        result has a dict `config`, else `{}`.
        """
        kind = kind or type(result).kind
        if not kind:
            raise ValueError(f"kind: {type(result).__qualname__} has no kind; pass kind=")
        if model is None:
            model = getattr(result, "model_name", None)
            if not isinstance(model, str):
                raise ValueError(
                    f"model: {type(result).__qualname__} has no model_name; pass model="
                )
        if config is None:
            config = getattr(result, "config", None)
            config = config if isinstance(config, dict) else {}
        with self.begin_run(kind=kind, model=model, config=config) as run:
            run.write_result(result)
        return run.run_id

    def _set_status(
        self, run_id: str, status: str, *, completed: bool = False, row: dict | None = None
    ) -> None:
        """Set a run's status; with its `row`, insert it if a repair lost it meanwhile."""
        values = {"run_id": run_id, "status": status, "completed_at": _now() if completed else None}
        if row is None:
            self._sql(
                "UPDATE runs SET status = :status, completed_at = :completed_at "
                "WHERE run_id = :run_id",
                values,
            )
        else:
            self._sql(_UPSERT, {**row, **values})

    def _rows(self, run_id: str | None = None) -> list[sqlite3.Row]:
        """Index rows (one run's, or all); malformed rows are healed from the runs' files."""
        for attempt in (0, 1):
            if run_id is not None:
                rows, _ = self._sql("SELECT * FROM runs WHERE run_id = ?", (run_id,))
            else:
                rows, _ = self._sql("SELECT * FROM runs ORDER BY created_at, run_id")
            bad = next((r for r in rows if store_repair.row_problem(r)), None)
            if bad is None:
                return rows
            if attempt == 0:
                self._note(store_repair.heal(self))
        problem = store_repair.row_problem(bad)
        raise ValueError(f"store: run index {self.index_path}: row {bad['run_id']!r}: {problem}")

    def _info(self, row: sqlite3.Row) -> RunInfo:
        status, staged = row["status"], self.staging_dir / row["run_id"]
        folder = self.runs_dir / row["run_id"] if status == "complete" else staged
        if status == "running" and (writer_dead(row) or not staged.is_dir()):
            status = "abandoned"
        completed = row["completed_at"]
        return RunInfo(
            row["run_id"],
            canonical_kind(row["kind"]),
            row["model"],
            json.loads(row["config"]),
            status,
            created_at=datetime.fromisoformat(row["created_at"]),
            completed_at=datetime.fromisoformat(completed) if completed else None,
            tables=sorted(p.name.removesuffix(".parquet") for p in folder.glob("*.parquet")),
        )

    def _visible(self, row: sqlite3.Row) -> bool:
        return row["status"] == "complete" and (self.runs_dir / row["run_id"]).is_dir()

    def list_runs(self, *, include_incomplete: bool = False) -> list[RunInfo]:
        """Published runs, oldest first; with `include_incomplete`, every row in the index."""
        return [self._info(r) for r in self._rows() if include_incomplete or self._visible(r)]

    def get_run(self, run_id: str) -> RunInfo:
        """The run with this id, whatever its status (`RunNotFound` if there is no row)."""
        rows = self._rows(validate_name(run_id, "run id"))
        if not rows:
            raise RunNotFound(f"no run with id {run_id!r} in {self.root}")
        return self._info(rows[0])

    def _published(self, run_id: str) -> Path:
        rows = self._rows(validate_name(run_id, "run id"))
        if not rows or not self._visible(rows[0]):
            raise RunNotFound(f"no published run with id {run_id!r} in {self.root}")
        return self.runs_dir / run_id

    def load_table(self, run_id: str, name: str) -> pd.DataFrame:
        """One stored table of a published run (ValueError naming the file if it is corrupt)."""
        path = self._published(run_id) / f"{validate_name(name, 'table name')}.parquet"
        if not path.is_file():
            raise MissingRunFile(f"run {run_id!r} has no table {name!r}")
        return _read_table(path)

    def load_result(self, run_id: str) -> Result:
        """The result object of a published run (its class's module must be imported);
        ValueError naming `result.json` if it cannot be read back."""
        path = self._published(run_id) / "result.json"
        if not path.is_file():
            raise MissingRunFile(f"run {run_id!r} has no stored result object")
        try:
            return Result.from_json(path.read_bytes())
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from exc

    def delete_run(self, run_id: str) -> None:
        """Remove a run: its folder (moved out of `runs/` first), then its row."""
        rows = self._rows(validate_name(run_id, "run id"))
        if not rows:
            raise RunNotFound(f"no run with id {run_id!r} in {self.root}")
        if rows[0]["status"] == "running" and not writer_dead(rows[0]):
            raise ValueError(f"run {run_id!r} is still being written (pid {rows[0]['pid']})")
        self._remove_folders(run_id)
        self._delete_row(run_id)

    def _delete_row(self, run_id: str) -> None:
        self._sql("DELETE FROM runs WHERE run_id = ?", (run_id,))

    def _remove_folders(self, run_id: str) -> None:
        staged, published = self.staging_dir / run_id, self.runs_dir / run_id
        if published.is_dir():
            shutil.rmtree(staged, ignore_errors=True)
            os.replace(published, staged)  # unpublish atomically before deleting files
        shutil.rmtree(staged, ignore_errors=True)


def _read_table(path: Path) -> pd.DataFrame:
    """A stored Parquet table; ValueError naming the file when it cannot be read."""
    import pyarrow as pa

    try:
        return frame_from_parquet(str(path))
    except (ValueError, OSError, TypeError, KeyError, pa.ArrowException) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc


__all__ = [
    "MissingRunFile",
    "RepairReport",
    "RunInfo",
    "RunNotFound",
    "RunStore",
    "RunWriter",
    "new_run_id",
    "validate_name",
]
