"""The identity step of `cdp run` with its linkage on DuckDB and on a local Spark.

    .venv/bin/python bench/identity_spark_step.py                    # 2,000 customers
    .venv/bin/python bench/identity_spark_step.py --customers 100000 # (the cap on 2 cores)

1. A `--hard` landing zone, loaded and staged once (bench/identity.py's `stage_zone`).
2. Each path in a process of its own, on its own copy of the staged warehouse, runs
   `resolve_identities` (identity/pipeline.py, what the identity asset runs) twice, a day
   apart, in full: night 1 from nothing, night 2 over night 1's tables (stable ids from
   the registry, the merge / split logs):
   a. `duckdb`: `link_records` (the DuckDB path of `cdp run`);
   b. `spark local[2]`: `linkage_engine=SparkEngine(...)` (the path of
      `CDP_ENGINE=spark cdp run`); the session start is timed apart; CPU seconds include
      the JVM and its Python UDF workers.
3. Agreement: the share of records with the same customer id on both paths, per night.
Prints a table and writes bench/results/identity_spark_step.json
(identity_spark_step-<N>.json at other sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402
import pandas as pd  # noqa: E402

from bench.process_usage import own_usage, process_tree_usage  # noqa: E402

RESULTS_DIR = REPO / "bench" / "results"
THREADS = 2
NIGHTS = (pd.Timestamp("2026-01-01 02:00"), pd.Timestamp("2026-01-02 02:00"))


def prepare(work_dir: Path, customers: int, days: int, seed: int) -> dict:
    from bench.identity import WAREHOUSE_NAME, _has_tables, stage_zone

    warehouse = work_dir / WAREHOUSE_NAME
    if _has_tables(warehouse, "staging", ("stg_email__contacts",)):
        return {}
    return stage_zone(work_dir, customers, days, seed)


def run_child(kind: str, work_dir: Path, master: str, partitions: int) -> dict:
    """Two nights of resolve_identities on one path (in this process)."""
    from bench.identity import WAREHOUSE_NAME
    from identity.config import IdentityConfig
    from identity.pipeline import resolve_identities

    run_dir = work_dir / f"run-{kind}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    warehouse = run_dir / WAREHOUSE_NAME
    shutil.copy2(work_dir / WAREHOUSE_NAME, warehouse)
    result: dict = {"run": "duckdb" if kind == "duckdb" else f"spark {master}"}
    engine = spark = None
    if kind == "spark":
        from warehouse_engine.sql_engines import SparkEngine, local_spark_session

        started = time.perf_counter()
        spark = local_spark_session(master, partitions, "cdp-identity-step-bench")
        spark.sparkContext.setLogLevel("ERROR")
        engine = SparkEngine(spark)
        result["session_start_seconds"] = round(time.perf_counter() - started, 1)
    con = duckdb.connect(str(warehouse))
    con.execute(f"set threads = {THREADS}")
    nights = []
    for n, run_at in enumerate(NIGHTS, 1):
        started, cpu = time.perf_counter(), time.process_time()
        summary = resolve_identities(
            con,
            IdentityConfig(),
            run_at=run_at.to_pydatetime(),
            full_identity=True,
            linkage_engine=engine,
            engine_scratch_dir=run_dir / "scratch",
        )
        nights.append(
            {
                "night": n,
                "seconds": round(time.perf_counter() - started, 1),
                "python_cpu_seconds": round(time.process_time() - cpu, 1),
                "stages": summary.seconds,
                "records": summary.records_in,
                "customers": summary.customers_out,
                "candidate_pairs": summary.candidate_pairs,
                "new_customers": summary.new_customers,
                "merged_customers": summary.merged_customers,
                "split_customers": summary.split_customers,
                "records_changing_customer": summary.records_changing_customer,
                "linkage_engine": summary.linkage_engine,
            }
        )
        con.execute(
            f"copy (select source_system, source_record_id, customer_id "
            f"from identity.customer_map) to '{run_dir / f'night{n}.parquet'}' (format parquet)"
        )
    con.close()
    result["nights"] = nights
    cpu, peak = own_usage()
    result["python_cpu_seconds"] = round(cpu, 1)
    result["python_peak_gb"] = round(peak, 2)
    if spark is not None:
        jvm_pid = int(spark.sparkContext._jvm.ProcessHandle.current().pid())
        jvm_cpu, jvm_gb = process_tree_usage(jvm_pid)
        result["jvm_and_udf_workers"] = {
            "cpu_seconds": round(jvm_cpu, 1),
            "peak_gb": round(jvm_gb, 2),
        }
        spark.stop()
    extra = result.get("jvm_and_udf_workers", {})
    result["cpu_seconds"] = round(cpu + extra.get("cpu_seconds", 0.0), 1)
    result["peak_memory_gb"] = round(peak + extra.get("peak_gb", 0.0), 2)
    result["run_dir"] = str(run_dir)
    return result


def same_ids(left: Path, right: Path) -> dict:
    with duckdb.connect() as con:
        row = con.execute(f"""
            select count(*), count(*) filter (where l.customer_id = r.customer_id)
            from '{left}' l full join '{right}' r using (source_system, source_record_id)
        """).fetchone()
    return {"records": row[0], "same_customer_id": row[1], "share": round(row[1] / row[0], 6)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--shuffle-partitions", type=int, default=4)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work_dir = args.work_dir or Path(f"/tmp/cdp-identity-spark-step-{args.customers}")

    if args.child:
        print(json.dumps(run_child(args.child, work_dir, args.master, args.shuffle_partitions)))
        return

    work_dir.mkdir(parents=True, exist_ok=True)
    setup = prepare(work_dir, args.customers, args.days, args.seed)
    load = [round(x, 1) for x in os.getloadavg()]
    results = []
    for kind in ("duckdb", "spark"):
        command = [
            sys.executable, __file__, "--child", kind, "--master", args.master,
            "--work-dir", str(work_dir), "--customers", str(args.customers),
            "--shuffle-partitions", str(args.shuffle_partitions),
        ]  # fmt: skip
        output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
        print(
            f"  {results[-1]['run']}: {[n['seconds'] for n in results[-1]['nights']]} s", flush=True
        )
    duck, spark = (Path(r.pop("run_dir")) for r in results)
    agreement = {f"night{n}": same_ids(duck / f"night{n}.parquet", spark / f"night{n}.parquet")
                 for n in (1, 2)}  # fmt: skip
    report = {
        "customers": args.customers,
        "days": args.days,
        "seed": args.seed,
        "setup_seconds": setup,
        "shuffle_partitions": args.shuffle_partitions,
        "duckdb_threads": THREADS,
        "machine": {
            "cores": os.cpu_count(),
            "load_average_at_start": load,
            "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
        },
        "runs": results,
        "same_customer_ids": agreement,
    }
    print(f"\n{'run':<16} {'night':>5} {'wall s':>8} {'customers':>10} {'merged':>7} {'split':>6}")
    for r in results:
        for n in r["nights"]:
            print(
                f"{r['run']:<16} {n['night']:>5} {n['seconds']:>8} {n['customers']:>10} "
                f"{n['merged_customers']:>7} {n['split_customers']:>6}"
            )
        print(f"{'':<16} CPU s (whole process{', JVM included' if 'jvm_and_udf_workers' in r else ''}): "
              f"{r['cpu_seconds']}, peak {r['peak_memory_gb']} GB")  # fmt: skip
    for night, a in agreement.items():
        print(
            f"{night}: {a['same_customer_id']:,} of {a['records']:,} records with the same customer id"
        )
    print(f"load average {load} -> {report['machine']['load_average_at_end']}")
    RESULTS_DIR.mkdir(exist_ok=True)
    name = (
        "identity_spark_step.json"
        if args.customers == 2_000
        else f"identity_spark_step-{args.customers}.json"
    )
    (RESULTS_DIR / name).write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote bench/results/{name}")


if __name__ == "__main__":
    main()
