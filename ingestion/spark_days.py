"""Ingestion on Spark inside a run: Spark's committed raw days and the local step store.

With `CDP_ENGINE=spark`, the raw assets load the landing zone on Spark
(`ingestion.spark_reading.load_partitions_on_spark`): each day is committed as Parquet
under `<raw root>/<table>/dt=<day>/{rows,rejects,load_audit}/`, and dbt on Spark and the
quality frames read those folders (`raw_relation_locations`). The Python steps that have
no Spark implementation yet (identity's bookkeeping, predictions, erasure, the run
summary, publishing) read `raw.*` from the run's DuckDB step store, so each committed day
is then copied into it (`import_committed_days`), replacing the day there as DuckDB's
loader would. The copy is Spark's output, never a second load: the step store holds what
Spark read, typed and quarantined.

An erasure, carried out in the step store, is written back over Spark's day folders
(`rewrite_days_from_step_store`), each day replaced by one rename as a load commits it.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from ingestion.contract import (
    LINEAGE_COLUMNS,
    LOAD_AUDIT_COLUMNS,
    RAW_SCHEMA,
    RAW_TABLES,
    REJECTS_COLUMNS,
)
from ingestion.errors import PartitionLoadError
from ingestion.load import ensure_raw_schema
from ingestion.load_results import PartitionLoadResult
from ingestion.load_session import fetched_count, sql_literal
from ingestion.partition_commit import LOAD_AUDIT_TABLE, REJECTS_TABLE
from ingestion.spark_reading import (
    AUDIT,
    REJECTS,
    ROWS,
    day_dir,
    load_audit_path,
    load_partitions_on_spark,
    raw_rows_path,
    rejects_path,
    replace_day_folder,
)
from ingestion.suppression import suppression_hashes


def load_partitions_through_spark(
    con: duckdb.DuckDBPyConnection,
    spark: Any,
    table: str,
    dts: Iterable[date],
    landing_dir: Path,
    raw_root: Path,
    **options: Any,
) -> list[PartitionLoadResult]:
    """Load days of `table` on Spark into `raw_root`, then copy each committed day into
    the step store `con` (`raw.<table>`, `raw.rejects`, `raw.load_audit`).

    `options` are `load_partitions_on_spark`'s (`loaded_at`, `allow_shrink`,
    `settle_seconds`, `settle_max_wait_seconds`). The rows of erased people are left out
    on Spark, from the step store's suppression list. Outcomes as
    `ingestion.load.load_partitions`: the results in date order, or the first failing
    day's `PartitionLoadError` raised after the days that committed on Spark were copied
    too (`completed`), so both places hold the same days.
    """
    hashes = suppression_hashes(con)
    try:
        results = load_partitions_on_spark(
            spark, table, dts, landing_dir, raw_root, suppressed_hashes=hashes, **options
        )
    except PartitionLoadError as exc:
        import_committed_days(con, raw_root, table, _committed(exc.completed))
        raise
    import_committed_days(con, raw_root, table, _committed(results))
    return results


def _committed(results: Iterable[PartitionLoadResult]) -> list[date]:
    return [r.dt for r in results if r.status == "loaded"]


def _parquet(folder: Path) -> str:
    return f"read_parquet({sql_literal(str(folder / '*.parquet'))}, hive_partitioning = false)"


def import_committed_days(
    con: duckdb.DuckDBPyConnection, raw_root: Path, table: str, days: Iterable[date]
) -> int:
    """Replace each of `days` of `table` in the step store with the day Spark committed:
    its rows, rejects and audit rows, in one transaction. Returns the raw rows copied."""
    days = sorted(set(days))
    if not days:
        return 0
    spec = RAW_TABLES[table]
    rows_columns = ", ".join([c.name for c in spec.columns] + [n for n, _ in LINEAGE_COLUMNS])
    table_sql = sql_literal(table)
    copied = 0
    ensure_raw_schema(con)
    con.execute("BEGIN TRANSACTION")
    try:
        for dt in days:
            folder = day_dir(raw_root, table, dt)
            dt_sql = f"DATE '{dt.isoformat()}'"
            con.execute(f"DELETE FROM {spec.qualified_name} WHERE _dt = {dt_sql}")
            for name in (REJECTS_TABLE, LOAD_AUDIT_TABLE):
                con.execute(
                    f"DELETE FROM {name} WHERE source_table = {table_sql} AND dt = {dt_sql}"
                )
            copied += fetched_count(
                con.execute(
                    f"INSERT INTO {spec.qualified_name} ({rows_columns}) "
                    f"SELECT {rows_columns} FROM {_parquet(folder / ROWS)}"
                )
            )
            for name, columns, sub in (
                (REJECTS_TABLE, REJECTS_COLUMNS, REJECTS),
                (LOAD_AUDIT_TABLE, LOAD_AUDIT_COLUMNS, AUDIT),
            ):
                listed = ", ".join(n for n, _ in columns)
                con.execute(
                    f"INSERT INTO {name} ({listed}) SELECT {listed} FROM {_parquet(folder / sub)}"
                )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return copied


def committed_days(raw_root: Path, table: str) -> list[date]:
    """The days of `table` committed under `raw_root` (hidden work folders ignored)."""
    folder = Path(raw_root) / table
    if not folder.is_dir():
        return []
    return sorted(
        date.fromisoformat(p.name[3:])
        for p in folder.iterdir()
        if p.is_dir() and p.name.startswith("dt=")
    )


def raw_relation_locations(raw_root: Path) -> dict[str, str]:
    """Where Spark reads each `raw.*` relation that has a committed day: a glob over the
    day folders (Spark's file reader and a table's LOCATION both take one). `raw.rejects`
    and `raw.load_audit` gather every table's days."""
    tables = [t for t in RAW_TABLES if committed_days(raw_root, t)]
    locations = {f"{RAW_SCHEMA}.{t}": raw_rows_path(raw_root, t) for t in tables}
    if tables:
        locations[f"{RAW_SCHEMA}.rejects"] = rejects_path(raw_root)
        locations[f"{RAW_SCHEMA}.load_audit"] = load_audit_path(raw_root)
    return locations


def rewrite_days_from_step_store(con: duckdb.DuckDBPyConnection, raw_root: Path) -> int:
    """Write every committed day of every table over Spark's copy from the step store's
    `raw.*` (after an erasure there): rows, rejects and audit rows, each day replaced by
    one rename, so Spark's folders keep no byte of a deleted row. Returns the days."""
    rejects = ", ".join(n for n, _ in REJECTS_COLUMNS)
    audit = ", ".join(n for n, _ in LOAD_AUDIT_COLUMNS)
    rewritten = 0
    for table, spec in RAW_TABLES.items():
        days = committed_days(raw_root, table)
        if not days:
            continue
        rows_columns = (
            ", ".join(
                f"CAST({c.name} AS VARCHAR) AS {c.name}" if c.type == "JSON" else c.name
                for c in spec.columns
            )
            + ", "
            + ", ".join(n for n, _ in LINEAGE_COLUMNS)
        )
        for dt in days:
            final = day_dir(raw_root, table, dt)
            staging = final.with_name(f".{final.name}.erased-{uuid.uuid4().hex[:8]}")
            staging.mkdir()
            dt_sql = f"DATE '{dt.isoformat()}'"
            of_table = f"source_table = {sql_literal(table)} AND dt = {dt_sql}"
            try:
                for sub, select in (
                    (
                        ROWS,
                        f"SELECT {rows_columns} FROM {spec.qualified_name} WHERE _dt = {dt_sql}",
                    ),
                    (REJECTS, f"SELECT {rejects} FROM {REJECTS_TABLE} WHERE {of_table}"),
                    (AUDIT, f"SELECT {audit} FROM {LOAD_AUDIT_TABLE} WHERE {of_table}"),
                ):
                    (staging / sub).mkdir()
                    target = sql_literal(str(staging / sub / "part-0.parquet"))
                    con.execute(f"COPY ({select}) TO {target} (FORMAT parquet)")
                replace_day_folder(raw_root, table, dt, staging)
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
            rewritten += 1
    return rewritten


__all__ = [
    "committed_days",
    "import_committed_days",
    "load_partitions_through_spark",
    "raw_relation_locations",
    "rewrite_days_from_step_store",
]
