"""Run store upkeep: detect a damaged index, rebuild it from the runs' own files, clean staging.

The index (`runs.sqlite`) is a cache: every published run carries its `meta.json`, and every
run being written carries `writer.json` (its meta plus the writer's pid and host) in its staging
folder. `heal` checks the index and rebuilds what is missing or unreadable from those files:

- unreadable (not an SQLite file, corrupt pages, not a regular file, a `runs` table without the
  columns the store needs): the file (with its `-wal`/`-shm`) is moved aside as
  `runs.sqlite.damaged-<UTC time>`, never deleted; a fresh index gets the published runs from
  their `meta.json`, the runs in staging from `writer.json`, and every other row that can still
  be read from the damaged copy (failed/abandoned history);
- readable but incomplete (zero bytes, a dropped table, rows lost): missing rows are inserted;
  rows with malformed values are rewritten from the run's files, or dropped when no file
  describes them (after a copy of the index is saved aside).

`clean` removes abandoned staging folders once they are older than a grace period (a live
writer's folder is kept, judged by its pid; resumable sharded runs are kept unless asked).

Caveats: repairs are serialised by `flock` on `runs.lock` (POSIX only; elsewhere two processes
repairing at once may each move a copy aside, losing nothing). A folder in `runs/` whose
`meta.json` cannot be read is left in place, unlisted, and named in the report.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import sqlite3
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_GRACE_S = 3600.0
STATUSES = frozenset({"running", "complete", "failed", "abandoned", "interrupted"})
COLUMNS = (
    "run_id",
    "kind",
    "model",
    "config",
    "status",
    "pid",
    "host",
    "created_at",
    "completed_at",
)
WRITER_FILE = "writer.json"
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_DAMAGE_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB (primary codes)
_DAMAGE_TEXT = ("no such table", "no such column", "table runs has no column")


@dataclass(frozen=True)
class RepairReport:
    """What a check or repair of the index found and did.

    `problem`: why the index file was unusable (None when it could be read); `moved_to`: where
    that file now is; `indexed`: run ids added back (or rewritten) from their files; `dropped`:
    malformed rows no file describes (kept in the saved copy); `skipped`: one line per run
    folder that could not be indexed, naming the file and the reason; `runs`: published runs
    listed afterwards."""

    problem: str | None = None
    moved_to: Path | None = None
    indexed: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    runs: int = 0
    backup: Path | None = field(default=None, repr=False)

    @property
    def changed(self) -> bool:
        """Whether the repair found a problem, re-indexed or dropped anything."""
        return bool(self.problem or self.indexed or self.dropped)

    @property
    def message(self) -> str:
        """One line for the user."""
        if self.problem:
            text = f"run index was damaged ({self.problem}); moved aside to {self.moved_to}"
            text += f" and rebuilt: {self.runs} published run(s) listed"
        elif self.indexed or self.dropped:
            text = f"run index was incomplete: re-indexed {len(self.indexed)} run(s) from files"
            if self.dropped:
                text += f", dropped {len(self.dropped)} malformed row(s)"
            if self.backup:
                text += f" (old index copied to {self.backup})"
        else:
            text = f"run index is sound: {self.runs} published run(s) listed"
        if self.skipped:
            text += f"; {len(self.skipped)} folder(s) skipped, e.g. {self.skipped[0]}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (paths as strings)."""
        return {
            "problem": self.problem,
            "moved_to": str(self.moved_to) if self.moved_to else None,
            "indexed": list(self.indexed),
            "dropped": list(self.dropped),
            "skipped": list(self.skipped),
            "runs": self.runs,
            "message": self.message,
        }


def pid_alive(pid: int | None) -> bool:
    """Whether process `pid` on this host still runs (unknown → assumed alive)."""
    if pid is None or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    with contextlib.suppress(OSError, IndexError):  # a zombie has exited already
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def writer_dead(row: Mapping[str, Any] | sqlite3.Row) -> bool:
    """Whether a run's writer is known to be gone: only a same-host pid can be checked."""
    return row["host"] == socket.gethostname() and not pid_alive(row["pid"])


def is_damage(exc: sqlite3.Error) -> bool:
    """Whether an SQLite error means the index itself is damaged (not busy, locked or denied)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _DAMAGE_CODES:
        return True
    return str(exc).startswith(_DAMAGE_TEXT)


def _iso(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a time string")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="microseconds")


def _row_from(body: Any, run_id: str, status: str, *, completed_at: str | None) -> dict:
    """An index row from a `meta.json`/`writer.json` body (ValueError when malformed)."""
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    if body.get("run_id") != run_id:
        raise ValueError(f"run_id {body.get('run_id')!r} does not match its folder")
    for key in ("kind", "model"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise ValueError(f"{key} is missing or not a string")
    if not isinstance(body.get("config"), dict):
        raise ValueError("config is missing or not an object")
    pid = body.get("pid")
    if pid is not None and (not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0):
        raise ValueError("pid is not a process id")
    return {
        "run_id": run_id,
        "kind": body["kind"],
        "model": body["model"],
        "config": json.dumps(body["config"], sort_keys=True, allow_nan=False),
        "status": status,
        "pid": pid,
        "host": body.get("host") if isinstance(body.get("host"), str) else None,
        "created_at": _iso(body.get("created_at"), "created_at"),
        "completed_at": completed_at,
    }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ValueError(f"{path}: missing") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: unreadable ({exc})") from exc


def read_meta(folder: Path) -> dict[str, Any]:
    """The index row a published run's `meta.json` describes (ValueError naming the file)."""
    path = folder / "meta.json"
    body = _read_json(path)
    try:
        completed = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        return _row_from(body, folder.name, "complete", completed_at=completed.isoformat())
    except (ValueError, TypeError, OSError) as exc:
        raise ValueError(f"{path}: malformed ({exc})") from exc


def read_writer(folder: Path) -> dict[str, Any] | None:
    """The 'running' (or 'interrupted') row a staging folder's `writer.json` describes, or
    None."""
    try:
        body = _read_json(folder / WRITER_FILE)
        status = "interrupted" if body.get("status") == "interrupted" else "running"
        return _row_from(body, folder.name, status, completed_at=None)
    except (ValueError, TypeError, AttributeError):
        return None


def row_problem(row: Mapping[str, Any] | sqlite3.Row) -> str | None:
    """Why an index row cannot be turned into a `RunInfo`, or None."""
    try:
        if not isinstance(row["run_id"], str) or not _NAME_RE.fullmatch(row["run_id"]):
            return "run_id is not a run id"
        if row["status"] not in STATUSES:
            return f"unknown status {row['status']!r}"
        if not isinstance(row["kind"], str) or not isinstance(row["model"], str):
            return "kind or model is not text"
        if not isinstance(json.loads(row["config"]), dict):
            return "config is not a JSON object"
        _iso(row["created_at"], "created_at")
        if row["completed_at"] is not None:
            _iso(row["completed_at"], "completed_at")
        if row["pid"] is not None and not isinstance(row["pid"], int):
            return "pid is not a number"
    except (ValueError, TypeError, RecursionError) as exc:
        return str(exc)
    return None


def index_problem(store: Any) -> str | None:
    """Why the index file cannot be used as it is (None when it can); other SQLite errors
    (locked, permission denied) raise ValueError naming the file."""
    path: Path = store.index_path
    if path.is_symlink() or (path.exists() and not path.is_file()):
        return f"{path.name} is not a regular file"
    try:
        db = store._db()
        check = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
        if check != ["ok"]:
            return f"integrity check failed: {check[0]}"
        columns = {r[1] for r in db.execute("PRAGMA table_info(runs)").fetchall()}
        missing = [c for c in COLUMNS if c not in columns]
        if missing:
            return f"table runs lacks column(s) {', '.join(missing)}"
    except sqlite3.Error as exc:
        store.close()
        if is_damage(exc):
            return str(exc)
        raise ValueError(f"store: cannot open the run index {path}: {exc}") from exc
    return None


@contextlib.contextmanager
def repair_lock(root: Path) -> Iterator[None]:
    """Serialise repairs across processes (POSIX `flock`; a no-op elsewhere or read-only)."""
    try:
        import fcntl

        handle = open(root / "runs.lock", "a+b")  # noqa: SIM115 - held across the yield
    except (ImportError, OSError):
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest, n = path.with_name(f"{path.name}.damaged-{stamp}"), 1
    while dest.exists() or dest.is_symlink():
        dest, n = path.with_name(f"{path.name}.damaged-{stamp}-{n}"), n + 1
    return dest


def move_aside(path: Path) -> Path:
    """Rename the index (and its `-wal`/`-shm`) to `<name>.damaged-<UTC time>`; returns it."""
    dest = _aside(path)
    os.replace(path, dest)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}{suffix}", f"{dest}{suffix}")
    return dest


def salvage(path: Path) -> list[dict[str, Any]]:
    """Every well-formed row still readable from a damaged index (none when it cannot be read)."""
    if not path.is_file():
        return []
    rows: list[dict[str, Any]] = []
    try:
        conn = sqlite3.connect(path, timeout=5)
        try:
            conn.row_factory = sqlite3.Row
            for row in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM runs"):  # noqa: S608
                if row_problem(row) is None:
                    rows.append(dict(row))
        finally:
            conn.close()
    except sqlite3.Error:
        return rows
    return rows


def _folders(parent: Path) -> list[Path]:
    return sorted(p for p in parent.iterdir() if _NAME_RE.fullmatch(p.name))


def heal(store: Any, *, attempts: int = 5) -> RepairReport:
    """Check the index and rebuild whatever is unreadable or missing (see the module doc).

    An index damaged again while this runs (by something outside the store) is moved aside
    again, up to `attempts` times; then ValueError."""
    problem, moved, kept = None, None, []
    with repair_lock(store.root):
        for _ in range(attempts):
            store.close()
            found = index_problem(store)
            if found is None:
                try:
                    report = _reindex(store, store._db(), kept)
                    break
                except sqlite3.Error as exc:
                    if not is_damage(exc):
                        raise ValueError(f"store: run index {store.index_path}: {exc}") from exc
                    found = str(exc)
                    store.close()
            problem = problem or found
            if store.index_path.exists() or store.index_path.is_symlink():
                aside = move_aside(store.index_path)
                moved = moved or aside
                kept += salvage(aside)
        else:
            raise ValueError(f"store: run index {store.index_path} keeps being damaged ({found})")
    if problem:
        report = RepairReport(
            problem,
            moved,
            report.indexed,
            report.dropped,
            report.skipped,
            report.runs,
            report.backup,
        )
    return report


def _reindex(store: Any, db: sqlite3.Connection, kept: list[dict[str, Any]]) -> RepairReport:
    published = _folders(store.runs_dir)  # folders before rows: a row precedes its folder
    staged = _folders(store.staging_dir)
    rows = {r["run_id"]: r for r in db.execute("SELECT * FROM runs").fetchall()}
    bad = {run_id for run_id, row in rows.items() if row_problem(row)}
    new: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    for folder in published:
        if folder.name in rows and folder.name not in bad:
            continue
        if folder.is_symlink() or not folder.is_dir():
            skipped.append(f"{folder}: not a run folder")
            continue
        try:
            new[folder.name] = read_meta(folder)
        except ValueError as exc:
            if folder.is_dir():  # else deleted meanwhile
                skipped.append(str(exc))
    for row in kept:
        if row["run_id"] not in rows and row["run_id"] not in new:
            new[row["run_id"]] = row
    for folder in staged:
        if (folder.name not in rows or folder.name in bad) and folder.name not in new:
            found = read_writer(folder)
            if found is not None:
                new[folder.name] = found
    dropped = sorted(bad - set(new))
    backup = None
    if bad:
        backup = _aside(store.index_path)
        with contextlib.closing(sqlite3.connect(backup)) as copy:
            db.backup(copy)
    indexed = []
    names = ", ".join(COLUMNS)
    marks = ", ".join(f":{c}" for c in COLUMNS)
    with db:
        for run_id in dropped:
            db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        for run_id, row in sorted(new.items()):
            verb = "INSERT OR REPLACE" if run_id in bad else "INSERT OR IGNORE"
            if db.execute(f"{verb} INTO runs ({names}) VALUES ({marks})", row).rowcount:  # noqa: S608
                indexed.append(run_id)
    listed = db.execute("SELECT run_id FROM runs WHERE status = 'complete'").fetchall()
    count = sum((store.runs_dir / r[0]).is_dir() for r in listed)
    return RepairReport(None, None, tuple(indexed), tuple(dropped), tuple(skipped), count, backup)


def _last_change(path: Path) -> float:
    """The newest mtime of `path` and everything under it (now, if it vanished)."""
    try:
        latest = path.lstat().st_mtime
    except OSError:
        return time.time()
    if path.is_dir() and not path.is_symlink():
        for child in path.rglob("*"):
            with contextlib.suppress(OSError):
                latest = max(latest, child.lstat().st_mtime)
    return latest


def _remove(entry: Path) -> None:
    if entry.is_symlink() or not entry.is_dir():
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()
    else:
        shutil.rmtree(entry, ignore_errors=True)


def clean(store: Any, *, grace: float, resumable: bool) -> list[str]:
    """Remove abandoned staging (see `RunStore.clean`); returns the run ids touched."""
    if not isinstance(grace, int | float) or isinstance(grace, bool) or not grace >= 0:
        raise ValueError(f"grace: expected a number of seconds >= 0, got {grace!r}")
    now, touched, kept = time.time(), [], set()
    entries = sorted(store.staging_dir.iterdir())  # before the rows: a row precedes its dir
    rows = {r["run_id"]: r for r in store._rows()}

    def old(path: Path) -> bool:
        return now - _last_change(path) >= grace

    for entry in entries:
        row = rows.get(entry.name)
        if not old(entry):
            kept.add(entry.name)
            continue
        if row is None:
            found = None if entry.is_symlink() else read_writer(entry)
            if found is not None and not writer_dead(found):
                continue
            _remove(entry)  # orphan
        elif row["status"] in ("failed", "abandoned", "complete"):
            _remove(entry)  # leftover or half-deleted
        elif row["status"] == "running" and not writer_dead(row):
            kept.add(entry.name)
            continue
        elif not resumable and (
            row["status"] == "interrupted" or (entry / "shards.json").is_file()
        ):
            kept.add(entry.name)  # a sharded run a rerun can resume
            continue
        else:
            store._remove_folders(entry.name)
            store._set_status(entry.name, "abandoned")
        touched.append(entry.name)
    for run_id, row in rows.items():
        published = store.runs_dir / run_id
        if run_id in kept:
            continue
        if row["status"] == "running" and writer_dead(row) and run_id not in touched:
            if published.is_dir() and not old(published):
                continue
            store._remove_folders(run_id)  # killed between the rename and the status update
            store._set_status(run_id, "abandoned")
            touched.append(run_id)
        elif row["status"] == "complete" and not published.is_dir():
            store._delete_row(run_id)  # a delete that removed the folder but not the row
            touched.append(run_id)
    return sorted(set(touched))
