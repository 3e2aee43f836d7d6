"""Hand the tables the Python steps write (raw.*, identity.*, predictions.*) to Spark.

In this slice ingestion, identity and predictions still run on DuckDB; dbt on Spark reads
their output from Parquet folders `<spark warehouse>/handoff/<schema>/<table>/`, which
the dbt macro `register_handoff_tables` (on-run-start, Spark only) registers as external
tables. Each folder is written aside and renamed into place, so Spark never reads half a
table. The files hold what the warehouse holds (personal data included): owner-only.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

HANDOFF_SCHEMAS = ("raw", "identity", "predictions")

# DuckDB types Spark's Parquet reader refuses or reads differently, and what they become:
# nanosecond timestamps (pandas writes them) are illegal in Spark, JSON is text to it, and a
# column of only NULLs that pandas created has DuckDB's NULL type, which Parquet cannot hold.
SPARK_READABLE_TYPES = {
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    "JSON": "varchar",
    '"NULL"': "varchar",
    "NULL": "varchar",
    "HUGEINT": "decimal(38, 0)",
    "UUID": "varchar",
}


@dataclass(frozen=True)
class HandedOffTable:
    schema: str
    table: str
    rows: int
    folder: Path


def _spark_readable_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str:
    columns = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    return ", ".join(
        f'cast("{name}" as {SPARK_READABLE_TYPES[data_type]}) as "{name}"'
        if data_type in SPARK_READABLE_TYPES
        else f'"{name}"'
        for name, data_type in columns
    )


def private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


def write_handoff_table(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, handoff_root: Path
) -> HandedOffTable:
    """One table of the DuckDB connection to `<handoff_root>/<schema>/<table>/`, written
    aside and renamed into place (Spark never reads half a table)."""
    # Naive timestamps in the contract are UTC; a TIMESTAMPTZ is cast to UTC, not local.
    con.execute("set TimeZone = 'UTC'")
    private_dir(handoff_root)
    schema_dir = handoff_root / schema
    private_dir(schema_dir)
    final = schema_dir / table
    aside = schema_dir / f".{table}.{uuid.uuid4().hex}.tmp"
    private_dir(aside)
    con.execute(
        f"copy (select {_spark_readable_columns(con, schema, table)} "
        f'from "{schema}"."{table}") to '
        f"'{aside / 'part-0.parquet'}' (format parquet)"
    )
    rows = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
    old = schema_dir / f".{table}.{uuid.uuid4().hex}.old"
    if final.exists():
        final.rename(old)
    aside.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return HandedOffTable(schema, table, rows, final)


def write_relation_parquet(con: duckdb.DuckDBPyConnection, relation: str, folder: Path) -> int:
    """Any relation of the connection (a temp table too) to `folder/part-0.parquet`, with
    the types Spark reads (above); owner-only. Returns the rows written."""
    con.execute("set TimeZone = 'UTC'")
    private_dir(folder)
    columns = ", ".join(
        f'cast("{name}" as {SPARK_READABLE_TYPES[data_type]}) as "{name}"'
        if data_type in SPARK_READABLE_TYPES
        else f'"{name}"'
        for name, data_type, *_ in con.execute(f"describe {relation}").fetchall()
    )
    con.execute(
        f"copy (select {columns} from {relation}) to '{folder / 'part-0.parquet'}' (format parquet)"
    )
    return con.execute(f"select count(*) from {relation}").fetchone()[0]


def export_handoff_tables(
    duckdb_file: Path, handoff_root: Path, schemas: tuple[str, ...] = HANDOFF_SCHEMAS
) -> list[HandedOffTable]:
    """Copy every base table of `schemas` in the DuckDB file to one Parquet folder each,
    replacing what an earlier hand-off left; folders of tables that no longer exist go."""
    private_dir(handoff_root)
    written: list[HandedOffTable] = []
    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_schema in (select unnest(?)) "
            "order by 1, 2",
            [list(schemas)],
        ).fetchall()
        for schema, table in tables:
            written.append(write_handoff_table(con, schema, table, handoff_root))
    kept = {(t.schema, t.table) for t in written}
    for schema in schemas:
        schema_dir = handoff_root / schema
        if not schema_dir.is_dir():
            continue
        for folder in schema_dir.iterdir():
            if folder.is_dir() and (schema, folder.name) not in kept:
                shutil.rmtree(folder)
    return written
