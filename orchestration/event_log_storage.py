"""Dagster's SQLite event log, keeping its connections open (set in orchestration/dagster.yaml).

Dagster's `SqliteEventLogStorage` builds a new SQLAlchemy engine, opens the database,
commits (an fsync) and closes it (a WAL checkpoint, more fsyncs) for every event it
stores, and recompiles every statement because each engine starts with an empty cache.
A demo run stores about 1,500 events (each asset check result is one, and the index
database mirrors the asset ones); that cost the run more CPU seconds than its data work.
This subclass keeps one engine, with its pooled connection and statement cache, per
database file of the last few runs, remembers which of the index's tables exist (stock
`has_table` opens a new engine and connection for it, ~550 times a demo run: each
asset event and check evaluation asks whether the asset-check tables exist), which of
its columns and data migrations are there (stock Dagster reflects the asset_keys table
and queries the migrations table for every asset event and every read of a step's input
data versions), and commits with `synchronous=NORMAL`, which SQLite's
WAL mode (Dagster's choice for these files) keeps corruption-safe: a power cut may lose
the last events of a run, never the database. Schema, layout and files are Dagster's own,
so the UI, the daemon and `dagster` commands read them as before.

Each stored event is one transaction per database it touches (stock Dagster commits an
asset check result three times: run file, index, check-execution row), and a batch of
events (`store_event_batch`: the planned materializations and checks at a run's start,
a multi-day asset's materializations) is one transaction per database for all of them.
Dagster hands over batches only when DAGSTER_EVENT_BATCH_SIZE is set: this storage sets
it in the process that uses it (the `cdp` command, a run worker, the UI), unless the
environment already says otherwise.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as db
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._serdes import ConfigurableClassData
from sqlalchemy.pool import QueuePool

# Engines kept open at once: the index database plus the runs being written or watched.
MAX_OPEN_DATABASES = 8
SQLITE_BUSY_TIMEOUT_SECONDS = 120
# Events Dagster groups before storing them (read by Dagster when it logs an event).
EVENT_BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 1000


def _default_base_dir() -> str:
    """Where Dagster's default instance keeps event logs: $DAGSTER_HOME/history/runs."""
    return os.path.join(os.environ["DAGSTER_HOME"], "history", "runs")


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` with one open engine per database (see the module docstring)."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, db.engine.Engine] = OrderedDict()
        self._tables_present: set[str] = set()
        self._asset_key_cols: set[str] = set()
        self._secondary_indexes: set[str] = set()
        # The open transaction of each database while this thread stores an event or a batch.
        self._session = threading.local()
        os.environ.setdefault(EVENT_BATCH_SIZE_ENV, str(EVENT_BATCH_SIZE))
        super().__init__(base_dir or _default_base_dir(), inst_data)

    @classmethod
    def config_type(cls):
        from dagster._config import Field, StringSource

        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> db.engine.Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = db.create_engine(
            self.conn_string_for_shard(shard),
            poolclass=QueuePool,
            pool_size=1,
            max_overflow=4,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )

        @db.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        self._engines[shard] = engine
        while len(self._engines) > MAX_OPEN_DATABASES:
            _, oldest = self._engines.popitem(last=False)
            oldest.dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[db.engine.Connection]:
        session = getattr(self._session, "connections", None)
        if session is not None:  # within _write_session: its lock is held, its transaction open
            conn = session.get(shard)
            if conn is None:
                conn = session[shard] = self._begin(shard)
            yield conn
            return
        with self._db_lock:
            with self._initialized_engine(shard).connect() as conn:
                with conn.begin():
                    yield conn

    def _initialized_engine(self, shard: str) -> db.engine.Engine:
        engine = self._engine(shard)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        return engine

    def _begin(self, shard: str) -> db.engine.Connection:
        conn = self._initialized_engine(shard).connect()
        conn.begin()
        return conn

    @contextmanager
    def _write_session(self) -> Iterator[None]:
        """One transaction per database for everything stored inside; all or nothing per
        database, committed in the order the databases were first written (run file first,
        then the index, as stock Dagster does event by event)."""
        if getattr(self._session, "connections", None) is not None:
            yield  # nested: the outer session commits
            return
        with self._db_lock:
            connections: dict[str, db.engine.Connection] = {}
            self._session.connections = connections
            try:
                yield
                for conn in connections.values():
                    conn.commit()
            finally:
                self._session.connections = None
                for conn in connections.values():
                    conn.close()  # rolls back what was not committed

    def store_event(self, event: EventLogEntry) -> None:
        with self._write_session():
            super().store_event(event)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """The batch in one transaction per database (Dagster falls back to storing the events
        one by one when this raises)."""
        with self._write_session():
            for event in events:
                super().store_event(event)

    def _has_asset_key_col_on_connection(self, conn: db.engine.Connection, column: str) -> bool:
        """Whether the index's asset_keys table has `column`; stock Dagster reflects the
        table's columns for every asset event and asset-record read. Columns once there stay."""
        if column not in self._asset_key_cols:
            if not super()._has_asset_key_col_on_connection(conn, column):
                return False
            self._asset_key_cols.add(column)
        return True

    def has_asset_key_col(self, column_name: str) -> bool:
        return column_name in self._asset_key_cols or super().has_asset_key_col(column_name)

    def has_secondary_index(self, name: str) -> bool:
        """Whether a data migration of the index is done (asked for every asset-record read,
        e.g. each step's input data versions); a migration once done stays done."""
        if name not in self._secondary_indexes:
            if not super().has_secondary_index(name):
                return False
            self._secondary_indexes.add(name)
        return True

    def has_table(self, table_name: str) -> bool:
        """Whether the index database has `table_name`; a table once there stays (a
        migration only adds tables; `wipe` forgets what was seen)."""
        if table_name in self._tables_present:
            return True
        present = super().has_table(table_name)
        if present:
            self._tables_present.add(table_name)
        return present

    def _close_all(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def wipe(self) -> None:
        self._tables_present.clear()
        self._asset_key_cols.clear()
        self._secondary_indexes.clear()
        self._close_all()  # the run databases are deleted: no connection may outlive them
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._close_all()
