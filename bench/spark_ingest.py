"""Ingestion on Spark against DuckDB's loader: same output, and rows per second (issue 15).

    nice .venv/bin/python bench/spark_ingest.py                       # 20,000 customers, 3 days
    nice .venv/bin/python bench/spark_ingest.py --customers 100000 --days 3

Generates a `--bad` zone, loads every table and day with DuckDB's loader
(`ingestion.load.load_partitions`, one connection, its threads) and with the Spark reader
(`ingestion.spark_reading.load_partitions_on_spark`, local[N]: one task per landing
file runs the loader's reader, Spark types, suppresses and writes), then compares raw
rows, rejects and audit rows value by value (`warehouse_engine.ingest_equivalence`).

Prints records per second for both, wall and CPU seconds (Spark's CPU: the JVM and its
Python workers, from /proc, plus the driver), the load average, and writes
bench/results/spark_ingest.json (`spark_ingest-<customers>.json` for other sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from bench import cdp_runs  # noqa: E402
from bench.process_usage import process_tree_usage  # noqa: E402
from ingestion.contract import RAW_TABLES  # noqa: E402
from ingestion.errors import PartitionLoadError  # noqa: E402
from ingestion.load import configure_connection, load_partitions  # noqa: E402
from ingestion.spark_reading import load_partitions_on_spark  # noqa: E402
from orchestration.cli import landing_days  # noqa: E402
from warehouse_engine.ingest_equivalence import compare_raw  # noqa: E402

LOADED_AT = datetime(2026, 10, 15, 3, 0, 0)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    if args.customers > 100_000:
        parser.error("at most 100,000 customers on the shared machine")

    work = Path(tempfile.mkdtemp(prefix="spark-ingest-"))
    zone = work / "landing"
    cdp_runs.generate_landing(
        zone, args.customers, args.days, args.seed, dict(os.environ), bad=True
    )
    days = landing_days(zone)
    load_start = os.getloadavg()[0]

    con = duckdb.connect(str(work / "warehouse.duckdb"))
    configure_connection(con, memory_limit="3GB")
    failed: dict[str, dict[str, str]] = {"duckdb": {}, "spark": {}}
    cpu0, t0 = _own_cpu(), time.perf_counter()
    for table in RAW_TABLES:
        try:
            load_partitions(con, table, days, zone, loaded_at=LOADED_AT, settle_seconds=0)
        except PartitionLoadError as exc:
            failed["duckdb"][table] = f"{exc.source_file}: day {exc.dt}"
    duck = {"seconds": time.perf_counter() - t0, "cpu_seconds": _own_cpu() - cpu0}

    from warehouse_engine.sql_engines import local_spark_session

    t0 = time.perf_counter()
    spark = local_spark_session(args.master, 2, "cdp-spark-ingest-bench")
    spark.sparkContext.setLogLevel("ERROR")
    session_seconds = time.perf_counter() - t0
    jvm_pid = int(spark.sparkContext._jvm.ProcessHandle.current().pid())
    jvm0, _ = process_tree_usage(jvm_pid)
    cpu0, t0 = _own_cpu(), time.perf_counter()
    per_table = {}
    for table in RAW_TABLES:
        started = time.perf_counter()
        try:
            load_partitions_on_spark(
                spark, table, days, zone, work / "spark_raw", loaded_at=LOADED_AT, settle_seconds=0
            )
        except PartitionLoadError as exc:
            failed["spark"][table] = f"{exc.source_file}: day {exc.dt}"
        per_table[table] = round(time.perf_counter() - started, 1)
    spark_wall = time.perf_counter() - t0
    jvm1, jvm_gb = process_tree_usage(jvm_pid)
    spark_run = {
        "seconds": spark_wall,
        "cpu_seconds": (jvm1 - jvm0) + (_own_cpu() - cpu0),
        "jvm_peak_gb": round(jvm_gb, 2),
        "session_start_seconds": round(session_seconds, 1),
        "seconds_per_table": per_table,
    }
    spark.stop()

    comparisons = compare_raw(con, work / "spark_raw")
    (records,) = con.execute("SELECT sum(rows_read) FROM raw.load_audit").fetchone()
    (lines,) = con.execute("SELECT sum(lines_in_file) FROM raw.load_audit").fetchone()
    (rejected,) = con.execute("SELECT count(*) FROM raw.rejects").fetchone()
    con.close()
    for run in (duck, spark_run):
        run["records_per_second"] = round(records / run["seconds"])
        run["seconds"] = round(run["seconds"], 1)
        run["cpu_seconds"] = round(run["cpu_seconds"], 1)
    result = {
        "zone": {"customers": args.customers, "days": args.days, "seed": args.seed, "bad": True},
        "master": args.master,
        "cores": os.cpu_count(),
        "load_average_1min": {"start": round(load_start, 1), "end": round(os.getloadavg()[0], 1)},
        "lines_delivered": lines,
        "records": records,
        "rejected": rejected,
        "days_failed": failed,
        "duckdb": duck,
        "spark": spark_run,
        "relations_compared": len(comparisons),
        "relations_differing": [c.relation for c in comparisons if not c.same],
        "rows_compared": sum(c.duckdb_rows for c in comparisons),
    }
    suffix = "" if args.customers == 20_000 else f"-{args.customers}"
    out = REPO / "bench" / "results" / f"spark_ingest{suffix}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(
        f"zone: {args.customers:,} customers, {args.days} days, --bad: {lines:,} lines, "
        f"{records:,} records, {rejected:,} rejected"
    )
    print(f"{'engine':<22} {'wall s':>8} {'CPU s':>8} {'records/s':>10}")
    print(
        f"{'duckdb':<22} {duck['seconds']:>8} {duck['cpu_seconds']:>8} "
        f"{duck['records_per_second']:>10,}"
    )
    print(
        f"{'spark ' + args.master:<22} {spark_run['seconds']:>8} {spark_run['cpu_seconds']:>8} "
        f"{spark_run['records_per_second']:>10,}  (+{session_seconds:.1f} s session start)"
    )
    print(f"per table on Spark (s): {per_table}")
    print(
        f"{result['rows_compared']:,} rows in {len(comparisons)} relations compared: "
        f"{len(result['relations_differing'])} differ {result['relations_differing']}; "
        f"failed days {failed}; load average {result['load_average_1min']} -> "
        f"{out.relative_to(REPO)}"
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return (
        0
        if not result["relations_differing"] and failed["duckdb"].keys() == failed["spark"].keys()
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
