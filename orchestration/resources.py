"""Dagster resources: the landing zone and the DuckDB warehouse."""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import PrivateAttr

PIPELINE_JOB_NAME = "cdp_pipeline"
COMMIT_ASSET = dg.AssetKey(["published", "marts"])


class LandingZoneResource(dg.ConfigurableResource):
    """The landing root: `<path>/<source>/<table>/dt=YYYY-MM-DD/*`."""

    path: str

    @property
    def root(self) -> Path:
        return Path(self.path)


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file the pipeline writes.

    DuckDB allows one writer per file. Every connection holds an exclusive lock file next
    to the warehouse for its lifetime, so a second writer (a run started from the UI while
    `cdp run` is going, say) waits for its turn instead of failing on DuckDB's lock.
    BI tools never open this file: they read the published copy (`published_path`).

    A full pipeline run is all-or-nothing: it works on a copy of the warehouse
    (`.runs/<run_id>.duckdb`) and the last step, publishing the marts, renames the copy
    over the warehouse. A run that fails or is killed half-way leaves the warehouse and
    the published marts exactly as they were; the next run discards its leftovers.
    Runs of a few assets picked in the UI write the warehouse directly.
    """

    path: str
    memory_limit: str = "6GB"
    threads: int = 2
    lock_timeout_s: float = 3600.0

    _run_id: str | None = PrivateAttr(default=None)
    _transactional: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        run = context.dagster_run
        if run is None or run.job_name != PIPELINE_JOB_NAME:
            return
        if run.asset_selection and COMMIT_ASSET not in run.asset_selection:
            return
        self._run_id = run.run_id
        self._transactional = True
        self._resume_parent_copy(run.parent_run_id)
        self._discard_abandoned_copies(context.instance)
        if context.log is not None:
            context.log.info(
                f"This run writes a private copy of {self.base_file} ({self.file.name}); "
                "it replaces the warehouse only if the whole run succeeds."
            )

    @property
    def base_file(self) -> Path:
        """The warehouse as of the last successful run."""
        return Path(self.path)

    @property
    def runs_dir(self) -> Path:
        return self.base_file.parent / ".runs"

    @property
    def file(self) -> Path:
        """The file this run reads and writes: its private copy, or the warehouse itself."""
        if self._transactional and self._run_id:
            return self.runs_dir / f"{self._run_id}.duckdb"
        return self.base_file

    def _resume_parent_copy(self, parent_run_id: str | None) -> None:
        """A re-execution ("from failure" in the UI) continues the failed run's copy: the
        steps it skips already wrote there, and every step is idempotent."""
        if not parent_run_id:
            return
        parent_copy = self.runs_dir / f"{parent_run_id}.duckdb"
        if parent_copy.exists() and not self.file.exists():
            os.replace(parent_copy, self.file)

    def _discard_abandoned_copies(self, instance: dg.DagsterInstance | None) -> None:
        if not self.runs_dir.exists():
            return
        for leftover in self.runs_dir.glob("*.duckdb*"):
            run_id = leftover.name.split(".")[0]
            if run_id == self._run_id:
                continue
            run = instance.get_run_by_id(run_id) if instance is not None else None
            if run is None or run.is_finished:
                leftover.unlink(missing_ok=True)

    def _ensure_run_copy(self) -> None:
        if not self._transactional or self.file.exists():
            return
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        partial = self.file.with_name(self.file.name + ".copying")
        if self.base_file.exists():
            shutil.copyfile(self.base_file, partial)
            os.replace(partial, self.file)

    def commit_run(self) -> bool:
        """Make this run's copy the warehouse (an atomic rename). False when not transactional."""
        if not (self._transactional and self._run_id):
            return False
        with self.writer_lock():
            if self.file.exists():
                os.replace(self.file, self.base_file)
        self._transactional = False
        return True

    @contextmanager
    def dbt_environment(self, log=None) -> Iterator[None]:
        """Hold the writer lock and point dbt (a subprocess reading CDP_WAREHOUSE) at `file`."""
        with self.writer_lock(log):
            self._ensure_run_copy()
            previous = os.environ.get("CDP_WAREHOUSE")
            os.environ["CDP_WAREHOUSE"] = str(self.file)
            try:
                yield
            finally:
                if previous is None:
                    os.environ.pop("CDP_WAREHOUSE", None)
                else:
                    os.environ["CDP_WAREHOUSE"] = previous

    @property
    def quality_docs_dir(self) -> Path:
        return self.base_file.parent / "quality_docs"

    @property
    def published_path(self) -> Path:
        return self.base_file.parent / "bi.duckdb"

    @property
    def published_parquet_dir(self) -> Path:
        return self.base_file.parent / "bi_parquet"

    @contextmanager
    def writer_lock(self, log=None) -> Iterator[None]:
        self.base_file.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.base_file.with_suffix(self.base_file.suffix + ".lock")
        with open(lock_path, "a+") as handle:
            deadline = time.monotonic() + self.lock_timeout_s
            waited = False
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not waited and log is not None:
                        log.info(f"Another writer holds {self.file}; waiting for it to finish.")
                    waited = True
                    if time.monotonic() > deadline:
                        raise dg.Failure(
                            description=(
                                f"Waited {self.lock_timeout_s:.0f}s for another writer of "
                                f"{self.file} to finish. Check for a stuck run in the Dagster "
                                f"UI, or remove {lock_path} if no cdp process is running."
                            )
                        ) from None
                    time.sleep(1.0)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def connect(self, log=None) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.writer_lock(log):
            self._ensure_run_copy()
            con = duckdb.connect(str(self.file))
            try:
                con.execute(f"SET memory_limit = '{self.memory_limit}'")
                con.execute(f"SET threads = {int(self.threads)}")
                con.execute("SET TimeZone = 'UTC'")
                tmp = self.base_file.parent / ".duckdb_tmp"
                con.execute(f"SET temp_directory = '{tmp}'")
                yield con
            finally:
                con.close()


def warehouse_from_env() -> WarehouseResource:
    return WarehouseResource(path=os.environ["CDP_WAREHOUSE"])
