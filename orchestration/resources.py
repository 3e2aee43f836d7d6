"""Dagster resources: the landing zone and the DuckDB warehouse."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb


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
    """

    path: str
    memory_limit: str = "6GB"
    threads: int = 2
    lock_timeout_s: float = 3600.0

    @property
    def file(self) -> Path:
        return Path(self.path)

    @property
    def quality_docs_dir(self) -> Path:
        return self.file.parent / "quality_docs"

    @property
    def published_path(self) -> Path:
        return self.file.parent / "marts.duckdb"

    @property
    def published_parquet_dir(self) -> Path:
        return self.file.parent / "marts_parquet"

    @contextmanager
    def writer_lock(self, log=None) -> Iterator[None]:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.file.with_suffix(self.file.suffix + ".lock")
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
            con = duckdb.connect(str(self.file))
            try:
                con.execute(f"SET memory_limit = '{self.memory_limit}'")
                con.execute(f"SET threads = {int(self.threads)}")
                con.execute("SET TimeZone = 'UTC'")
                tmp = self.file.parent / ".duckdb_tmp"
                con.execute(f"SET temp_directory = '{tmp}'")
                yield con
            finally:
                con.close()


def warehouse_from_env() -> WarehouseResource:
    return WarehouseResource(path=os.environ["CDP_WAREHOUSE"])
