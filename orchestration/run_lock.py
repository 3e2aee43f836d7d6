"""One writer per warehouse, whatever starts the run: the run lock, generations, run copies.

A full pipeline run works on a private copy of the warehouse and renames it over the
warehouse at the end. Two runs doing that at once would silently lose one of them, so:

* **The run lock** (`<warehouse>.run-lock`, an `flock`) is held by the process that runs
  the job from before it copies the warehouse until after it renamed its copy back (or
  gave up). It belongs to the warehouse path, not to a Dagster instance, so the UI, the
  schedule, a sensor, `cdp run` and a test all queue on the same file. The kernel drops
  an `flock` when its process dies, so a killed run never leaves the lock behind. Who
  holds it is written next to it (`<warehouse>.run-lock.owner`, JSON: run id, pid, host,
  since) so that a waiting run can say whom it waits for.
* **Generations** (`<warehouse>.generation`) count commits. A copy records the
  generation it was taken from (`.runs/<run_id>.json`); a commit on top of a newer
  generation is refused. The generation is bumped *before* the rename: a crash between
  the two leaves a generation that is ahead of the file, which only ever refuses a stale
  copy, never lets one through.
* **Checkpoints.** The warehouse is checkpointed (which replays a WAL left by a killed
  direct writer) before it is copied, and the copy before it is renamed, so no `.wal`
  is left behind or silently ignored.

It lives in `orchestration/` because it is about *running* the pipeline, not about the
data; it is plain Python (no Dagster) so the chaos bench and tests can use it directly.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from orchestration.file_modes import PRIVATE_FILE, make_private_dir

LOCK_TIMEOUT_ENV = "CDP_LOCK_TIMEOUT_S"
DEFAULT_LOCK_TIMEOUT_S = 6 * 3600.0
POLL_INTERVAL_S = 0.5
# A waiting run repeats who it waits for this often, so a log shows it is still alive.
WAIT_REMINDER_S = 300.0


class WarehouseBusy(Exception):
    """Another run holds the warehouse's run lock (and we could not or would not wait)."""


class WarehouseMovedOn(Exception):
    """The warehouse was committed by another run since this run took its copy."""


class WarehouseUnsafe(Exception):
    """The warehouse is in a state a run must not build on (e.g. a WAL it cannot replay)."""


def lock_timeout_s(default: float = DEFAULT_LOCK_TIMEOUT_S) -> float:
    """How long a run waits for the run lock: `CDP_LOCK_TIMEOUT_S`, 0 = fail at once."""
    raw = os.environ.get(LOCK_TIMEOUT_ENV)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"{LOCK_TIMEOUT_ENV}={raw!r} is not a number of seconds; use e.g. 3600, or 0 to fail at once"
        ) from None
    return max(value, 0.0)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _write_json_atomically(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


# ---------------------------------------------------------------------------------------
# The run lock


@dataclass(frozen=True)
class LockOwner:
    run_id: str
    pid: int
    host: str
    since: str

    def describe(self) -> str:
        held_for = ""
        with suppress(ValueError):
            seconds = (_now() - datetime.fromisoformat(self.since)).total_seconds()
            held_for = f", {seconds / 60:.0f} min ago" if seconds >= 60 else f", {seconds:.0f}s ago"
        return f"run {self.run_id} (pid {self.pid} on {self.host}, since {self.since}{held_for})"

    @property
    def is_local_and_alive(self) -> bool:
        return self.host == socket.gethostname() and pid_alive(self.pid)


@dataclass
class _HeldLock:
    handle: object
    run_id: str
    depth: int


# Locks this process holds, by lock path: a run's own later steps (and its per-connection
# writes) re-enter instead of queueing behind themselves. flock treats two open() of the
# same file in one process as two independent locks, so without this a run would deadlock
# on its own lock.
_HELD: dict[str, _HeldLock] = {}
_HELD_GUARD = threading.Lock()


class RunLock:
    """The run lock of one warehouse file (see the module docstring)."""

    def __init__(self, warehouse: Path):
        self.warehouse = Path(warehouse)
        self.path = self.warehouse.with_name(self.warehouse.name + ".run-lock")
        self.owner_path = self.path.with_name(self.path.name + ".owner")

    def owner(self) -> LockOwner | None:
        """Who holds the lock now, or None when it is free (a stale record is ignored)."""
        record = _read_json(self.owner_path)
        if not self.is_held():
            return None
        try:
            return LockOwner(**record) if record else None
        except TypeError:
            return None

    def is_held(self) -> bool:
        """True when some process holds the lock (this one included)."""
        if str(self.path) in _HELD:
            return True
        if not self.path.exists():
            return False
        with open(self.path, "a+") as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(probe, fcntl.LOCK_UN)
            return False

    def held_by_this_process(self, run_id: str | None = None) -> bool:
        held = _HELD.get(str(self.path))
        return held is not None and (run_id is None or held.run_id == run_id)

    def _busy_message(self, owner: LockOwner | None, waited_s: float | None) -> str:
        who = owner.describe() if owner else "another process (no owner record yet)"
        waited = f"Waited {waited_s:.0f}s: " if waited_s else ""
        return (
            f"{waited}the warehouse {self.warehouse} is being written by {who}. "
            f"Wait for that run to finish (see Runs in the Dagster UI), or let this run wait "
            f"longer with {LOCK_TIMEOUT_ENV}=<seconds>. The lock is released automatically "
            f"when its process exits, even if it is killed."
        )

    @contextmanager
    def hold(
        self,
        run_id: str,
        *,
        timeout_s: float | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> Iterator[bool]:
        """Hold the lock for `run_id` for the duration of the block.

        Yields True when this call (or an outer one of the same run in this process) holds
        the flock, False when the block runs under the lock held by *another process of the
        same run* (Dagster's multiprocess executor runs each step in its own process).
        """
        acquired = self.acquire(run_id, timeout_s=timeout_s, on_wait=on_wait)
        try:
            yield acquired
        finally:
            if acquired:
                self.release(run_id)

    def acquire(
        self,
        run_id: str,
        *,
        timeout_s: float | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> bool:
        """Take the lock for `run_id` (re-entrant within a process). See `hold`.

        Raises WarehouseBusy, naming the holder, when the lock is not free in time.
        """
        key = str(self.path)
        with _HELD_GUARD:
            held = _HELD.get(key)
            if held is not None and held.run_id == run_id:
                held.depth += 1
                return True
        timeout = lock_timeout_s() if timeout_s is None else timeout_s
        make_private_dir(self.warehouse.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        handle = os.fdopen(fd, "r+")
        started = time.monotonic()
        last_notice = None
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                owner = self.owner()
                if owner is not None and owner.run_id == run_id and owner.is_local_and_alive:
                    # Another step process of this very run holds it: go on under its lock.
                    handle.close()
                    return False
                waited = time.monotonic() - started
                if waited >= timeout:
                    handle.close()
                    raise WarehouseBusy(
                        self._busy_message(owner, waited if timeout else None)
                    ) from None
                if on_wait is not None and (
                    last_notice is None or time.monotonic() - last_notice >= WAIT_REMINDER_S
                ):
                    who = owner.describe() if owner else "another process"
                    on_wait(
                        f"Waiting for the warehouse {self.warehouse}: it is being written by "
                        f"{who}. This run starts when that one finishes (timeout "
                        f"{timeout:.0f}s, {LOCK_TIMEOUT_ENV})."
                    )
                    last_notice = time.monotonic()
                time.sleep(POLL_INTERVAL_S)
        owner = LockOwner(
            run_id=run_id, pid=os.getpid(), host=socket.gethostname(), since=_now().isoformat()
        )
        _write_json_atomically(self.owner_path, asdict(owner))
        with _HELD_GUARD:
            _HELD[key] = _HeldLock(handle=handle, run_id=run_id, depth=1)
        return True

    def release(self, run_id: str) -> None:
        key = str(self.path)
        with _HELD_GUARD:
            held = _HELD.get(key)
            if held is None or held.run_id != run_id:
                return
            held.depth -= 1
            if held.depth > 0:
                return
            del _HELD[key]
        record = _read_json(self.owner_path)
        if record and record.get("run_id") == run_id and record.get("pid") == os.getpid():
            self.owner_path.unlink(missing_ok=True)
        fcntl.flock(held.handle, fcntl.LOCK_UN)
        held.handle.close()


# ---------------------------------------------------------------------------------------
# Generations and run copies


def generation_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".generation")


def read_generation(warehouse: Path) -> int:
    """The warehouse's commit counter (0 for a warehouse that predates generations)."""
    record = _read_json(generation_path(warehouse))
    try:
        return int(record["generation"]) if record else 0
    except (KeyError, TypeError, ValueError):
        raise WarehouseUnsafe(
            f"{generation_path(warehouse)} is not a generation record; restore it from "
            "backup or delete it if no run is in progress (the next commit starts again at 1)"
        ) from None


def bump_generation(warehouse: Path, run_id: str) -> int:
    generation = read_generation(warehouse) + 1
    _write_json_atomically(
        generation_path(warehouse),
        {"generation": generation, "run_id": run_id, "committed_at": _now().isoformat()},
    )
    return generation


def wal_path(database: Path) -> Path:
    return database.with_name(database.name + ".wal")


def checkpoint(database: Path) -> None:
    """Open the file with DuckDB (which replays a leftover WAL) and fold the WAL into it."""
    if not database.exists():
        return
    con = duckdb.connect(str(database))
    try:
        con.execute("CHECKPOINT")
    finally:
        con.close()
    if wal_path(database).exists():
        raise WarehouseUnsafe(
            f"{wal_path(database)} is still there after a checkpoint of {database}; another "
            "process has the file open for writing. Stop it, then run again."
        )


@dataclass(frozen=True)
class RunCopy:
    """A run's private copy of the warehouse: `.runs/<run_id>.duckdb` + `.json`."""

    warehouse: Path
    run_id: str

    @property
    def runs_dir(self) -> Path:
        return self.warehouse.parent / ".runs"

    @property
    def file(self) -> Path:
        return self.runs_dir / f"{self.run_id}.duckdb"

    @property
    def record_path(self) -> Path:
        return self.runs_dir / f"{self.run_id}.json"

    def record(self) -> dict | None:
        return _read_json(self.record_path)

    @property
    def base_generation(self) -> int | None:
        record = self.record()
        return int(record["base_generation"]) if record else None

    def exists(self) -> bool:
        return self.file.exists() and self.record_path.exists()

    def _write_record(self, base_generation: int) -> None:
        _write_json_atomically(
            self.record_path,
            {
                "run_id": self.run_id,
                "base_generation": base_generation,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "created_at": _now().isoformat(),
            },
        )

    def take(self) -> int:
        """Checkpoint the warehouse and copy it; returns the generation it was taken from.

        The caller holds the run lock (and the writer lock)."""
        make_private_dir(self.runs_dir)
        generation = read_generation(self.warehouse)
        if self.warehouse.exists():
            checkpoint(self.warehouse)
            partial = self.file.with_name(self.file.name + ".copying")
            shutil.copyfile(self.warehouse, partial)
            os.chmod(partial, PRIVATE_FILE)
            os.replace(partial, self.file)
        self._write_record(generation)
        return generation

    def adopt(self, parent: RunCopy) -> None:
        """Continue a parent run's copy (re-execution): same base generation, new owner."""
        base = parent.base_generation
        os.replace(parent.file, self.file)
        parent.record_path.unlink(missing_ok=True)
        self._write_record(base if base is not None else 0)

    def discard(self) -> None:
        for path in (
            self.file,
            wal_path(self.file),
            self.file.with_name(self.file.name + ".copying"),
            self.record_path,
        ):
            path.unlink(missing_ok=True)

    def commit(self) -> int:
        """Rename the copy over the warehouse, unless the warehouse moved on since the copy.

        The caller holds the run lock (and the writer lock). Returns the new generation."""
        base = self.base_generation
        current = read_generation(self.warehouse)
        if base is None or base != current:
            raise WarehouseMovedOn(
                f"refusing to commit run {self.run_id}: its copy was taken from generation "
                f"{base} of {self.warehouse}, which is now at generation {current} (another "
                "run committed in between). The warehouse is untouched. Run again: the new "
                "run starts from the current warehouse."
            )
        if wal_path(self.warehouse).exists():
            raise WarehouseUnsafe(
                f"refusing to commit run {self.run_id}: {wal_path(self.warehouse)} exists, so "
                "something wrote the warehouse outside the pipeline while this run was going. "
                "The warehouse is untouched; stop that writer and run again."
            )
        if self.file.exists():
            checkpoint(self.file)
        generation = bump_generation(self.warehouse, self.run_id)
        if self.file.exists():
            os.chmod(self.file, PRIVATE_FILE)
            os.replace(self.file, self.warehouse)
            _fsync_dir(self.warehouse.parent)
        self.record_path.unlink(missing_ok=True)
        return generation


def _fsync_dir(folder: Path) -> None:
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def leftover_copies(warehouse: Path) -> list[str]:
    """Run ids with a copy (or a copy's pieces) in `.runs/`."""
    runs_dir = warehouse.parent / ".runs"
    if not runs_dir.exists():
        return []
    return sorted({p.name.split(".")[0] for p in runs_dir.iterdir() if not p.name.startswith(".")})


def discard_abandoned_copies(
    warehouse: Path, keep_run_id: str, log: Callable[[str], None] | None = None
) -> list[str]:
    """Delete copies whose owner is provably gone. The caller holds the run lock.

    Every run holds the run lock from before it copies until it commits or gives up, so
    while we hold it no other run is writing a copy. On top of that a copy whose record
    names a live process on this host other than ours is kept (it may be a process of a
    run we cannot see); a copy of a run that ran earlier in *this* process is finished.
    """
    removed = []
    for run_id in leftover_copies(warehouse):
        if run_id == keep_run_id:
            continue
        copy = RunCopy(warehouse, run_id)
        record = copy.record() or {}
        pid, host = record.get("pid"), record.get("host")
        if (
            isinstance(pid, int)
            and pid != os.getpid()
            and host == socket.gethostname()
            and pid_alive(pid)
        ):
            if log:
                log(f"Keeping the copy of run {run_id}: its process {pid} is still alive.")
            continue
        copy.discard()
        removed.append(run_id)
    if removed and log:
        log(
            f"Removed {len(removed)} abandoned run cop{'y' if len(removed) == 1 else 'ies'}: "
            + ", ".join(removed)
        )
    return removed


def publish_leftovers(warehouse: Path) -> list[Path]:
    """Half-built BI files and temp spill of a killed run (safe to delete under the run lock)."""
    folder = warehouse.parent
    leftovers = [
        *folder.glob(".bi.duckdb.*.tmp"),
        *folder.glob(".bi.duckdb.*.tmp.wal"),
        *folder.glob(".bi_parquet.*.tmp"),
        *folder.glob(".bi_parquet.*.old"),
        *folder.glob("bi_parquet_versions/*.tmp"),
    ]
    tmp = folder / ".duckdb_tmp"
    if tmp.is_dir():
        leftovers += list(tmp.iterdir())
    return leftovers


def remove_publish_leftovers(warehouse: Path) -> int:
    removed = 0
    for path in publish_leftovers(warehouse):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed
