"""Ingestion and the quality frames through a real Spark Connect server (issue 15).

    nice .venv/bin/python bench/spark_connect.py          # 40 customers, 2 days, --bad

Starts the Spark Connect server that pyspark's wheel carries (`spark-submit --class
org.apache.spark.sql.connect.service.SparkConnectServer`, its jar in pyspark/jars, so
nothing is downloaded) on a free local port with `local[2]`, then, as a client with
`CDP_SPARK_REMOTE=sc://localhost:<port>` (the pipeline's own `pipeline_spark_session`,
which takes the remote from `EngineSettings`):

1. loads every table and day of a generated `--bad` zone with
   `ingestion.spark_reading.load_partitions_on_spark` through the server (the file tasks,
   `mapInArrow`, run in the server's Python workers), and with DuckDB's loader, then
   compares every raw row, reject and audit row (`compare_raw`);
2. computes the raw quality suites' frames on the server (`quality.spark_frames`, the
   suites' SQL transpiled, the raw days read through their globs) and validates them with
   GX, against the same suites on DuckDB.

The server runs with the pipeline's session settings a cluster admin would set
(`spark.sql.session.timeZone=UTC`, `spark.sql.timestampType=TIMESTAMP_NTZ`): a Connect
client cannot set static confs. Prints wall and CPU seconds (the server's JVM and its
Python workers from /proc, plus this client) and the load, and writes
bench/results/spark_connect.json. Not in `make test`: the server's start alone is tens of
seconds on the shared 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
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
from ingestion.load import load_partitions  # noqa: E402
from ingestion.spark_reading import load_partitions_on_spark  # noqa: E402
from orchestration.cli import landing_days  # noqa: E402
from warehouse_engine.ingest_equivalence import compare_raw  # noqa: E402

LOADED_AT = datetime(2026, 10, 15, 3, 0, 0)
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, work: Path, warehouse: Path | None = None) -> subprocess.Popen:
    """The Connect server from pyspark's wheel, in the foreground of a child process; its
    tables go to `warehouse` (default: `work/spark_warehouse`, where the pipeline's settings
    look for a DuckDB warehouse in `work`: a server must write where the pipeline reads)."""
    import pyspark

    home = Path(pyspark.__file__).parent
    env = dict(os.environ, SPARK_HOME=str(home), PYSPARK_PYTHON=sys.executable)
    env.pop("SPARK_REMOTE", None)
    log = (work / "connect-server.log").open("w")
    return subprocess.Popen(
        [
            str(home / "bin" / "spark-submit"),
            "--class", SERVER_CLASS,
            "--master", "local[2]",
            "--conf", f"spark.connect.grpc.binding.port={port}",
            "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf", "spark.sql.session.timeZone=UTC",
            "--conf", "spark.sql.timestampType=TIMESTAMP_NTZ",
            "--conf", "spark.sql.shuffle.partitions=2",
            "--conf", "spark.ui.enabled=false",
            "--conf", f"spark.sql.warehouse.dir={warehouse or work / 'spark_warehouse'}",
            "--conf", f"spark.driver.extraJavaOptions=-Dderby.system.home={work}",
            "spark-internal",
        ],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def wait_for_port(port: int, server: subprocess.Popen, timeout: float = 300) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if server.poll() is not None:
            raise RuntimeError(f"the Connect server exited with {server.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return time.perf_counter() - started
        time.sleep(0.5)
    raise RuntimeError(f"the Connect server did not listen on {port} in {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    if args.customers > 100_000:
        parser.error("at most 100,000 customers on the shared machine")

    work = Path(tempfile.mkdtemp(prefix="spark-connect-"))
    zone = work / "landing"
    cdp_runs.generate_landing(
        zone, args.customers, args.days, args.seed, dict(os.environ), bad=True
    )
    days = landing_days(zone)
    load_start = os.getloadavg()[0]

    con = duckdb.connect(str(work / "warehouse.duckdb"))
    failed: dict[str, dict[str, str]] = {"duckdb": {}, "spark_connect": {}}
    for table in RAW_TABLES:
        try:
            load_partitions(con, table, days, zone, loaded_at=LOADED_AT, settle_seconds=0)
        except PartitionLoadError as exc:
            failed["duckdb"][table] = f"{exc.source_file}: day {exc.dt}"

    port = _free_port()
    t0 = time.perf_counter()
    server = start_server(port, work)
    result: dict = {}
    try:
        listening_s = wait_for_port(port, server)
        from warehouse_engine.settings import EngineSettings
        from warehouse_engine.spark_session import pipeline_spark_session

        settings = EngineSettings.from_environment(
            {"CDP_ENGINE": "spark", "CDP_SPARK_REMOTE": f"sc://127.0.0.1:{port}"},
            duckdb_warehouse=work / "warehouse.duckdb",
        )
        spark = pipeline_spark_session(settings)
        is_connect = type(spark).__module__.startswith("pyspark.sql.connect")
        session_s = time.perf_counter() - t0
        server_cpu0, _ = process_tree_usage(server.pid)
        cpu0, t1 = _own_cpu(), time.perf_counter()
        raw_root = work / "spark_raw"
        per_table = {}
        for table in RAW_TABLES:
            started = time.perf_counter()
            try:
                load_partitions_on_spark(
                    spark, table, days, zone, raw_root, loaded_at=LOADED_AT, settle_seconds=0
                )
            except PartitionLoadError as exc:
                failed["spark_connect"][table] = f"{exc.source_file}: day {exc.dt}"
            per_table[table] = round(time.perf_counter() - started, 1)
        load_s = time.perf_counter() - t1
        server_cpu1, server_gb = process_tree_usage(server.pid)
        load_cpu = (server_cpu1 - server_cpu0) + (_own_cpu() - cpu0)

        comparisons = compare_raw(con, raw_root)
        (records,) = con.execute("SELECT sum(rows_read) FROM raw.load_audit").fetchone()
        (rejected,) = con.execute("SELECT count(*) FROM raw.rejects").fetchone()

        cpu0, t1 = _own_cpu(), time.perf_counter()
        quality = _raw_suites_on_both(spark, con, raw_root, work)
        quality_s = time.perf_counter() - t1
        server_cpu2, server_gb = process_tree_usage(server.pid)
        quality_cpu = (server_cpu2 - server_cpu1) + (_own_cpu() - cpu0)
        spark.stop()
        result = {
            "zone": {
                "customers": args.customers,
                "days": args.days,
                "seed": args.seed,
                "bad": True,
                "records": records,
                "rejected": rejected,
            },
            "client_session_is_spark_connect": is_connect,
            "server_listening_seconds": round(listening_s, 1),
            "server_start_and_session_seconds": round(session_s, 1),
            "ingestion": {
                "seconds": round(load_s, 1),
                "cpu_seconds_server_and_client": round(load_cpu, 1),
                "seconds_per_table": per_table,
                "relations_compared": len(comparisons),
                "rows_compared": sum(c.duckdb_rows for c in comparisons),
                "relations_differing": [c.relation for c in comparisons if not c.same],
                "failed_days": failed,
            },
            "quality_raw": {
                **quality,
                "seconds": round(quality_s, 1),
                "cpu_seconds_server_and_client": round(quality_cpu, 1),
            },
            "server_peak_gb": round(server_gb, 2),
        }
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        con.close()
    result.update(
        cores=os.cpu_count(),
        load_average_1min={"start": round(load_start, 1), "end": round(os.getloadavg()[0], 1)},
    )
    out = REPO / "bench" / "results" / "spark_connect.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    ing, q = result["ingestion"], result["quality_raw"]
    print(
        f"Spark Connect server (pyspark wheel, local[2]) on port {port}: listening after "
        f"{result['server_listening_seconds']} s, client session after "
        f"{result['server_start_and_session_seconds']} s (Connect client: {is_connect})"
    )
    print(
        f"ingestion through Connect: {ing['seconds']} s wall, "
        f"{ing['cpu_seconds_server_and_client']} CPU s; {ing['rows_compared']:,} rows in "
        f"{ing['relations_compared']} relations vs DuckDB's loader, differing: "
        f"{ing['relations_differing'] or 'none'}; failed days: {ing['failed_days']}"
    )
    print(
        f"raw quality suites on Connect: {q['suites']} suite results, same outcome as "
        f"DuckDB: {q['same_outcomes']} (differing: {q['differing'] or 'none'}); "
        f"{q['seconds']} s wall, {q['cpu_seconds_server_and_client']} CPU s"
    )
    print(f"load average {result['load_average_1min']}; wrote {out.relative_to(REPO)}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    ok = is_connect and not ing["relations_differing"] and q["same_outcomes"]
    return 0 if ok else 1


def _raw_suites_on_both(spark, con, raw_root: Path, work: Path) -> dict:
    """Every raw suite's verdict on DuckDB (the loader's tables) and on the Connect server
    (the days Spark committed, read through their globs): the same pass/fail and
    unexpected counts."""
    from ingestion.spark_days import raw_relation_locations
    from quality.runner import DuckDBFrames, run_suite
    from quality.spark_frames import SparkFrames
    from quality.suites import SUITES

    suites = [s for s in SUITES if s.table.startswith("raw.")]
    frames = SparkFrames(spark, work / "no_warehouse", locations=raw_relation_locations(raw_root))
    duck_frames = DuckDBFrames(con)
    differing, count = [], 0
    for spec in suites:
        on_duckdb = run_suite(duck_frames, spec, work / "docs_duckdb")
        on_spark = run_suite(frames, spec, work / "docs_spark")
        count += 1

        if _verdict(on_duckdb) != _verdict(on_spark) or on_spark.engine != "spark":
            differing.append(spec.name)
    return {"suites": count, "same_outcomes": not differing, "differing": differing}


def _verdict(result) -> tuple:
    failed = sorted((str(f.column), f.unexpected_count) for f in result.failed)
    return (result.success, result.error, failed)


if __name__ == "__main__":
    raise SystemExit(main())
