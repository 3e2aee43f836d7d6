"""Does ingestion on Spark give what DuckDB's loader gives? Row by row, value by value.

Compares a DuckDB warehouse's `raw.<table>`, `raw.rejects` and `raw.load_audit` with the
Parquet days `ingestion.spark_reading` committed under a raw root. DuckDB reads Spark's
Parquet files, so no Spark session is needed to compare.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingestion.contract import LINEAGE_COLUMNS, LOAD_AUDIT_COLUMNS, RAW_TABLES, REJECTS_COLUMNS
from ingestion.spark_reading import AUDIT, REJECTS, ROWS


@dataclass
class TableComparison:
    relation: str
    duckdb_rows: int
    spark_rows: int
    differing_rows: int
    examples: list[str] = field(default_factory=list)  # line numbers and columns, no values

    @property
    def same(self) -> bool:
        return self.differing_rows == 0 and self.duckdb_rows == self.spark_rows


def _parquet_rows(
    con: duckdb.DuckDBPyConnection, pattern: str, columns: str, where: str, order: str
) -> list[tuple]:
    if not glob.glob(pattern):
        return []
    return con.execute(
        f"SELECT {columns} FROM read_parquet('{pattern}', hive_partitioning = false) {where} ORDER BY {order}"
    ).fetchall()


def _compare(relation: str, names: list[str], duck: list[tuple], spark: list[tuple], key: int):
    differing, examples = 0, []
    for d_row, s_row in zip(duck, spark, strict=False):
        if d_row != s_row:
            differing += 1
            if len(examples) < 5:
                columns = [n for n, a, b in zip(names, d_row, s_row, strict=True) if a != b]
                examples.append(f"row at {names[key]}={d_row[key]}: {', '.join(columns)} differ")
    differing += abs(len(duck) - len(spark))
    return TableComparison(relation, len(duck), len(spark), differing, examples)


#: The columns that say when a load ran: they differ between two runs of the same zone.
LOAD_TIME_COLUMNS = ("_loaded_at", "rejected_at", "loaded_at")


def compare_raw(
    con: duckdb.DuckDBPyConnection,
    raw_root: Path,
    tables: list[str] | None = None,
    ignore_load_times: bool = False,
) -> list[TableComparison]:
    """Each raw table, its rejects and its audit rows: DuckDB's (`raw.*` of `con`) against
    Spark's (the days under `raw_root`). `ignore_load_times` leaves out when each load
    ran, for two separate runs of one zone."""
    raw_root = Path(raw_root)
    skip = LOAD_TIME_COLUMNS if ignore_load_times else ()
    results = []
    for name in tables or list(RAW_TABLES):
        spec = RAW_TABLES[name]
        names = [c.name for c in spec.columns] + [n for n, _ in LINEAGE_COLUMNS if n not in skip]
        columns = ", ".join(f"CAST({n} AS VARCHAR)" if _is_json(spec, n) else n for n in names)
        order = "_source_file, _line_number"
        duck = con.execute(f"SELECT {columns} FROM raw.{name} ORDER BY {order}").fetchall()
        spark = _parquet_rows(
            con, str(raw_root / name / "dt=*" / ROWS / "*.parquet"), columns, "", order
        )
        results.append(_compare(f"raw.{name}", names, duck, spark, names.index("_line_number")))

        for relation, wanted, folder, order in (
            ("raw.rejects", REJECTS_COLUMNS, REJECTS, "source_file, line_number"),
            ("raw.load_audit", LOAD_AUDIT_COLUMNS, AUDIT, "dt, source_file"),
        ):
            names = [n for n, _ in wanted if n not in skip]
            columns = ", ".join(names)
            where = f"WHERE source_table = '{name}'"
            duck = con.execute(
                f"SELECT {columns} FROM {relation} {where} ORDER BY {order}"
            ).fetchall()
            pattern = str(raw_root / name / "dt=*" / folder / "*.parquet")
            spark = _parquet_rows(con, pattern, columns, where, order)
            key = names.index("line_number" if folder == REJECTS else "source_file")
            results.append(_compare(f"{relation} ({name})", names, duck, spark, key))
    return results


def _is_json(spec, name: str) -> bool:
    return any(c.name == name and c.type == "JSON" for c in spec.columns)


def raw_rows_holding(raw_root: Path, values: list[str], skip: tuple[str, ...] = ()) -> int:
    """Rows of Spark's committed raw days (rows and rejects, every table but `skip`) whose
    text, lower-cased, contains one of `values` (lower-case): after an erasure, none may
    hold the person's email or phone. The values are never printed."""
    if not values:
        return 0
    found = 0
    with duckdb.connect() as con:
        for table in RAW_TABLES:
            if table in skip:
                continue
            for folder in (ROWS, REJECTS):
                pattern = str(Path(raw_root) / table / "dt=*" / folder / "*.parquet")
                if not glob.glob(pattern):
                    continue
                (n,) = con.execute(
                    f"SELECT count(*) FROM read_parquet('{pattern}', hive_partitioning = false) t "
                    "WHERE list_bool_or([contains(lower(CAST(t AS VARCHAR)), v) FOR v IN ?])",
                    [list(values)],
                ).fetchone()
                found += n
    return found
