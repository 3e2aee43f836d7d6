"""The project's SQLite event log (orchestration/event_log_storage.py) on real files."""

from __future__ import annotations

from pathlib import Path

from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable

from orchestration.event_log_storage import PooledSqliteEventLogStorage


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
