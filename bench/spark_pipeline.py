"""The whole pipeline on DuckDB and on Spark: same results, and what Spark costs (issue 15).

    nice .venv/bin/python bench/spark_pipeline.py         # 150 customers, 3 days, 1 erasure
    nice .venv/bin/python bench/spark_pipeline.py --hostile --redeliver --customers 300 --seed 5
    nice .venv/bin/python bench/spark_pipeline.py --zone PATH   # your own zone (a copy is run)
    nice .venv/bin/python bench/spark_pipeline.py --connect     # Spark through Spark Connect

`--hostile`: a `--bad --skipped-day` zone with 2 erasure requests, edited as other
producers write (bench/hostile_zone.py); `--redeliver`: then a loaded day is delivered
again, changed, and each engine runs again (with --full-identity: Spark resolves in full
every run). Also compared: every raw row, reject and audit row, and that no row of Spark's
raw days holds an erased person's email or phone.

1. `cdp generate` a zone, with one erasure request so the erasure's rewrite of Spark's
   files is exercised too.
2. `cdp run` on DuckDB, then `CDP_ENGINE=spark cdp run` of the same zone on a local
   Spark (`--master`, default local[2]; 2 shuffle partitions), each in its own process
   with its own Dagster instance; wall and CPU seconds (dbt's and Spark's JVMs included)
   and each step's seconds.
3. Compares: raw rows and rejects, every staging, intermediate and mart table (rows, NULLs
   per column, sum of every numeric column; `warehouse_engine/equivalence.py`), the
   partition of source records into customers, the published tables and columns, and
   the GX suites' outcomes (passed / failed / warned, unexpected counts; on Spark the
   frames are Spark's).
`--connect`: the Spark run goes through a Spark Connect server (pyspark's own, started
from its wheel as in bench/spark_connect.py, `local[2]`, writing its tables to the
folder the pipeline reads) with `CDP_SPARK_REMOTE=sc://...`, as a cluster would be used:
ingestion's file tasks, dbt-spark, identity's SQL and the quality frames all run in the
server; the server's CPU seconds are reported apart (it is not a child of `cdp run`).
Prints the figures and writes bench/results/spark_pipeline.json (-hostile.json with
--hostile, -connect.json with --connect). CPU seconds are the cdp process's plus, apart, its JVM's. The 2 cores are shared:
the load average around each run is recorded, and wall seconds follow it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.cdp_runs import fresh_dagster_home, generate_landing, run_cdp, step_seconds  # noqa: E402
from bench.hostile_zone import make_hostile, redeliver  # noqa: E402
from bench.process_usage import process_tree_usage  # noqa: E402
from bench.spark_connect import _free_port, start_server, wait_for_port  # noqa: E402
from warehouse_engine.equivalence import (  # noqa: E402
    differences,
    duckdb_fingerprints,
    identity_partitions,
    published_columns,
    quality_outcomes,
    rejects_per_table,
    spark_fingerprints,
)
from warehouse_engine.ingest_equivalence import compare_raw, raw_rows_holding  # noqa: E402


def _comparison(duck: Path, spark: Path) -> dict:
    """Everything the two runs wrote, compared (each run's warehouse.duckdb)."""
    spark_tables = spark.parent / "spark_warehouse"
    duckdb_side = duckdb_fingerprints(duck)
    spark_side = spark_fingerprints(spark_tables)
    found = differences(duckdb_side, spark_side)
    with duckdb.connect(str(duck), read_only=True) as con:
        raw = compare_raw(con, spark_tables / "raw", ignore_load_times=True)
    raw_differing = [
        f"{c.relation}: {c.duckdb_rows} / {c.spark_rows} rows, {c.differing_rows} differ "
        f"{c.examples[:2]}"
        for c in raw
        if not c.same
    ]
    duck_partition, spark_partition = identity_partitions(duck, spark_tables)
    checks = {
        side: quality_outcomes(path.parent / "quality_docs")
        for side, path in (("duckdb", duck), ("spark", spark))
    }
    same_checks = {k: {**v, "computed_by": None} for k, v in checks["duckdb"].items()} == {
        k: {**v, "computed_by": None} for k, v in checks["spark"].items()
    }
    revenue = {
        side: fingerprints["marts.fct_invoices"].sums.get("net_revenue_usd_cents")
        for side, fingerprints in (("duckdb", duckdb_side), ("spark", spark_side))
    }
    marts = {
        side: {t: f.rows for t, f in fingerprints.items() if t.startswith("marts.")}
        for side, fingerprints in (("duckdb", duckdb_side), ("spark", spark_side))
    }
    result = {
        "raw_rejects": {"duckdb": rejects_per_table(duck), "spark": rejects_per_table(spark)},
        "raw_relations_compared": len(raw),
        "raw_rows_compared": sum(c.duckdb_rows for c in raw),
        "raw_differences": raw_differing,
        "tables_compared": len(set(duckdb_side) & set(spark_side)),
        "marts_compared": sum(1 for t in spark_side if t.startswith("marts.")),
        "mart_rows": marts["duckdb"] if marts["duckdb"] == marts["spark"] else marts,
        "differences": found,
        "customers": {"duckdb": len(duck_partition), "spark": len(spark_partition)},
        "same_partition_of_records": duck_partition == spark_partition,
        "same_published_tables_and_columns": published_columns(duck) == published_columns(spark),
        "fct_invoices_net_revenue_usd_cents": revenue,
        "quality_suites_compared": len(checks["spark"]),
        "quality_suites_failed": {
            side: sorted(k for k, o in found_checks.items() if not o["success"])
            for side, found_checks in checks.items()
        },
        "quality_frames_computed_by": {
            side: sorted({o["computed_by"] for o in found_checks.values()})
            for side, found_checks in checks.items()
        },
        "same_quality_outcomes": same_checks,
    }
    result["ok"] = (
        not found
        and not raw_differing
        and result["raw_rejects"]["duckdb"] == result["raw_rejects"]["spark"]
        and result["same_partition_of_records"]
        and result["same_published_tables_and_columns"]
        and same_checks
    )
    print(
        f"compared {len(raw)} raw relations ({result['raw_rows_compared']:,} rows): "
        f"{len(raw_differing)} differ; {result['tables_compared']} tables "
        f"({result['marts_compared']} marts): {len(found)} differences; customers "
        f"{len(duck_partition)} / {len(spark_partition)}, same partition: "
        f"{result['same_partition_of_records']}; published tables and columns same: "
        f"{result['same_published_tables_and_columns']}; net revenue {revenue}; "
        f"{result['quality_suites_compared']} quality suite results, same outcomes: {same_checks} "
        f"(frames computed by {result['quality_frames_computed_by']})"
    )
    for line in (raw_differing + found)[:20]:
        print("  " + line)
    return result


def _erased_values(zone: Path) -> list[str]:
    """The emails and phones of the zone's erasure requests (lower-cased), never printed."""
    values = []
    for path in sorted(zone.glob("privacy/requests/dt=*/*.csv")):
        for row in csv.DictReader(path.open(encoding="utf-8")):
            values += [v.strip().lower() for k, v in row.items() if k in ("email", "phone") and v]
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=150)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    zone_kind = parser.add_mutually_exclusive_group()
    zone_kind.add_argument(
        "--zone", type=Path, help="run a copy of this landing zone instead of generating one"
    )
    zone_kind.add_argument(
        "--hostile",
        action="store_true",
        help="a --bad --skipped-day zone with 2 erasure requests and another producer's "
        "habits (bench/hostile_zone.py); writes spark_pipeline-hostile.json",
    )
    parser.add_argument(
        "--redeliver",
        action="store_true",
        help="then deliver a loaded day again, changed, and compare a second run of each",
    )
    parser.add_argument(
        "--connect",
        action="store_true",
        help="run the Spark side through a local Spark Connect server (CDP_SPARK_REMOTE)",
    )
    parser.add_argument("--out", type=Path, help="the results file (default: by zone kind)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cdp-spark-pipeline-"))
    base_env = {**os.environ, "CDP_SETTLE_SECONDS": "0"}
    for name in ("CDP_SPARK_WAREHOUSE", "CDP_SPARK_REMOTE", "CDP_WAREHOUSE", "CDP_LANDING_DIR"):
        base_env.pop(name, None)
    landing = work / "landing"
    result: dict = {"master": args.master}
    if args.zone:
        shutil.copytree(args.zone, landing)
        result["zone"] = f"a copy of {args.zone}"
    else:
        generate_landing(
            landing,
            args.customers,
            args.days,
            args.seed,
            base_env,
            erasure_requests=2 if args.hostile else 1,
            bad=args.hostile,
            skipped_day=args.hostile,
        )
        result["zone"] = (
            f"cdp generate --customers {args.customers} --days {args.days} --seed {args.seed} "
            + (
                "--bad --skipped-day --erasure-requests 2"
                if args.hostile
                else "--erasure-requests 1"
            )
        )
    if args.hostile:
        result["hand_edits"] = make_hostile(landing)
    erased = _erased_values(landing)

    server = None
    if args.connect:
        port = _free_port()
        (work / "connect").mkdir()
        server = start_server(port, work / "connect", work / "spark" / "spark_warehouse")
        result["connect_server_listening_seconds"] = round(wait_for_port(port, server), 1)
        result["remote"] = f"sc://127.0.0.1:{port}"

    rounds = [("first", None)]
    if args.redeliver:
        rounds.append(("redelivered", redeliver))
    homes = {e: fresh_dagster_home(work / f"dagster_{e}") for e in ("duckdb", "spark")}
    ok = True
    try:
        for name, change in rounds:
            if change is not None:
                result[name + "_edits"] = change(landing)
            warehouses = {}
            runs = result[name] = {}
            for engine in ("duckdb", "spark"):
                home = homes[engine]
                env = {**base_env, "CDP_ENGINE": engine, "DAGSTER_HOME": str(home)}
                if engine == "spark":
                    env.update(CDP_SPARK_MASTER=args.master, CDP_SPARK_SHUFFLE_PARTITIONS="2")
                    if server is not None:
                        env["CDP_SPARK_REMOTE"] = result["remote"]
                        server_cpu_before, _ = process_tree_usage(server.pid)
                warehouse = work / engine / "warehouse.duckdb"
                # A second run on DuckDB resolves identity incrementally with the model kept
                # from the first; on Spark identity is resolved in full every run (docs/spark.md):
                # both in full, or their match weights differ by design.
                again = ["--full-identity"] if change is not None else []
                run = run_cdp(
                    ["run", "--landing", str(landing), "--warehouse", str(warehouse), *again], env
                )
                steps = step_seconds(home, run.run_id) if run.run_id else {}
                if engine == "spark" and server is not None:
                    server_cpu = process_tree_usage(server.pid)[0] - server_cpu_before
                warehouses[engine] = warehouse
                runs[engine] = {
                    "wall_seconds": run.wall_seconds,
                    "cpu_seconds": run.cpu_seconds,
                    "jvm_cpu_seconds": run.jvm_cpu_seconds,
                    "peak_rss_mb": run.peak_rss_mb,
                    "load_average": [run.load_before, run.load_after],
                    "slowest_steps": dict(sorted(steps.items(), key=lambda kv: -kv[1])[:8]),
                    "quality_steps": {
                        k: v for k, v in sorted(steps.items()) if k.startswith("quality_")
                    },
                }
                if engine == "spark" and server is not None:
                    runs[engine]["connect_server_cpu_seconds"] = round(server_cpu, 1)
                print(
                    f"{name} {engine}: cdp run {run.wall_seconds:.1f}s wall, {run.cpu_seconds:.1f}s "
                    f"CPU + {run.jvm_cpu_seconds:.1f}s JVM"
                    + (
                        f" + {runs[engine]['connect_server_cpu_seconds']:.1f}s Connect server"
                        if "connect_server_cpu_seconds" in runs[engine]
                        else ""
                    )
                    + f" (load {run.load_before}-{run.load_after})"
                )
            runs.update(_comparison(warehouses["duckdb"], warehouses["spark"]))
            spark_raw = warehouses["spark"].parent / "spark_warehouse" / "raw"
            left = raw_rows_holding(spark_raw, erased, skip=("privacy_requests",))
            runs["erased_values"] = len(erased)
            runs["spark_raw_rows_holding_an_erased_value"] = left
            print(
                f"{len(erased)} erased values; rows of Spark's raw days still holding one: {left}"
            )
            ok = ok and runs["ok"] and left == 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
    result["ok"] = ok

    suffix = ("-hostile" if args.hostile else "") + ("-connect" if args.connect else "")
    out = args.out or REPO / "bench" / "results" / f"spark_pipeline{suffix}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work} to look at")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
