"""Dagster resources: the landing zone and the DuckDB warehouse."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import PrivateAttr

from ingestion.load import configure_connection
from orchestration.file_modes import (
    PRIVATE_FILE,
    FileModeError,
    apply_private_umask,
    make_private_dir,
    prepare_warehouse_folder,
)
from orchestration.run_lock import (
    RunCopy,
    RunLock,
    WarehouseBusy,
    WarehouseMovedOn,
    WarehouseUnsafe,
    bump_generation,
    checkpoint,
    discard_abandoned_copies,
    lock_timeout_s,
    read_generation,
    remove_publish_leftovers,
)
from orchestration.settings import configured_path
from warehouse_engine.settings import EngineSettingError, EngineSettings
from warehouse_engine.spark_tables import (
    ImportedTable,
    hand_off_tables,
    handed_off_relations,
    import_spark_tables,
)

PIPELINE_JOB_NAME = "cdp_pipeline"
COMMIT_ASSET = dg.AssetKey(["published", "marts"])


class LandingZoneResource(dg.ConfigurableResource):
    """The landing root: `<path>/<source>/<table>/dt=YYYY-MM-DD/*`."""

    # None: $CDP_LANDING_DIR (else data/landing), read when used, like an EnvVar with a default.
    path: str | None = None

    @property
    def root(self) -> Path:
        return Path(self.path or configured_path("CDP_LANDING_DIR"))


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file the pipeline writes, one run at a time.

    A full pipeline run is all-or-nothing: at its start it takes the warehouse's run lock
    (`orchestration/run_lock.py`; held until the run ends, whatever started it), then
    checkpoints the warehouse and copies it to `.runs/<run_id>.duckdb`. Every step writes
    that copy, and the last step, publishing the marts, renames it over the warehouse,
    unless another run committed in between (generations), which is refused. A run that
    fails or is killed leaves the warehouse and the published marts exactly as they were.
    Runs of a few assets picked in the UI write the warehouse directly, each connection
    under the same run lock. BI tools never open this file: they read `published_path`.
    """

    # None: $CDP_WAREHOUSE (else data/warehouse.duckdb), read when a run starts (a dbt step
    # points $CDP_WAREHOUSE at its link during the step, so it is read once, not on use).
    path: str | None = None
    memory_limit: str = "6GB"
    threads: int = 2
    # Seconds to wait for the run lock; None: $CDP_LOCK_TIMEOUT_S, else 6 hours.
    lock_timeout_s: float | None = None

    _resolved_path: str | None = PrivateAttr(default=None)
    _run_id: str | None = PrivateAttr(default=None)
    _transactional: bool = PrivateAttr(default=False)
    _holds_run_lock: bool = PrivateAttr(default=False)
    _engine_settings: EngineSettings | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        apply_private_umask()
        self._resolved_path = self.path or configured_path("CDP_WAREHOUSE")
        self._engine_settings = None
        _ = self.engine  # a bad CDP_ENGINE / CDP_SPARK_* value stops the run here, named
        run = context.dagster_run
        if run is None:
            return
        self._run_id = run.run_id
        if run.job_name != PIPELINE_JOB_NAME:
            return
        if run.asset_selection and COMMIT_ASSET not in run.asset_selection:
            return
        self.begin_run(run.run_id, run.parent_run_id, context.log)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.end_run()

    def begin_run(self, run_id: str, parent_run_id: str | None = None, log=None) -> None:
        """Start an all-or-nothing run: take the run lock (waiting for another run if need
        be), clear what killed runs left behind, then resume the parent's copy or take one."""
        self._run_id = run_id
        self._transactional = True
        self._start_run(parent_run_id, log)

    def end_run(self) -> None:
        """Let the next run in. A run that did not commit keeps its copy (for *Re-execute
        from failure*); the next run removes it if nobody resumes it."""
        if self._holds_run_lock and self._run_id:
            self._holds_run_lock = False
            self.run_lock.release(self._run_id)

    @property
    def base_file(self) -> Path:
        """The warehouse as of the last successful run."""
        if self._resolved_path is None:
            self._resolved_path = self.path or configured_path("CDP_WAREHOUSE")
        return Path(self._resolved_path)

    @property
    def run_lock(self) -> RunLock:
        return RunLock(self.base_file)

    @property
    def runs_dir(self) -> Path:
        return self.base_file.parent / ".runs"

    @property
    def run_copy(self) -> RunCopy | None:
        if self._transactional and self._run_id:
            return RunCopy(self.base_file, self._run_id)
        return None

    @property
    def file(self) -> Path:
        """The file this run reads and writes: its private copy, or the warehouse itself."""
        copy = self.run_copy
        return copy.file if copy is not None else self.base_file

    @property
    def _lock_owner_id(self) -> str:
        """Whom the run lock is held for: the Dagster run, or this process outside a run."""
        return self._run_id or f"direct-{os.getpid()}"

    def _timeout(self) -> float:
        if self.lock_timeout_s is not None:
            return self.lock_timeout_s
        try:
            return lock_timeout_s()
        except ValueError as exc:
            raise dg.Failure(description=str(exc)) from None

    def _prepare_folder(self) -> None:
        try:
            prepare_warehouse_folder(self.base_file.parent)
        except FileModeError as exc:
            raise dg.Failure(description=str(exc)) from None

    def _acquire_run_lock(self, run_id: str, log=None) -> bool:
        try:
            return self.run_lock.acquire(
                run_id,
                timeout_s=self._timeout(),
                on_wait=(log.info if log is not None else None),
            )
        except WarehouseBusy as exc:
            raise dg.Failure(description=str(exc)) from None

    def _start_run(self, parent_run_id: str | None, log=None) -> None:
        """Take the run lock, clear what killed runs left, then resume or take a copy."""
        assert self._run_id is not None
        self._prepare_folder()
        self._holds_run_lock = self._acquire_run_lock(self._run_id, log)
        info = log.info if log is not None else (lambda _msg: None)
        try:
            with self.writer_lock(log):
                # A WAL a killed dbt left joins its file before any step opens that file.
                self._settle_dbt_link()
                remove_publish_leftovers(self.base_file)
                copy = self.run_copy
                assert copy is not None
                if not copy.exists():
                    self._resume_parent_copy(parent_run_id, log)
                discard_abandoned_copies(self.base_file, self._run_id, info)
                if not copy.exists():
                    generation = copy.take()
                    info(
                        f"This run writes a private copy of {self.base_file} (generation "
                        f"{generation}, {copy.file.name}); it replaces the warehouse only if "
                        "the whole run succeeds."
                    )
        except (WarehouseUnsafe, duckdb.Error) as exc:
            self.end_run()
            raise dg.Failure(
                description=f"Could not prepare a copy of {self.base_file}: {exc}"
            ) from None

    def _resume_parent_copy(self, parent_run_id: str | None, log=None) -> None:
        """A re-execution ("from failure" in the UI) continues the failed run's copy (the
        steps it skips already wrote there, and every step is idempotent), but only when
        no other run committed since that copy was taken; otherwise it starts afresh."""
        if not parent_run_id or not self._run_id:
            return
        parent = RunCopy(self.base_file, parent_run_id)
        if not parent.exists():
            return
        current = read_generation(self.base_file)
        if parent.base_generation == current:
            RunCopy(self.base_file, self._run_id).adopt(parent)
            if log is not None:
                log.info(
                    f"Resuming the copy of run {parent_run_id} (generation {current} is still "
                    "the warehouse's)."
                )
            return
        if log is not None:
            log.warning(
                f"Not resuming the copy of run {parent_run_id}: it was taken from generation "
                f"{parent.base_generation} and the warehouse is at generation {current} "
                "(another run committed since). This run starts from the current warehouse, "
                "so every step runs again."
            )
        parent.discard()

    def commit_run(self) -> bool:
        """Make this run's copy the warehouse (an atomic rename). False when not transactional.

        Refused (dg.Failure, warehouse untouched) when the warehouse moved on since the copy."""
        copy = self.run_copy
        if copy is None:
            return False
        with self.writer_lock():
            try:
                copy.commit()
            except (WarehouseMovedOn, WarehouseUnsafe) as exc:
                raise dg.Failure(description=str(exc)) from None
        self._transactional = False
        return True

    @contextmanager
    def holding_run_lock(self, log=None) -> Iterator[None]:
        """Hold the run lock for the block, unless this run holds it already (a full run
        from its first step to its last): what a connection outside a run copy, and the BI
        swap of a hand-picked publish, do."""
        run_id = self._lock_owner_id
        if self._transactional or self.run_lock.held_by_this_process(run_id):
            yield
            return
        held = self._acquire_run_lock(run_id, log)
        try:
            yield
        finally:
            if held:
                self.run_lock.release(run_id)

    def _after_direct_write(self) -> None:
        """A direct write is a commit too: parent copies taken before it are now stale."""
        if not self._transactional and self.base_file.exists():
            os.chmod(self.base_file, PRIVATE_FILE)
            bump_generation(self.base_file, self._lock_owner_id)

    @property
    def dbt_dir(self) -> Path:
        """dbt's side of this warehouse: the stable link it opens and its target folder."""
        return self.base_file.parent / ".dbt"

    @property
    def dbt_target_dir(self) -> Path:
        """One dbt target folder per warehouse and engine, kept between runs: dbt's partial
        parsing (partial_parse.msgpack) lives there, so a run re-parses only changed files
        (a profile switched between engines would make every run parse everything)."""
        return self.dbt_dir / ("target" if not self.engine.is_spark else "target_spark")

    @property
    def engine(self) -> EngineSettings:
        """Where dbt builds (CDP_ENGINE), resolved against this warehouse."""
        settings = self._engine_settings
        if settings is None or settings.duckdb_warehouse != self.base_file:
            try:
                settings = EngineSettings.from_environment(duckdb_warehouse=self.base_file)
            except EngineSettingError as exc:
                raise dg.Failure(description=str(exc)) from None
            self._engine_settings = settings
        return settings

    def where_steps_run(self) -> str:
        """One line for a Python step's log: where its tables come from and go to."""
        if not self.engine.is_spark:
            return f"runs on duckdb ({self.base_file.name})"
        return (
            "runs in Python on the local DuckDB step store (not ported to Spark yet): "
            f"inputs are copies of Spark's tables, outputs go to Spark as Parquet under "
            f"{self.engine.handoff_root}"
        )

    def spark_source_locations(self) -> dict[str, str]:
        """On Spark, the `schema.table`s Spark reads somewhere else than its hand-off
        folder: `raw.*`, from the days Spark loaded (ingestion/spark_days.py)."""
        if not self.engine.is_spark:
            return {}
        from ingestion.spark_days import raw_relation_locations

        return raw_relation_locations(self.engine.raw_root)

    def hand_off(self, con: duckdb.DuckDBPyConnection, relations, log=None) -> int:
        """On Spark, write `schema.table`s a Python step wrote to Spark's hand-off folders
        (dbt registers them as external tables); on DuckDB nothing to do. Returns rows."""
        if not self.engine.is_spark:
            return 0
        written = hand_off_tables(con, self.engine.handoff_root, relations)
        if log is not None:
            log.info(
                f"Handed {len(written)} table(s), {sum(t.rows for t in written):,} rows, to "
                f"Spark: {', '.join(f'{t.schema}.{t.table}' for t in written)}"
            )
        return sum(t.rows for t in written)

    def import_from_spark(self, relations, log=None) -> list[ImportedTable]:
        """Copy tables dbt built on Spark into this run's step store, for the Python steps
        and the BI copy that read them."""
        relations = list(relations)
        if not relations:
            return []
        with self.connect(log) as con:
            imported = import_spark_tables(con, self.engine.spark_warehouse, relations)
        if log is not None:
            log.info(
                f"Copied {len(imported)} table(s) dbt built on Spark, "
                f"{sum(t.rows for t in imported):,} rows, into the local step store "
                f"{self.file.name}"
            )
        return imported

    @property
    def dbt_link(self) -> Path:
        return self.dbt_dir / self.base_file.name

    def _settle_dbt_link(self) -> None:
        """Remove the link; first fold a WAL a killed dbt left next to it into its file.

        DuckDB keeps its WAL next to the name it opened. dbt closes cleanly (checkpoint, no
        WAL) even when a model fails; only a killed dbt leaves one, and opening the link
        once replays it into the file the link shares its data with.
        """
        link = self.dbt_link
        if link.with_name(link.name + ".wal").exists() and link.exists():
            duckdb.connect(str(link)).close()
        link.unlink(missing_ok=True)

    def _link_for_dbt(self) -> Path:
        """`.dbt/<warehouse name>`, a hard link to the file this run writes.

        dbt re-parses the whole project (~10 s) whenever its profile changes, and the
        profile's path would change every run (each run writes `.runs/<run_id>.duckdb`).
        A second name at a stable path keeps the profile, and partial parsing, the same.
        A hard link (not a symlink) also keeps DuckDB's catalog name, taken from the file
        name, the one dbt expects; the link shares the file's data and its lock.
        """
        make_private_dir(self.dbt_dir)
        self._settle_dbt_link()
        if not self.file.exists():
            return self.file  # the first run: dbt creates the warehouse itself
        if self.file.with_name(self.file.name + ".wal").exists():
            duckdb.connect(str(self.file)).close()  # the WAL joins the file before dbt opens it
        os.link(self.file, self.dbt_link)
        return self.dbt_link

    @contextmanager
    def dbt_environment(self, log=None) -> Iterator[None]:
        """Hold the locks and point dbt (a subprocess reading CDP_WAREHOUSE) at `file`;
        on Spark, at the Spark warehouse and the hand-off tables present."""
        if self.engine.is_spark:
            with self._spark_dbt_environment(log):
                yield
            return
        with self.holding_run_lock(log), self.writer_lock(log):
            previous = os.environ.get("CDP_WAREHOUSE")
            os.environ["CDP_WAREHOUSE"] = str(self._link_for_dbt())
            try:
                yield
            finally:
                self._settle_dbt_link()
                if previous is None:
                    os.environ.pop("CDP_WAREHOUSE", None)
                else:
                    os.environ["CDP_WAREHOUSE"] = previous
                if not self._transactional:
                    checkpoint(self.base_file)
                    self._after_direct_write()

    @contextmanager
    def _spark_dbt_environment(self, log=None) -> Iterator[None]:
        """dbt on Spark reads no DuckDB file: the run lock (one run per warehouse, Spark's
        Derby metastore admits one process) and the engine's variables are all it needs."""
        settings = self.engine
        env = settings.dbt_environment()
        locations = self.spark_source_locations()
        env["CDP_SPARK_HANDOFF_TABLES"] = ",".join(
            sorted(set(handed_off_relations(settings.handoff_root)) | set(locations))
        )
        # dbt registers these over Spark's own folders instead of the hand-off
        # (dbt_project/macros/spark_engine.sql, register_handoff_tables)
        env["CDP_SPARK_SOURCE_LOCATIONS"] = json.dumps(locations)
        with self.holding_run_lock(log):
            previous = {
                name: os.environ.get(name) for name in set(env) | {"MASTER", "SPARK_REMOTE"}
            }
            os.environ.update(env)
            for name in ("MASTER", "SPARK_REMOTE"):
                if name not in env:
                    os.environ.pop(name, None)
            if log is not None:
                log.info(f"dbt builds on {settings.describe()}")
            try:
                yield
            finally:
                for name, value in previous.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value

    @property
    def quality_docs_dir(self) -> Path:
        folder = self.base_file.parent / "quality_docs"
        make_private_dir(folder)
        return folder

    @property
    def overview_dir(self) -> Path:
        """The overview page (overview/page.py), next to the quality Data Docs."""
        folder = self.base_file.parent / "overview"
        make_private_dir(folder)
        return folder

    @property
    def published_path(self) -> Path:
        return self.base_file.parent / "bi.duckdb"

    @property
    def published_parquet_dir(self) -> Path:
        return self.base_file.parent / "bi_parquet"

    @property
    def temp_dir(self) -> Path:
        """DuckDB's spill folder; emptied by the next run after a killed one."""
        return self.base_file.parent / ".duckdb_tmp"

    @contextmanager
    def writer_lock(self, log=None) -> Iterator[None]:
        """The short lock around one connection: the steps of one run that execute in
        separate processes (multiprocess executor) take turns on the file."""
        self._prepare_folder()
        lock_path = self.base_file.with_suffix(self.base_file.suffix + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        with os.fdopen(fd, "r+") as handle:
            timeout = self._timeout()
            deadline = time.monotonic() + timeout
            waited = False
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not waited and log is not None:
                        log.info(f"Another step of this run is writing {self.file}; waiting.")
                    waited = True
                    if time.monotonic() > deadline:
                        raise dg.Failure(
                            description=(
                                f"Waited {timeout:.0f}s for another writer of {self.file} to "
                                "finish. Check for a stuck run in the Dagster UI."
                            )
                        ) from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def connect(self, log=None) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.holding_run_lock(log), self.writer_lock(log):
            self._settle_dbt_link()
            make_private_dir(self.temp_dir)
            con = duckdb.connect(str(self.file))
            try:
                configure_connection(
                    con,
                    memory_limit=self.memory_limit,
                    threads=self.threads,
                    temp_directory=str(self.temp_dir),
                )
                con.execute("SET TimeZone = 'UTC'")
                yield con
                if not self._transactional:
                    con.execute("CHECKPOINT")
            finally:
                con.close()
            if not self._transactional:
                self._after_direct_write()
