"""Identity resolution on DuckDB and on a local Spark, from the same normalised records.

    .venv/bin/python bench/identity_engines.py                      # 100,000 customers
    .venv/bin/python bench/identity_engines.py --customers 1000000  # (not run on 2 cores)

1. A `--hard` landing zone, loaded and staged, normalised once by the engine's own SQL
   (bench/identity.py's `stage_zone` and `normalise`, reused as they are), then written
   to Parquet with `rid` = position in record_key order: the common starting point.
2. Each run in a process of its own (its wall time, CPU and peak memory are its own):
   a. `duckdb python`: identity.linkage.link_records, today's path (SQL on DuckDB for
      blocking and comparison, scoring and clustering in numpy / SciPy / union-find);
   b. `duckdb sql`: identity.engine_linkage.resolve_records_on_engine on DuckDB (every heavy
      step SQL, the model fit on the driver), ids and golden records included;
   c. `spark sql local[1]`, `spark sql local[2]`: the same SQL transpiled to Spark; the
      session start is timed apart, CPU and peak memory include the JVM and its Python
      UDF workers (the Jaro-Winkler UDF).
3. Agreement: the share of records whose customer (as a set of records) is the same as in
   run a, and whether the partitions are identical; a Spark run also against run b, the
   same SQL on DuckDB (above 2M candidate pairs that path fits its model on a sample).
Prints a table and writes bench/results/identity_engines.json (identity_engines-<N>.json
at sizes other than 100,000).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.process_usage import own_usage, process_tree_usage  # noqa: E402

RESULTS_DIR = REPO / "bench" / "results"
THREADS = 2
RECORDS_PARQUET = "identity_records.parquet"


def prepare(work_dir: Path, customers: int, days: int, seed: int) -> dict:
    """The zone, staging and normalised records (kept in `work_dir` and reused)."""
    from bench.identity import RECORDS_TABLE, WAREHOUSE_NAME, _has_tables, normalise, stage_zone

    warehouse = work_dir / WAREHOUSE_NAME
    steps: dict = {}
    if not _has_tables(warehouse, "bench", ("identity_records",)):
        steps.update(stage_zone(work_dir, customers, days, seed))
        steps.update(normalise(work_dir)["seconds"])
    parquet = work_dir / RECORDS_PARQUET
    with duckdb.connect(str(warehouse), read_only=True) as con:
        if not parquet.exists():
            con.execute(
                f"copy (select cast(row_number() over (order by record_key) - 1 as integer) "
                f"as rid, * from {RECORDS_TABLE} order by record_key) to '{parquet}' "
                "(format parquet)"
            )
        steps["records"] = con.sql(f"select count(*) from {RECORDS_TABLE}").fetchall()[0][0]
    return steps


def run_child(kind: str, work_dir: Path, master: str, partitions: int) -> dict:
    """One run (in this process): returns its figures and writes its clusters."""
    from identity.config import IdentityConfig

    config = IdentityConfig()
    parquet = work_dir / RECORDS_PARQUET
    out = work_dir / f"clusters-{kind}-{master.replace('[', '').replace(']', '')}.npy"
    result: dict = {"run": kind if kind != "spark" else f"spark sql {master}"}
    run_at = pd.Timestamp("2026-01-01")
    if kind == "duckdb-python":
        from identity.linkage import link_records

        con = duckdb.connect()
        con.execute(f"set threads = {THREADS}")
        records = con.sql(f"select * exclude (rid) from '{parquet}' order by rid").df()
        started = time.perf_counter()
        linkage = link_records(con, records, config)
        result["seconds"] = round(time.perf_counter() - started, 1)
        result["stages"] = linkage.seconds
        result["candidate_pairs"] = len(linkage.scored_pairs)
        result["accepted_probabilistic_pairs"] = linkage.accepted_probabilistic_pairs
        cluster_of = linkage.clustering.cluster_of
    else:
        from identity.engine_linkage import resolve_records_on_engine
        from warehouse_engine.sql_engines import DuckDBEngine, SparkEngine, local_spark_session

        if kind == "duckdb-sql":
            con = duckdb.connect()
            con.execute(f"set threads = {THREADS}")
            engine = DuckDBEngine(con)
            started = time.perf_counter()
            engine.create_table("ie_input", f"select * from '{parquet}'")
        else:
            started = time.perf_counter()
            spark = local_spark_session(master, partitions, "cdp-identity-bench")
            spark.sparkContext.setLogLevel("ERROR")
            result["session_start_seconds"] = round(time.perf_counter() - started, 1)
            engine = SparkEngine(spark)
            started = time.perf_counter()
            spark.read.parquet(str(parquet)).createOrReplaceTempView("ie_parquet")
            engine.create_table("ie_input", "select * from ie_parquet")
        resolution = resolve_records_on_engine(
            engine, "ie_input", config, full_records_table="ie_input", run_at=run_at
        )
        cluster_of = resolution.linkage.cluster_of(engine)
        result["seconds"] = round(time.perf_counter() - started, 1)
        result["stages"] = resolution.seconds
        result["candidate_pairs"] = resolution.linkage.candidate_pairs
        result["accepted_probabilistic_pairs"] = resolution.linkage.accepted_probabilistic_pairs
        result["guarded_components"] = resolution.linkage.guarded_components
        result["component_rounds"] = resolution.linkage.component_iterations
        result["customers"] = resolution.n_customers
        result["golden_rows"] = int(
            engine.fetch_frame(f"select count(*) as n from {resolution.golden_table}")["n"].iloc[0]
        )
        if kind == "spark":
            jvm_pid = int(spark.sparkContext._jvm.ProcessHandle.current().pid())
            jvm_cpu, jvm_gb = process_tree_usage(jvm_pid)
            result["jvm_and_udf_workers"] = {
                "cpu_seconds": round(jvm_cpu, 1),
                "peak_gb": round(jvm_gb, 2),
            }
    cpu, peak = own_usage()
    result["python_cpu_seconds"] = round(cpu, 1)
    result["python_peak_gb"] = round(peak, 2)
    extra = result.get("jvm_and_udf_workers", {})
    result["cpu_seconds"] = round(cpu + extra.get("cpu_seconds", 0.0), 1)
    result["peak_memory_gb"] = round(peak + extra.get("peak_gb", 0.0), 2)
    np.save(out, np.asarray(cluster_of, dtype=np.int64))
    result["clusters_file"] = str(out)
    if kind == "spark":
        spark.stop()
    return result


def agreement(reference: np.ndarray, other: np.ndarray) -> dict:
    """Share of records whose customer is the same set of records in both partitions."""
    frame = pd.DataFrame({"a": reference, "b": other})
    same_a = frame.groupby("a")["b"].transform("nunique") == 1
    same_b = frame.groupby("b")["a"].transform("nunique") == 1
    agreeing = same_a & same_b
    return {
        "identical_partition": bool(agreeing.all()),
        "records_in_same_customer": round(float(agreeing.mean()), 6),
        "customers": int(frame["b"].nunique()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--masters", nargs="*", default=["local[1]", "local[2]"])
    parser.add_argument("--shuffle-partitions", type=int, default=4)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--master", default="local[2]", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work_dir = args.work_dir or Path(f"/tmp/cdp-identity-engines-{args.customers}")

    if args.child:
        print(json.dumps(run_child(args.child, work_dir, args.master, args.shuffle_partitions)))
        return

    work_dir.mkdir(parents=True, exist_ok=True)
    setup = prepare(work_dir, args.customers, args.days, args.seed)
    print(f"{setup['records']:,} identity records in {work_dir}", flush=True)
    runs = [("duckdb-python", "-"), ("duckdb-sql", "-")] + [("spark", m) for m in args.masters]
    results = []
    for kind, master in runs:
        command = [
            sys.executable, __file__, "--child", kind, "--master", master,
            "--work-dir", str(work_dir), "--customers", str(args.customers),
            "--shuffle-partitions", str(args.shuffle_partitions),
        ]  # fmt: skip
        output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
        result = json.loads(output.strip().splitlines()[-1])
        results.append(result)
        print(f"  {result['run']}: {result['seconds']} s", flush=True)
    # Spark runs the engine-SQL path: above `TRAINING_SAMPLE_PAIRS` candidate pairs that
    # path fits its model on a sample, so it is held against the DuckDB run of the same SQL.
    reference = np.load(results[0]["clusters_file"])
    same_sql = np.load(results[1]["clusters_file"])
    for result in results:
        clusters = np.load(result.pop("clusters_file"))
        result["agreement_with_duckdb_python"] = agreement(reference, clusters)
        if result["run"].startswith("spark"):
            result["agreement_with_duckdb_sql"] = agreement(same_sql, clusters)
    report = {
        "customers": args.customers,
        "days": args.days,
        "seed": args.seed,
        "identity_records": setup["records"],
        "setup_seconds": {k: v for k, v in setup.items() if k != "records"},
        "shuffle_partitions": args.shuffle_partitions,
        "duckdb_threads": THREADS,
        "machine": {"cores": os.cpu_count(), "load_average_at_end": round(os.getloadavg()[0], 1)},
        "runs": results,
    }
    print(
        f"\n{'run':<22} {'wall s':>8} {'CPU s':>8} {'peak GB':>8} {'session s':>9} "
        f"{'same customer':>14} {'identical':>9} {'= duckdb-sql':>12}"
    )
    for r in results:
        a = r["agreement_with_duckdb_python"]
        sql = r.get("agreement_with_duckdb_sql")
        print(
            f"{r['run']:<22} {r['seconds']:>8} {r['cpu_seconds']:>8} {r['peak_memory_gb']:>8} "
            f"{r.get('session_start_seconds', '-'):>9} {a['records_in_same_customer']:>14.4%} "
            f"{str(a['identical_partition']):>9} {str(sql['identical_partition']) if sql else '-':>12}"
        )
    RESULTS_DIR.mkdir(exist_ok=True)
    name = (
        "identity_engines.json"
        if args.customers == 100_000
        else f"identity_engines-{args.customers}.json"
    )
    (RESULTS_DIR / name).write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote bench/results/{name}")


if __name__ == "__main__":
    main()
