"""Ingestion's typing and reject rules on Spark against DuckDB, value by value (issue 15).

    nice .venv/bin/python bench/spark_typing.py            # 200 customers, 3 days, --bad

The loader's rules (types, domains, formats, required columns, the reject sentence) are
one definition, `ingestion/column_typing.py`: `typed_select` renders them for DuckDB and
`spark_typed_select` transpiles that SQL for Spark (sqlglot, plus the two constructs whose
meaning differs). This bench feeds both engines the same staged text and compares every
output value of every line: typed columns, `reject_column`, `reject_reason`, the kept raw
record.

The staged text is every field of every delivered line of a generated zone with bad rows
(`cdp generate --bad --erasure-requests 3`), read as text by DuckDB (lines the CSV or
JSON reader cannot split are skipped: splitting is the reader's job, not the rules'), plus edge values put into every column
(blank, padded, decimals, offsets, words, out-of-domain values). What it does NOT cover:
the reader before the typing (splitting CSV lines, quotes, multi-line records, JSON
parsing, line accounting, the partition commit): `bench/spark_ingest.py` and
tests/ingestion/test_spark_reading.py compare the whole Spark reader
(ingestion/spark_reading.py) with DuckDB's loader. This session leaves
spark.sql.timestampType at its default; the pipeline's session sets TIMESTAMP_NTZ, which
only the reader's test covers.

Prints the figures and writes bench/results/spark_typing.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from bench import cdp_runs  # noqa: E402
from ingestion.column_typing import spark_typed_select, typed_select  # noqa: E402
from ingestion.contract import RAW_TABLES, RawTable  # noqa: E402

EDGE_VALUES = [
    None,
    "",
    "   ",
    " 12 ",
    "12.0",
    "12.5",
    "-3",
    "+7",
    "1e3",
    "abc",
    "TRUE",
    " yes ",
    "N",
    "2026-10-01T09:30:00Z",
    "2026-10-01T09:30:00+02:00",
    "2026-10-01 09:30:00",
    "2026-10-01",
    "2026-13-01T00:00:00Z",
    "01/10/2026",
    " PAID ",
    "Ada.Lovelace@Example.com ",
    "not an email",
    "+44 20 7946 0958",
    'it\'s "quoted"',
    "line\nbreak",
    "usd",
    "99999999999999999999",
    # timestamps other producers write (bench/hostile_zone.py; the engines' casts differ)
    "2026-10-01T09:30Z",
    "2026-10-01 09:30+02:00",
    "2026-10-01T09:30:00 +02:00",
    "2026-10-01T24:00:00Z",
    "2026-10-01T09:30:00CET",
    "2026-10-01 09:30:00 UTC",
    "+2026-10-01T09:30:00Z",
    "2026-10-01 09",
    "2026-10",
    "2026-10-01T09:30:00.123456789+0530",
    "2026-1-2T9:05:00-04",
]


def _sql_text(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def staged_text(con: duckdb.DuckDBPyConnection, spec: RawTable, zone: Path) -> str:
    """A table `staged_<name>` of text rows shaped as the reader hands them to the typing:
    ln, record, odd_quotes, structure_error, s_<column> for every contract column."""
    files = sorted((zone / spec.landing_path).glob(f"dt=*/*.{spec.file_format}*"))
    listed = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    if spec.file_format == "csv":
        header = {
            c[0]
            for c in con.execute(
                f"describe select * from read_csv({listed}, all_varchar = true, header = true, ignore_errors = true, "
                "union_by_name = true)"
            ).fetchall()
        }
        fields = ", ".join(
            (f'"{c.source_name}"' if c.source_name in header else "NULL") + f" AS s_{c.name}"
            for c in spec.columns
        )
        source = f"read_csv({listed}, all_varchar = true, header = true, ignore_errors = true, union_by_name = true)"
    else:
        fields = ", ".join(
            (
                f"json_extract(json, '$.{c.source_name}')::varchar"
                if c.type == "JSON"
                else f"json_extract_string(json, '$.{c.source_name}')"
            )
            + f" AS s_{c.name}"
            for c in spec.columns
        )
        source = f"read_json_objects({listed}, ignore_errors = true)"
    con.execute(
        f"create or replace table staged_{spec.name} as "
        f"select row_number() over () as ln, {fields} from {source}"
    )
    names = [c.name for c in spec.columns]
    base = con.execute(f"select * from staged_{spec.name} order by ln limit 1").fetchone()
    base_values = dict(zip(["ln", *[f"s_{n}" for n in names]], base, strict=True))
    next_ln = con.execute(f"select count(*) from staged_{spec.name}").fetchone()[0] + 1
    edge_rows = []
    for name in names:
        for value in EDGE_VALUES:
            row = {**base_values, "ln": next_ln, f"s_{name}": value}
            edge_rows.append(
                f"select {next_ln} as ln, "
                + ", ".join(f"{_sql_text(row[k])} as {k}" for k in row if k != "ln")
            )
            next_ln += 1
    con.execute(f"insert into staged_{spec.name} " + " union all ".join(edge_rows))
    text_columns = ", ".join(f"s_{n}" for n in names)
    con.execute(
        f"create or replace table staged_{spec.name} as select ln, "
        f"concat_ws(',', {', '.join(f'coalesce(s_{n}, {chr(39)}{chr(39)})' for n in names)}) "
        f"as record, false as odd_quotes, cast(null as varchar) as structure_error, "
        f"{text_columns} from staged_{spec.name}"
    )
    return f"staged_{spec.name}"


def _comparable(value):
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="spark-typing-"))
    zone = work / "landing"
    cdp_runs.generate_landing(
        zone, args.customers, args.days, args.seed, dict(os.environ), erasure_requests=3, bad=True
    )
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    started = time.monotonic()
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(args.master)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark_start = time.monotonic() - started

    tables = {}
    for spec in RAW_TABLES.values():
        if not list((zone / spec.landing_path).glob(f"dt=*/*.{spec.file_format}*")):
            print(f"{spec.name:24s} no files delivered in this zone")
            continue
        staged = staged_text(con, spec, zone)
        parquet = work / f"{staged}.parquet"
        con.execute(f"copy {staged} to '{parquet}' (format parquet)")
        duck_rows = con.execute(
            f"WITH counted AS (SELECT * FROM {staged}) {typed_select(spec, 'counted')} ORDER BY ln"
        ).fetchall()
        columns = [d[0] for d in con.description]
        spark.read.parquet(str(parquet)).createOrReplaceTempView(staged)
        t0 = time.monotonic()
        spark_rows = [
            tuple(r) for r in spark.sql(spark_typed_select(spec, staged) + " ORDER BY ln").collect()
        ]
        spark_seconds = time.monotonic() - t0
        mismatches = []
        for d_row, s_row in zip(duck_rows, spark_rows, strict=True):
            for name, d_val, s_val in zip(columns, d_row, s_row, strict=True):
                if _comparable(d_val) != _comparable(s_val):
                    mismatches.append(
                        {
                            "ln": d_row[0],
                            "column": name,
                            "duckdb": str(d_val)[:120],
                            "spark": str(s_val)[:120],
                        }
                    )
        rejects = sum(1 for r in duck_rows if r[columns.index("reject_reason")] is not None)
        tables[spec.name] = {
            "lines": len(duck_rows),
            "rejected": rejects,
            "spark_rejected": sum(
                1 for r in spark_rows if r[columns.index("reject_reason")] is not None
            ),
            "values_compared": len(duck_rows) * len(columns),
            "mismatches": len(mismatches),
            "first_mismatches": mismatches[:5],
            "spark_seconds": round(spark_seconds, 2),
        }
        print(
            f"{spec.name:24s} {len(duck_rows):6,d} lines  {rejects:5,d} rejected  "
            f"{len(mismatches):4d} values differ  (Spark {spark_seconds:.1f}s)"
        )
        for m in mismatches[:3]:
            print(f"    line {m['ln']} {m['column']}: duckdb {m['duckdb']!r} spark {m['spark']!r}")
    spark.stop()
    total = sum(t["mismatches"] for t in tables.values())
    result = {
        "zone": {
            "customers": args.customers,
            "days": args.days,
            "seed": args.seed,
            "bad": True,
            "erasure_requests": 3,
        },
        "master": args.master,
        "spark_session_start_seconds": round(spark_start, 1),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "tables": tables,
        "lines_compared": sum(t["lines"] for t in tables.values()),
        "values_compared": sum(t["values_compared"] for t in tables.values()),
        "values_differing": total,
    }
    out = REPO / "bench" / "results" / "spark_typing.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(
        f"{result['lines_compared']:,} lines, {result['values_compared']:,} values compared: "
        f"{total} differ -> {out.relative_to(REPO)}"
    )
    return 0 if total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
