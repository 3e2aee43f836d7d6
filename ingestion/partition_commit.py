"""The partition transaction: raw rows, rejects (quarantine) and audit rows, all or nothing."""

from __future__ import annotations

from datetime import date, datetime

import duckdb

from ingestion.contract import LOAD_AUDIT_COLUMNS, RAW_SCHEMA, RawTable
from ingestion.errors import ShrinkRefusedError
from ingestion.file_reading import ParsedFile
from ingestion.load_results import FileLoadStats
from ingestion.load_session import fetched_count, sql_literal

REJECTS_TABLE = f"{RAW_SCHEMA}.rejects"


LOAD_AUDIT_TABLE = f"{RAW_SCHEMA}.load_audit"


def replace_partition(
    con: duckdb.DuckDBPyConnection,
    spec: RawTable,
    dt: date,
    parsed: list[ParsedFile],
    skipped: list[FileLoadStats],
    loaded_at: datetime,
    allow_shrink: bool,
) -> list[FileLoadStats]:
    """Swap the day's rows in raw.<table>, raw.rejects and raw.load_audit, all or nothing.

    All files of the day go in with one INSERT per target table: a large enough append is
    written straight to the database file, compressed once, instead of through the WAL.
    The counts the inserts report are checked against the per-file counts before COMMIT.
    Inside the same transaction, before deleting anything, the day's current record count
    is compared with the new one: a shrink is refused unless `allow_shrink`.
    """
    column_names = ", ".join(c.name for c in spec.columns)
    dt_sql = f"DATE '{dt.isoformat()}'"
    loaded_sql = f"TIMESTAMP '{loaded_at.isoformat(sep=' ')}'"
    table_sql = sql_literal(spec.name)
    with_rows = [item for item in parsed if item.parsed_table]
    good_rows = " UNION ALL ".join(
        f"SELECT {column_names}, {dt_sql}, {sql_literal(item.source_file)}, ln, {loaded_sql} "
        f"FROM {item.parsed_table} WHERE reject_reason IS NULL"
        for item in with_rows
    )
    bad_rows = " UNION ALL ".join(
        f"SELECT {table_sql}, {dt_sql}, {sql_literal(item.source_file)}, ln, reject_column, "
        f"record, reject_reason, {loaded_sql} "
        f"FROM {item.parsed_table} WHERE reject_reason IS NOT NULL"
        for item in with_rows
    )
    stats = [item.stats() for item in parsed]
    for s in stats:
        if s.rows_read != s.rows_loaded + s.rows_rejected + s.rows_suppressed:
            raise RuntimeError(
                f"{s.source_file}: read {s.rows_read} records but typed {s.rows_loaded} and "
                f"rejected {s.rows_rejected}; this is a loader bug, nothing was written"
            )
    rows_now = sum(s.rows_read for s in stats)

    con.execute("BEGIN TRANSACTION")
    try:
        (rows_before,) = con.execute(
            f"SELECT (SELECT count(*) FROM {spec.qualified_name} WHERE _dt = {dt_sql}) + "
            f"(SELECT count(*) FROM {REJECTS_TABLE} WHERE source_table = {table_sql} "
            f"AND dt = {dt_sql})"
        ).fetchone()
        if rows_now < rows_before and not allow_shrink:
            raise shrink_refused_error(spec, dt, rows_before, rows_now, len(stats))
        day = f"source_table = {table_sql} AND dt = {dt_sql}"
        if rows_before:  # counted in this transaction: a first load has nothing to delete
            con.execute(f"DELETE FROM {spec.qualified_name} WHERE _dt = {dt_sql}")
            con.execute(f"DELETE FROM {REJECTS_TABLE} WHERE {day}")
        # Audit rows exist without rows or rejects, too (a day of empty or skipped files).
        con.execute(f"DELETE FROM {LOAD_AUDIT_TABLE} WHERE {day}")
        loaded = rejected = 0
        if with_rows:
            loaded = fetched_count(
                con.execute(
                    f"INSERT INTO {spec.qualified_name} "
                    f"({column_names}, _dt, _source_file, _line_number, _loaded_at) {good_rows}"
                )
            )
            rejected = fetched_count(con.execute(f"INSERT INTO {REJECTS_TABLE} {bad_rows}"))
        if (loaded, rejected) != (
            sum(s.rows_loaded for s in stats),
            sum(s.rows_rejected for s in stats),
        ):
            raise RuntimeError(
                f"{spec.name} dt={dt}: wrote {loaded} rows and {rejected} rejects, which does "
                "not match the per-file counts; this is a loader bug, nothing was committed"
            )
        audit = stats + skipped
        if audit:
            names = [name for name, _ in LOAD_AUDIT_COLUMNS]
            con.executemany(
                f"INSERT INTO {LOAD_AUDIT_TABLE} ({', '.join(names)}) "
                f"VALUES ({', '.join('?' for _ in names)})",
                audit_rows(spec, dt, audit, loaded_at),
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return stats + skipped


def audit_rows(
    spec: RawTable, dt: date, stats: list[FileLoadStats], loaded_at: datetime
) -> list[list]:
    """The day's `raw.load_audit` rows, one per file or skipped entry, in the order of
    `LOAD_AUDIT_COLUMNS` (DuckDB inserts them; Spark's commit writes them as Parquet)."""
    return [
        [
            spec.name,
            dt,
            s.source_file,
            s.rows_read,
            s.rows_loaded,
            s.rows_rejected,
            loaded_at,
            s.lines_in_file,
            s.header_lines,
            s.blank_lines,
            s.continuation_lines,
            s.note,
            s.rows_suppressed,
        ]
        for s in stats
    ]


def shrink_refused_error(
    spec: RawTable, dt: date, rows_before: int, rows_now: int, n_files: int
) -> ShrinkRefusedError:
    """The refusal of a re-load that would shrink a day: the day holds `rows_before`
    records (loaded + rejected) and its landing folder now yields `rows_now` in `n_files`
    files. Both engines' loaders raise it before replacing anything."""
    what = (
        "no data file at all (an empty, missing or unmounted landing folder?)"
        if n_files == 0
        else f"{rows_now:,} record(s) in {n_files} file(s)"
    )
    return ShrinkRefusedError(
        spec.name,
        dt,
        f"{spec.name} dt={dt.isoformat()} holds {rows_before:,} record(s) in raw (loaded + "
        f"rejected) but its landing folder now yields {what}: re-loading would shrink the "
        "day, so nothing was replaced and the day keeps its previous contents. If the "
        "landing zone is incomplete (not mounted, files missing), fix that and re-run the "
        "day; if the source really withdrew rows, re-run it with `cdp run --allow-shrink` "
        "(in the Dagster UI: run config `allow_shrink: true` on the raw asset).",
        rows_before=rows_before,
        rows_now=rows_now,
    )
