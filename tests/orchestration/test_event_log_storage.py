"""The project's SQLite event log (orchestration/event_log_storage.py) on real files."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import warnings
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
from dagster._core.events import AssetMaterializationPlannedData, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqlEventLogStorage, SqliteEventLogStorage
from dagster._core.storage.event_log.migration import ASSET_KEY_INDEX_COLS
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable

from orchestration.event_log_storage import (
    EVENT_BATCH_SIZE,
    EVENT_BATCH_SIZE_ENV,
    PooledSqliteEventLogStorage,
)


def test_has_table_answers_like_dagsters_and_asks_the_database_once(tmp_path: Path, monkeypatch):
    storage = PooledSqliteEventLogStorage(base_dir=str(tmp_path / "runs"))
    try:
        table = AssetCheckExecutionsTable.name
        assert storage.has_table(table) and storage.supports_asset_checks
        assert not storage.has_table("no_such_table")

        # Once seen, a table is not looked up again (stock Dagster opens an engine each time).
        def looked_up(*_args, **_kwargs):
            raise AssertionError("has_table went to the database again")

        monkeypatch.setattr(
            "dagster._core.storage.event_log.sqlite.sqlite_event_log.create_engine", looked_up
        )
        assert all(storage.has_table(table) for _ in range(100))
        monkeypatch.undo()

        storage.wipe()  # a wiped storage forgets what it saw, and finds its tables again
        assert storage.has_table(table)
    finally:
        storage.dispose()


def _instance(home: Path, pooled: bool) -> dg.DagsterInstance:
    """An instance on files in `home`, with this project's event log or Dagster's own."""
    home.mkdir(parents=True, exist_ok=True)
    storage = (
        "  module: orchestration.event_log_storage\n  class: PooledSqliteEventLogStorage\n"
        if pooled
        else "  module: dagster._core.storage.event_log\n  class: SqliteEventLogStorage\n"
    ) + f"  config:\n    base_dir: {home / 'history' / 'runs'}\n"
    (home / "dagster.yaml").write_text(
        f"telemetry:\n  enabled: false\nevent_log_storage:\n{storage}"
    )
    return dg.DagsterInstance.from_config(str(home))


_days = dg.DailyPartitionsDefinition(start_date="2026-10-01", end_date="2026-10-05")


with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)  # backfill_policy, as in the pipeline

    @dg.asset(partitions_def=_days, backfill_policy=dg.BackfillPolicy.single_run())
    def daily_table(context) -> None:
        context.log.info(f"{len(context.partition_keys)} days")


@dg.asset_check(asset=daily_table, blocking=True)
def daily_table_rows() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"rows": 3})


def _what_a_run_stored(instance: dg.DagsterInstance) -> dict:
    """A range run of a 4-day asset and its check; what the run and the index hold after."""
    result = dg.materialize(
        [daily_table, daily_table_rows],
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": "2026-10-01",
            "dagster/asset_partition_range_end": "2026-10-04",
        },
    )
    assert result.success
    records = instance.get_records_for_run(result.run_id).records
    key = dg.AssetKey("daily_table")
    check_key = dg.AssetCheckKey(key, "daily_table_rows")
    return {
        "run_events": sorted(
            r.event_log_entry.dagster_event_type.value
            for r in records
            if r.event_log_entry.is_dagster_event
        ),
        "materialized": sorted(instance.get_materialized_partitions(key)),
        "check": [
            (r.status.value, r.run_id == result.run_id)
            for r in instance.event_log_storage.get_asset_check_execution_history(
                check_key, limit=10
            )
        ],
        "materializations": instance.get_run_stats(result.run_id).materializations,
    }


def test_stores_what_dagsters_own_storage_stores_in_batches(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(EVENT_BATCH_SIZE_ENV, raising=False)
    with _instance(tmp_path / "stock", pooled=False) as instance:
        expected = _what_a_run_stored(instance)

    commits = []
    original_commit = sqlalchemy.engine.Connection.commit

    def counted_commit(conn):
        commits.append(conn.engine.url.database)
        return original_commit(conn)

    monkeypatch.setattr(sqlalchemy.engine.Connection, "commit", counted_commit)
    with _instance(tmp_path / "pooled", pooled=True) as instance:
        # The storage turns Dagster's batching on for its process.
        assert os.environ[EVENT_BATCH_SIZE_ENV] == str(EVENT_BATCH_SIZE)
        stored = _what_a_run_stored(instance)
    assert stored == expected
    assert stored["materialized"] == ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04"]
    # Each event commits once per database it touches, a batch once for all its events:
    # fewer commits to the index than it holds events of these runs.
    index_commits = sum(1 for db_file in commits if db_file.endswith("index.db"))
    with sqlite3.connect(tmp_path / "pooled" / "history" / "runs" / "index.db") as con:
        (index_events,) = con.execute("select count(*) from event_logs").fetchone()
    assert 0 < index_commits < index_events


def test_a_failing_batch_stores_none_of_its_events(tmp_path: Path):
    storage = PooledSqliteEventLogStorage(base_dir=str(tmp_path / "runs"))
    try:
        run_id = "0f2a0c36-53c5-4b6e-9d0e-2a9a6c0b1f00"

        def planned(asset: str) -> EventLogEntry:
            event = dg.DagsterEvent(
                event_type_value=DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value,
                job_name="job",
                event_specific_data=AssetMaterializationPlannedData(dg.AssetKey(asset)),
            )
            return EventLogEntry(
                error_info=None,
                level=logging.DEBUG,
                user_message="",
                run_id=run_id,
                timestamp=time.time(),
                dagster_event=event,
            )

        storage.store_event_batch([planned("a"), planned("b")])
        assert len(storage.get_records_for_run(run_id).records) == 2

        with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the check raises
            storage.store_event_batch([planned("c"), "not an event"])  # type: ignore[list-item]
        # Neither database kept the first event of the failed batch.
        assert len(storage.get_records_for_run(run_id).records) == 2
        assert dg.AssetKey("c") not in storage.all_asset_keys()
        storage.store_event(planned("c"))  # and the storage is usable after it
        assert dg.AssetKey("c") in storage.all_asset_keys()
    finally:
        storage.dispose()


def test_migration_markers_answer_like_dagsters_and_are_read_once(tmp_path: Path, monkeypatch):
    storage = PooledSqliteEventLogStorage(base_dir=str(tmp_path / "runs"))
    stock = SqliteEventLogStorage(base_dir=str(tmp_path / "runs"))
    try:
        questions = [
            ("has_secondary_index", ASSET_KEY_INDEX_COLS),
            ("has_secondary_index", "no_such_migration"),
            ("has_asset_key_col", "last_materialization_timestamp"),
            ("has_asset_key_col", "cached_status_data"),
            ("has_asset_key_col", "no_such_column"),
        ]
        answers = [getattr(storage, method)(arg) for method, arg in questions]
        assert answers == [getattr(stock, method)(arg) for method, arg in questions]
        assert answers == [True, False, True, True, False]

        # What was once there is not looked up again; what was not is asked each time.
        def looked_up(*_args, **_kwargs):
            raise AssertionError("went to the database again")

        monkeypatch.setattr(SqlEventLogStorage, "has_secondary_index", looked_up)
        monkeypatch.setattr(SqlEventLogStorage, "_has_asset_key_col_on_connection", looked_up)
        assert storage.has_secondary_index(ASSET_KEY_INDEX_COLS)
        assert storage.has_asset_key_col("cached_status_data")
        assert storage.can_read_asset_status_cache()
        with pytest.raises(AssertionError, match="again"):
            storage.has_asset_key_col("no_such_column")
    finally:
        storage.dispose()
        stock.dispose()


def test_cdp_run_notes_an_instance_on_dagsters_stock_event_log(tmp_path: Path, monkeypatch):
    """A dagster.yaml of the user's own without the project's event_log_storage block still
    runs, on the stock log; `cdp run` says so, and says nothing on the project's own."""
    import shutil

    from orchestration.cli import stock_event_log_note

    own, stock = tmp_path / "own", tmp_path / "stock"
    own.mkdir()
    stock.mkdir()
    shutil.copy(Path(__file__).parents[2] / "orchestration" / "dagster.yaml", own / "dagster.yaml")
    (stock / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(own))
    with dg.DagsterInstance.get() as instance:
        assert stock_event_log_note(instance) is None
    monkeypatch.setenv("DAGSTER_HOME", str(stock))
    with dg.DagsterInstance.get() as instance:
        note = stock_event_log_note(instance)
        assert note is not None and "orchestration/dagster.yaml" in note and len(note) <= 160
