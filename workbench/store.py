"""Run store: SQLite (WAL) for run metadata and status, one Parquet file per result table.

Layout under the root (`WORKBENCH_STORE`, else the platform user-data dir):
`runs.sqlite`; `runs/<run_id>/` holds published runs (`<table>.parquet`, `result.json`,
`meta.json`); `staging/<run_id>/` holds writes in progress.

Atomic publish: `begin_run` inserts a 'running' row (with the writer's pid and host) and then
creates the staging folder; tables are written as `name.parquet.tmp`, fsynced and renamed;
`commit` fsyncs the folder, renames it into `runs/` and only then sets status 'complete'.
A run is visible only when its row is complete AND its folder is in `runs/`, so a writer
killed at any point leaves nothing visible. Deleting renames the folder back into `staging/`
before removing it and the row. `cleanup()` finishes what dead writers and deletes left.

Sharded runs (`begin_sharded_run`, used by `workbench.executors`): each shard's table is its own
`shards/<shard_id>.parquet`, written atomically as it finishes; `shards.json` lists the shard
ids the run needs and `commit` refuses while any is missing. A sharded run whose writer raised
is marked 'interrupted' (its staging folder is kept), and a later `begin_sharded_run` with the
same kind, model, config and shard ids takes it over, finished shards included; so does one
whose writer died ('running', dead pid), unless `cleanup()` removed it first.

Caveats:
- Liveness is `kill(pid, 0)` on the same host (zombies count as dead on Linux). A recycled pid
  makes a dead writer look alive; rows written on another host are never judged abandoned.
- A writer killed between the rename and the status update leaves its folder in `runs/`
  unpublished; `cleanup()` marks it abandoned and removes it.
- `synchronous=NORMAL` can lose the last status update on power loss (not on a crash), which
  then reads as an abandoned run. WAL needs a local filesystem, not a network share.
- One sqlite3 connection per process and thread; a `RunStore` may be shared across threads.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
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

from workbench.results import Result, frame_from_parquet, frame_to_parquet

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, model TEXT NOT NULL, config TEXT NOT NULL,
    status TEXT NOT NULL, pid INTEGER, host TEXT, created_at TEXT NOT NULL, completed_at TEXT
)"""
_INSERT = """INSERT INTO runs (run_id, kind, model, config, status, pid, host, created_at)
    VALUES (:run_id, :kind, :model, :config, :status, :pid, :host, :created_at)"""


class RunNotFound(KeyError, ValueError):
    """No published run (or no run at all) has this id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "run not found"


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


def validate_name(name: str, what: str = "name") -> str:
    """Return `name` if it is a safe file-name component (`[A-Za-z0-9_.-]+`, no leading dot)."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(f"invalid {what} {name!r}: use [A-Za-z0-9_.-], not starting with '.'")
    return name


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


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _writer_dead(row: sqlite3.Row) -> bool:
    """Whether a run's writer is known to be gone: only a same-host pid can be checked."""
    return row["host"] == socket.gethostname() and not _pid_alive(row["pid"])


def _pid_alive(pid: int | None) -> bool:
    """Whether process `pid` on this host still runs (unknown → assumed alive)."""
    if pid is None or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):  # a zombie has exited already
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


class RunStore:
    """The results store: runs of analyses, their config, tables and result JSON."""

    def __init__(self, root: str | Path | None = None) -> None:
        if root is None:
            env = os.environ.get("WORKBENCH_STORE")
            root = env or Path(platformdirs.user_data_dir("attention-workbench", False)) / "store"
        self.root = Path(root).expanduser()
        self.runs_dir = self.root / "runs"
        self.staging_dir = self.root / "staging"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._db() as db:
            db.execute(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        """This thread's (and process's) connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.root / "runs.sqlite", timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.row_factory = sqlite3.Row
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    def begin_run(self, *, kind: str, model: str, config: dict[str, Any]) -> RunWriter:
        """Start a run: a 'running' row, then an empty staging folder; returns its writer."""
        row = {"kind": kind, "model": model, "config": _config_text(config), "pid": os.getpid()}
        row.update(status="running", host=socket.gethostname(), created_at=_now())
        for _ in range(5):  # retry in the unlikely event of an id collision
            row["run_id"] = new_run_id()
            try:
                with self._db() as db:
                    db.execute(_INSERT, row)
            except sqlite3.IntegrityError:
                continue
            (self.staging_dir / row["run_id"]).mkdir()  # after the row commits: cleanup needs it
            return RunWriter(self, row["run_id"])
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
        rows = self._db().execute(
            "SELECT * FROM runs WHERE kind = ? AND model = ? AND config = ? AND status IN "
            "('interrupted', 'running') ORDER BY created_at DESC, run_id DESC",
            (kind, model, _config_text(config)),
        )
        for row in rows.fetchall():
            staged = self.staging_dir / row["run_id"] / "shards.json"
            resumable = row["status"] == "interrupted" or _writer_dead(row)
            if resumable and staged.is_file() and staged.read_bytes() == manifest:
                with self._db() as db:  # take it over unless another writer just did
                    taken = db.execute(
                        "UPDATE runs SET status = 'running', pid = ?, host = ? WHERE run_id = ? "
                        "AND status = ? AND pid IS ?",
                        (os.getpid(), socket.gethostname(), row["run_id"], row["status"],
                         row["pid"]),
                    ).rowcount  # fmt: skip
                if taken == 1:
                    return RunWriter(self, row["run_id"], resumable=True)
        writer = self.begin_run(kind=kind, model=model, config=config)
        writer.resumable = True
        (writer.folder / "shards").mkdir()
        writer._write_file("shards.json", lambda f: f.write(manifest))
        return writer

    def load_shards(self, run_id: str) -> dict[str, pd.DataFrame]:
        """Every shard table of a published sharded run, by shard id in sorted order."""
        folder = self._published(run_id) / "shards"
        return {p.stem: frame_from_parquet(str(p)) for p in sorted(folder.glob("*.parquet"))}

    def save(self, result: Result, *, kind: str, model: str, config: dict[str, Any]) -> str:
        """Store `result` (its JSON and every table) as a new published run; returns its id."""
        with self.begin_run(kind=kind, model=model, config=config) as run:
            run.write_result(result)
        return run.run_id

    def _set_status(self, run_id: str, status: str, *, completed: bool = False) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE runs SET status = ?, completed_at = ? WHERE run_id = ?",
                (status, _now() if completed else None, run_id),
            )

    def _rows(self, run_id: str | None = None) -> list[sqlite3.Row]:
        if run_id is not None:
            return self._db().execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchall()
        return self._db().execute("SELECT * FROM runs ORDER BY created_at, run_id").fetchall()

    def _info(self, row: sqlite3.Row) -> RunInfo:
        status, staged = row["status"], self.staging_dir / row["run_id"]
        folder = self.runs_dir / row["run_id"] if status == "complete" else staged
        if status == "running" and (_writer_dead(row) or not staged.is_dir()):
            status = "abandoned"
        completed = row["completed_at"]
        return RunInfo(
            row["run_id"], row["kind"], row["model"], json.loads(row["config"]), status,
            created_at=datetime.fromisoformat(row["created_at"]),
            completed_at=datetime.fromisoformat(completed) if completed else None,
            tables=sorted(p.name.removesuffix(".parquet") for p in folder.glob("*.parquet")),
        )  # fmt: skip

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
        """One stored table of a published run."""
        path = self._published(run_id) / f"{validate_name(name, 'table name')}.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"run {run_id!r} has no table {name!r}")
        return frame_from_parquet(str(path))

    def load_result(self, run_id: str) -> Result:
        """The result object of a published run (its class's module must be imported)."""
        path = self._published(run_id) / "result.json"
        if not path.is_file():
            raise FileNotFoundError(f"run {run_id!r} has no stored result object")
        return Result.from_json(path.read_text(encoding="utf-8"))

    def delete_run(self, run_id: str) -> None:
        """Remove a run: its folder (moved out of `runs/` first), then its row."""
        rows = self._rows(validate_name(run_id, "run id"))
        if not rows:
            raise RunNotFound(f"no run with id {run_id!r} in {self.root}")
        if rows[0]["status"] == "running" and not _writer_dead(rows[0]):
            raise ValueError(f"run {run_id!r} is still being written (pid {rows[0]['pid']})")
        self._remove_folders(run_id)
        self._delete_row(run_id)

    def _delete_row(self, run_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))

    def _remove_folders(self, run_id: str) -> None:
        staged, published = self.staging_dir / run_id, self.runs_dir / run_id
        if published.is_dir():
            shutil.rmtree(staged, ignore_errors=True)
            os.replace(published, staged)  # unpublish atomically before deleting files
        shutil.rmtree(staged, ignore_errors=True)

    def cleanup(self) -> list[str]:
        """Clear what dead writers and interrupted deletes left; returns the run ids touched."""
        touched = []
        entries = sorted(self.staging_dir.iterdir())  # before the rows: a row precedes its dir
        rows = {r["run_id"]: r for r in self._rows()}
        for entry in entries:
            row = rows.get(entry.name)
            if row is None or row["status"] in ("failed", "abandoned", "complete"):
                shutil.rmtree(entry, ignore_errors=True)  # orphan, leftover or half-deleted
                touched.append(entry.name)
        for run_id, row in rows.items():
            if row["status"] == "running" and _writer_dead(row):
                self._remove_folders(run_id)
                self._set_status(run_id, "abandoned")
                touched.append(run_id)
            elif row["status"] == "complete" and not (self.runs_dir / run_id).is_dir():
                self._delete_row(run_id)  # a delete that removed the folder but not the row
                touched.append(run_id)
        return sorted(set(touched))


class RunWriter:
    """Writes one run into staging; `commit()` publishes it. Use as a context manager.

    A `resumable` (sharded) writer is interrupted rather than aborted when its body raises."""

    def __init__(self, store: RunStore, run_id: str, *, resumable: bool = False) -> None:
        self.store, self.run_id = store, run_id
        self.folder = store.staging_dir / run_id
        self.done = False
        self.resumable = resumable

    def _write_file(self, name: str, write: Any) -> None:
        """Write `name` in staging via `name.tmp`: `write(file)`, fsync, rename."""
        if self.done:
            raise RuntimeError(f"run {self.run_id!r} is already committed or aborted")
        tmp = self.folder / f"{name}.tmp"
        with open(tmp, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, self.folder / name)

    def write_table(self, name: str, df: pd.DataFrame) -> None:
        """Store `df` as `<name>.parquet` (replacing a table of the same name)."""
        self._write_file(
            f"{validate_name(name, 'table name')}.parquet", lambda f: frame_to_parquet(df, f)
        )

    def write_result(self, result: Result) -> None:
        """Store the result's JSON as `result.json` and every table from `result.tables()`."""
        if not isinstance(result, Result):
            raise TypeError(f"expected a Result, got {type(result).__qualname__}")
        text = result.to_json().encode("utf-8")
        self._write_file("result.json", lambda f: f.write(text))
        for name, df in result.tables().items():
            self.write_table(name, df)

    def write_shard(self, shard_id: str, df: pd.DataFrame) -> None:
        """Store one finished shard's table as `shards/<shard_id>.parquet` (atomically)."""
        name = f"shards/{validate_name(shard_id, 'shard id')}.parquet"
        self._write_file(name, lambda f: frame_to_parquet(df, f))

    def finished_shards(self) -> set[str]:
        """Ids of the shards already written to this run."""
        return {p.stem for p in (self.folder / "shards").glob("*.parquet")}

    def read_shard(self, shard_id: str) -> pd.DataFrame:
        """A shard table written to this run (before or after a resume)."""
        path = self.folder / "shards" / f"{validate_name(shard_id, 'shard id')}.parquet"
        return frame_from_parquet(str(path))

    def missing_shards(self) -> list[str]:
        """Shard ids from `shards.json` not written yet (empty for an unsharded run)."""
        manifest = self.folder / "shards.json"
        if not manifest.is_file():
            return []
        finished = self.finished_shards()
        return [s for s in json.loads(manifest.read_text()) if s not in finished]

    def commit(self) -> None:
        """Publish: fsync staging, rename it into `runs/`, then mark the row complete.

        A sharded run is refused (`RuntimeError`) while any of its shards is missing."""
        missing = self.missing_shards()
        if missing:
            raise RuntimeError(f"run {self.run_id!r}: {len(missing)} shard(s) missing, e.g. "
                               f"{missing[0]!r}; a run is complete only when all shards are")  # fmt: skip
        if (self.folder / "shards").is_dir():
            _fsync_dir(self.folder / "shards")
        info = self.store.get_run(self.run_id)
        meta = {"run_id": self.run_id, "kind": info.kind, "model": info.model,
                "config": info.config, "created_at": info.created_at.isoformat(),
                "tables": info.tables}  # fmt: skip
        self._write_file("meta.json", lambda f: f.write(json.dumps(meta, indent=2).encode()))
        _fsync_dir(self.folder)
        os.replace(self.folder, self.store.runs_dir / self.run_id)
        self.done = True
        _fsync_dir(self.store.runs_dir)
        self.store._set_status(self.run_id, "complete", completed=True)

    def abort(self) -> None:
        """Give the run up: mark it failed and remove its staging folder."""
        if self.done:
            return
        self.done = True
        shutil.rmtree(self.folder, ignore_errors=True)
        self.store._set_status(self.run_id, "failed")

    def interrupt(self) -> None:
        """Stop writing but keep staging, marked 'interrupted', for `begin_sharded_run` to resume."""
        if self.done:
            return
        self.done = True
        self.store._set_status(self.run_id, "interrupted")

    def _give_up(self) -> None:
        self.interrupt() if self.resumable else self.abort()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        """Commit on a clean exit (unless already done); on an exception abort (a resumable
        writer is interrupted instead)."""
        if exc_type is not None:
            self._give_up()
        elif not self.done:
            try:
                self.commit()
            except BaseException:
                self._give_up()
                raise
