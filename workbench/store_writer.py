"""`RunWriter`: writes one run into the store's staging folder and publishes it.

Split from `workbench.store` (which re-exports everything here). Every file is written as
`name.tmp`, fsynced and renamed; `writer.json` records the run and this writer's pid until
`commit` writes `meta.json`, fsyncs the folder and renames it into `runs/`. See the store's
docstring for the whole protocol and its caveats.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.results import Result, frame_from_parquet, frame_to_parquet
from workbench.store_repair import WRITER_FILE

if TYPE_CHECKING:
    from workbench.store import RunStore

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def validate_name(name: str, what: str = "name") -> str:
    """Return `name` if it is a safe file-name component (`[A-Za-z0-9_.-]+`, no leading dot)."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(f"invalid {what} {name!r}: use [A-Za-z0-9_.-], not starting with '.'")
    return name


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries to disk (POSIX; a no-op elsewhere)."""
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RunWriter:
    """Writes one run into staging; `commit()` publishes it. Use as a context manager.

    A `resumable` (sharded) writer is interrupted rather than aborted when its body raises.
    `row` is the run's index row; it is also kept in staging as `writer.json` (with this
    process's pid), so a rebuilt index still knows the run and `clean` spares a live writer."""

    def __init__(self, store: RunStore, row: dict[str, Any], *, resumable: bool = False) -> None:
        self.store, self.run_id = store, row["run_id"]
        self.row = {
            k: row[k] for k in ("run_id", "kind", "model", "config", "pid", "host", "created_at")
        }
        self.folder = store.staging_dir / self.run_id
        self.done = False
        self.resumable = resumable
        self._record("running")

    def _record(self, status: str) -> None:
        """(Re)write `writer.json`: the run's row with this writer's pid and `status`."""
        record = {**self.row, "config": json.loads(self.row["config"]), "status": status}
        self._write_file(WRITER_FILE, lambda f: f.write(json.dumps(record, indent=2).encode()))

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
            raise RuntimeError(
                f"run {self.run_id!r}: {len(missing)} shard(s) missing, e.g. "
                f"{missing[0]!r}; a run is complete only when all shards are"
            )
        if (self.folder / "shards").is_dir():
            fsync_dir(self.folder / "shards")
        tables = sorted(p.name.removesuffix(".parquet") for p in self.folder.glob("*.parquet"))
        meta = {
            "run_id": self.run_id,
            "kind": self.row["kind"],
            "model": self.row["model"],
            "config": json.loads(self.row["config"]),
            "created_at": self.row["created_at"],
            "tables": tables,
        }
        self._write_file("meta.json", lambda f: f.write(json.dumps(meta, indent=2).encode()))
        (self.folder / WRITER_FILE).unlink(missing_ok=True)
        fsync_dir(self.folder)
        os.replace(self.folder, self.store.runs_dir / self.run_id)
        self.done = True
        fsync_dir(self.store.runs_dir)
        self.store._set_status(self.run_id, "complete", completed=True, row=self.row)

    def abort(self) -> None:
        """Give the run up: mark it failed and remove its staging folder."""
        if self.done:
            return
        self.done = True
        shutil.rmtree(self.folder, ignore_errors=True)
        self.store._set_status(self.run_id, "failed", row=self.row)

    def interrupt(self) -> None:
        """Stop writing but keep staging, marked 'interrupted', for `begin_sharded_run` to resume."""
        if self.done:
            return
        with contextlib.suppress(OSError):  # a rebuilt index then still knows it is resumable
            self._record("interrupted")
        self.done = True
        self.store._set_status(self.run_id, "interrupted", row=self.row)

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
