"""Do DuckDB and Spark hold the same tables? Numbers both sides can be reduced to.

Per table: the row count, and per column the NULL count and, for numeric columns, the sum
(revenue, counts, scores: a wrong join or a dialect difference moves one of them). Both
sides are read with DuckDB: the DuckDB warehouse directly, Spark's tables from the
Parquet folders it wrote (`<spark warehouse>/<schema>.db/<table>/`), so no second
Spark session is needed to check the first one. Aggregates only: no row values leave
either side, so a difference report holds no personal data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

COMPARED_SCHEMAS = ("staging", "intermediate", "marts")
NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "DOUBLE", "FLOAT")
# Floating-point sums differ in the last bits when the engines add in another order.
RELATIVE_TOLERANCE = 1e-9


@dataclass
class TableFingerprint:
    rows: int
    nulls: dict[str, int] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)


def _is_numeric(data_type: str) -> bool:
    return data_type.startswith(NUMERIC_TYPES) or data_type.startswith("DECIMAL")


def _fingerprint(con: duckdb.DuckDBPyConnection, relation: str) -> TableFingerprint:
    columns = con.execute(f"describe select * from {relation}").fetchall()
    parts = ["count(*)"]
    for name, data_type, *_ in columns:
        parts.append(f'count(*) - count("{name}")')
        if _is_numeric(data_type):
            parts.append(f'cast(sum("{name}") as double)')
    values = list(con.execute(f"select {', '.join(parts)} from {relation}").fetchone())
    fingerprint = TableFingerprint(rows=values.pop(0))
    for name, data_type, *_ in columns:
        fingerprint.nulls[name] = values.pop(0)
        if _is_numeric(data_type):
            fingerprint.sums[name] = values.pop(0)
    return fingerprint


def duckdb_fingerprints(
    duckdb_file: Path, schemas: tuple[str, ...] = COMPARED_SCHEMAS
) -> dict[str, TableFingerprint]:
    """`schema.table` -> fingerprint, for every base table of `schemas`."""
    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_schema in (select unnest(?)) order by 1, 2",
            [list(schemas)],
        ).fetchall()
        return {f"{s}.{t}": _fingerprint(con, f'"{s}"."{t}"') for s, t in tables}


def spark_fingerprints(
    spark_warehouse: Path, schemas: tuple[str, ...] = COMPARED_SCHEMAS
) -> dict[str, TableFingerprint]:
    """The same for the tables Spark wrote under its warehouse folder (views have none)."""
    found = {}
    with duckdb.connect() as con:
        for schema in schemas:
            schema_dir = spark_warehouse / f"{schema}.db"
            if not schema_dir.is_dir():
                continue
            for folder in sorted(p for p in schema_dir.iterdir() if p.is_dir()):
                files = sorted(folder.glob("*.parquet"))
                relation = (
                    f"read_parquet({[str(f) for f in files]!r})"
                    if files
                    else None  # a table Spark wrote with no rows may have no file
                )
                found[f"{schema}.{folder.name}"] = (
                    _fingerprint(con, relation) if relation else TableFingerprint(rows=0)
                )
    return found


def differences(
    duckdb_side: dict[str, TableFingerprint], spark_side: dict[str, TableFingerprint]
) -> list[str]:
    """One line per difference: a table on one side only, a row count, a NULL count or
    a column sum that differs. Empty when the two sides agree."""
    found = []
    for table in sorted(set(duckdb_side) | set(spark_side)):
        if table not in spark_side:
            found.append(f"{table}: built on duckdb, missing on spark")
            continue
        if table not in duckdb_side:
            found.append(f"{table}: built on spark, missing on duckdb")
            continue
        a, b = duckdb_side[table], spark_side[table]
        if a.rows != b.rows:
            found.append(f"{table}: {a.rows} rows on duckdb, {b.rows} on spark")
            continue
        if b.rows == 0:
            continue
        for column, nulls in a.nulls.items():
            if column not in b.nulls:
                found.append(f"{table}.{column}: missing on spark")
            elif nulls != b.nulls[column]:
                found.append(
                    f"{table}.{column}: {nulls} NULLs on duckdb, {b.nulls[column]} on spark"
                )
        for column, total in a.sums.items():
            other = b.sums.get(column)
            if total is None and other is None:
                continue
            if (
                total is None
                or other is None
                or not math.isclose(total, other, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-9)
            ):
                found.append(f"{table}.{column}: sum {total} on duckdb, {other} on spark")
    return found


def rejects_per_table(warehouse: Path) -> dict[str, int]:
    """`raw.rejects` rows per source table of a DuckDB warehouse."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return dict(
            con.execute("select source_table, count(*) from raw.rejects group by 1").fetchall()
        )


def customer_partition(con: duckdb.DuckDBPyConnection, relation: str) -> set[frozenset]:
    """Source records of a customer_identity_map grouped by golden customer, without the
    customer ids themselves: two engines agree on who is whom when these sets are equal,
    whatever labels their ids got."""
    groups: dict[str, set] = {}
    for system, record, customer in con.execute(
        f"select source_system, source_record_id, customer_id from {relation}"
    ).fetchall():
        groups.setdefault(customer, set()).add((system, record))
    return {frozenset(g) for g in groups.values()}


def identity_partitions(duckdb_file: Path, spark_warehouse: Path) -> tuple[set, set]:
    """The partition of records into customers in the DuckDB warehouse and in Spark's
    `marts.customer_identity_map` folder."""
    folder = spark_warehouse / "marts.db" / "customer_identity_map"
    with duckdb.connect() as con:
        con.execute(f"attach '{duckdb_file}' as duck (read_only)")
        return (
            customer_partition(con, "duck.marts.customer_identity_map"),
            customer_partition(con, f"read_parquet('{folder}/*.parquet')"),
        )


def published_columns(warehouse: Path) -> dict[str, list[str]]:
    """`mart -> columns` of the BI copy next to a warehouse, read from `bi.duckdb`; raises
    when `bi_parquet/<mart>.parquet` does not hold the same tables and columns."""
    bi_file, parquet_dir = warehouse.parent / "bi.duckdb", warehouse.parent / "bi_parquet"
    with duckdb.connect(str(bi_file), read_only=True) as con:
        tables = {
            t: [c[0] for c in con.execute(f'describe marts."{t}"').fetchall()]
            for (t,) in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'marts' order by 1"
            ).fetchall()
        }
        files = {
            f.stem: [c[0] for c in con.execute(f"describe from read_parquet('{f}')").fetchall()]
            for f in sorted(parquet_dir.glob("*.parquet"))
        }
    if files != tables:
        raise AssertionError(f"{parquet_dir} and {bi_file} hold different tables or columns")
    return tables


def quality_outcomes(quality_docs_dir: Path) -> dict[str, dict]:
    """Each GX suite's latest stored result per scope, reduced to what both engines must
    agree on: passed or not, and each expectation's success and unexpected count; plus
    `computed_by`, the engine that computed the frame GX validated.

    Read from the validation store the quality runner writes
    (`<docs>/_gx_store/validations/<suite>/<scope>/<run time>/<batch>.json`); the results
    are masked there, and only counts are kept here. Keys: `<suite> <scope>`.
    """
    import json

    store = Path(quality_docs_dir) / "_gx_store" / "validations"
    latest: dict[tuple[str, str], Path] = {}
    for path in store.glob("*/*/*/*.json"):
        suite, scope, run_time = path.parts[-4], path.parts[-3], path.parts[-2]
        key = (suite, scope)
        if key not in latest or run_time > latest[key].parts[-2]:
            latest[key] = path
    outcomes = {}
    for (suite, scope), path in sorted(latest.items()):
        result = json.loads(path.read_text(encoding="utf-8"))
        expectations = sorted(
            (
                r["expectation_config"]["type"],
                str(
                    r["expectation_config"]["kwargs"].get("column")
                    or r["expectation_config"]["kwargs"].get("column_A")
                    or ""
                ),
                bool(r["success"]),
                (r.get("result") or {}).get("unexpected_count"),
            )
            for r in result["results"]
        )
        outcomes[f"{suite} {scope}"] = {
            "success": bool(result["success"]),
            "expectations": expectations,
            "computed_by": (result.get("meta") or {}).get("frame_computed_by"),
        }
    return outcomes
