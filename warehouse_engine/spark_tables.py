"""Tables crossing between the local step store (DuckDB) and Spark's Parquet tables.

With `CDP_ENGINE=spark`, dbt builds staging, intermediate and marts on Spark; the Python
steps that have no Spark implementation yet (ingestion's writer, identity, predictions,
erasure, publishing) work on the run's DuckDB file as a local step store. Tables cross
in two directions, whole, at the step boundaries:

- what a Python step writes (raw.*, identity.*, predictions.*) goes to Spark as a Parquet
  folder under `<spark warehouse>/handoff/<schema>/<table>/` (`hand_off_tables`), which
  dbt registers as an external table before it builds;
- what dbt built on Spark (`<spark warehouse>/<schema>.db/<table>/`) comes back into the
  step store (`import_spark_tables`) for the Python steps and the BI copy that read it;
- an erasure, carried out in the step store, is written back over Spark's folders
  (`write_back_spark_tables`) so Spark keeps nothing of the person either.

Reading and writing Parquet folders needs no Spark session: DuckDB reads what Spark
wrote and writes what Spark reads (the hand-off's casts, `parquet_handoff`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from warehouse_engine.parquet_handoff import (
    HANDOFF_SCHEMAS,
    HandedOffTable,
    write_handoff_table,
)


class SparkTableError(RuntimeError):
    """A table Spark should have written is not where it should be; the message says which."""


@dataclass(frozen=True)
class ImportedTable:
    relation: str
    rows: int


def hand_off_tables(
    con: duckdb.DuckDBPyConnection, handoff_root: Path, relations: Iterable[str]
) -> list[HandedOffTable]:
    """Write each `schema.table` of the step store to its hand-off folder for Spark."""
    written = []
    for relation in relations:
        schema, table = relation.split(".", 1)
        written.append(write_handoff_table(con, schema, table, handoff_root))
    return written


def hand_off_schemas(
    con: duckdb.DuckDBPyConnection,
    handoff_root: Path,
    schemas: Iterable[str] = HANDOFF_SCHEMAS,
) -> list[HandedOffTable]:
    """Every base table of `schemas` in the step store, to Spark."""
    rows = con.execute(
        "select table_schema || '.' || table_name from information_schema.tables "
        "where table_type = 'BASE TABLE' and table_schema in (select unnest(?)) order by 1",
        [list(schemas)],
    ).fetchall()
    return hand_off_tables(con, handoff_root, [r[0] for r in rows])


def handed_off_relations(handoff_root: Path) -> list[str]:
    """`schema.table` of every hand-off folder present: what dbt on Spark can register."""
    if not handoff_root.is_dir():
        return []
    return sorted(
        f"{schema_dir.name}.{table_dir.name}"
        for schema_dir in handoff_root.iterdir()
        if schema_dir.is_dir()
        for table_dir in schema_dir.iterdir()
        if table_dir.is_dir() and not table_dir.name.startswith(".")
    )


def spark_table_folder(spark_warehouse: Path, relation: str) -> Path:
    """Where Spark keeps a managed table `schema.table` (spark.sql.warehouse.dir layout)."""
    schema, table = relation.split(".", 1)
    return spark_warehouse / f"{schema}.db" / table


def _parquet_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith((".", "_")))


def import_spark_tables(
    con: duckdb.DuckDBPyConnection, spark_warehouse: Path, relations: Iterable[str]
) -> list[ImportedTable]:
    """Replace each `schema.table` in the step store with what Spark built.

    A table Spark wrote without rows may have no Parquet file at all; its columns then
    come from the step store's previous copy (emptied), and a table with neither is an
    error that says so rather than a silently missing table.
    """
    imported = []
    for relation in relations:
        schema, table = relation.split(".", 1)
        folder = spark_table_folder(spark_warehouse, relation)
        if not folder.is_dir():
            raise SparkTableError(
                f"dbt reported {relation} built on Spark, but {folder} does not exist; "
                "check CDP_SPARK_WAREHOUSE points at the warehouse dbt-spark writes"
            )
        files = _parquet_files(folder)
        con.execute(f'create schema if not exists "{schema}"')
        if files:
            listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
            con.execute(
                f'create or replace table "{schema}"."{table}" as '
                f"select * from read_parquet([{listed}])"
            )
        else:
            exists = con.execute(
                "select count(*) from information_schema.tables "
                "where table_schema = ? and table_name = ?",
                [schema, table],
            ).fetchone()[0]
            if not exists:
                raise SparkTableError(
                    f"{relation} on Spark has no rows and no Parquet file ({folder}), and the "
                    "step store has no earlier copy to take its columns from"
                )
            con.execute(f'delete from "{schema}"."{table}"')
        rows = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
        imported.append(ImportedTable(relation, rows))
    return imported


def write_back_spark_tables(
    con: duckdb.DuckDBPyConnection, spark_warehouse: Path, relations: Iterable[str]
) -> list[str]:
    """Overwrite Spark's data files of each `schema.table` with the step store's rows.

    For an erasure: the step store's copy is Spark's table minus the erased person, with
    the column types it was read with, so Spark's catalog entry still describes it. The
    new file is written aside, then the old files are removed; the folder keeps no byte
    of the deleted rows.
    """
    rewritten = []
    for relation in relations:
        schema, table = relation.split(".", 1)
        folder = spark_table_folder(spark_warehouse, relation)
        if not folder.is_dir():
            continue
        old_files = [p for p in folder.iterdir() if p.is_file()]
        aside = folder / f".rewrite-{uuid.uuid4().hex}.tmp"
        con.execute(
            f'copy (select * from "{schema}"."{table}") to '
            f"'{str(aside).replace(chr(39), chr(39) * 2)}' (format parquet)"
        )
        final = folder / f"part-00000-{uuid.uuid4().hex}.parquet"
        aside.rename(final)
        for old in old_files:
            old.unlink()
        rewritten.append(relation)
    return rewritten


def spark_built_relations(spark_warehouse: Path, schemas: Iterable[str]) -> list[str]:
    """`schema.table` of every table folder Spark holds in `schemas`."""
    found = []
    for schema in schemas:
        schema_dir = spark_warehouse / f"{schema}.db"
        if schema_dir.is_dir():
            found.extend(
                f"{schema}.{p.name}"
                for p in sorted(schema_dir.iterdir())
                if p.is_dir() and not p.name.startswith((".", "_"))
            )
    return found


__all__ = [
    "ImportedTable",
    "SparkTableError",
    "hand_off_schemas",
    "hand_off_tables",
    "handed_off_relations",
    "import_spark_tables",
    "spark_built_relations",
    "spark_table_folder",
    "write_back_spark_tables",
]
