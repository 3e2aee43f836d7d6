"""The whole pipeline on DuckDB and on Spark: same results, and what Spark costs (issue 15).

    nice .venv/bin/python bench/spark_pipeline.py         # 150 customers, 3 days, 1 erasure

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
Prints the figures and writes bench/results/spark_pipeline.json. The 2 cores are shared:
the load average around each run is recorded, and wall seconds follow it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.cdp_runs import fresh_dagster_home, generate_landing, run_cdp, step_seconds  # noqa: E402
from warehouse_engine.equivalence import (  # noqa: E402
    differences,
    duckdb_fingerprints,
    identity_partitions,
    published_columns,
    quality_outcomes,
    rejects_per_table,
    spark_fingerprints,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=150)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cdp-spark-pipeline-"))
    base_env = {**os.environ, "CDP_SETTLE_SECONDS": "0"}
    for name in ("CDP_SPARK_WAREHOUSE", "CDP_SPARK_REMOTE", "CDP_WAREHOUSE", "CDP_LANDING_DIR"):
        base_env.pop(name, None)
    landing = work / "landing"
    generate_landing(landing, args.customers, args.days, args.seed, base_env, erasure_requests=1)

    result: dict = {
        "zone": f"cdp generate --customers {args.customers} --days {args.days} "
        f"--seed {args.seed} --erasure-requests 1",
        "master": args.master,
    }
    warehouses = {}
    for engine in ("duckdb", "spark"):
        home = fresh_dagster_home(work / f"dagster_{engine}")
        env = {**base_env, "CDP_ENGINE": engine, "DAGSTER_HOME": str(home)}
        if engine == "spark":
            env.update(CDP_SPARK_MASTER=args.master, CDP_SPARK_SHUFFLE_PARTITIONS="2")
        warehouse = work / engine / "warehouse.duckdb"
        run = run_cdp(["run", "--landing", str(landing), "--warehouse", str(warehouse)], env)
        steps = step_seconds(home, run.run_id) if run.run_id else {}
        warehouses[engine] = warehouse
        result[engine] = {
            "wall_seconds": run.wall_seconds,
            "cpu_seconds": run.cpu_seconds,
            "peak_rss_mb": run.peak_rss_mb,
            "load_average": [run.load_before, run.load_after],
            "slowest_steps": dict(sorted(steps.items(), key=lambda kv: -kv[1])[:8]),
            "quality_steps": {k: v for k, v in sorted(steps.items()) if k.startswith("quality_")},
        }
        print(
            f"{engine}: cdp run {run.wall_seconds:.1f}s wall, {run.cpu_seconds:.1f}s CPU "
            f"(load {run.load_before}-{run.load_after}); quality steps "
            f"{result[engine]['quality_steps']}"
        )

    duck, spark = warehouses["duckdb"], warehouses["spark"]
    spark_tables = spark.parent / "spark_warehouse"
    duckdb_side = duckdb_fingerprints(duck)
    spark_side = spark_fingerprints(spark_tables)
    found = differences(duckdb_side, spark_side)
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
    result.update(
        raw_rejects={"duckdb": rejects_per_table(duck), "spark": rejects_per_table(spark)},
        tables_compared=len(set(duckdb_side) & set(spark_side)),
        marts_compared=sum(1 for t in spark_side if t.startswith("marts.")),
        differences=found,
        customers={"duckdb": len(duck_partition), "spark": len(spark_partition)},
        same_partition_of_records=duck_partition == spark_partition,
        same_published_tables_and_columns=published_columns(duck) == published_columns(spark),
        fct_invoices_net_revenue_usd_cents=revenue,
        quality_suites_compared=len(checks["spark"]),
        quality_suites_failed={
            side: sorted(k for k, o in found_checks.items() if not o["success"])
            for side, found_checks in checks.items()
        },
        quality_frames_computed_by={
            side: sorted({o["computed_by"] for o in found_checks.values()})
            for side, found_checks in checks.items()
        },
        same_quality_outcomes=same_checks,
    )
    same_rejects = result["raw_rejects"]["duckdb"] == result["raw_rejects"]["spark"]
    print(
        f"compared {result['tables_compared']} tables ({result['marts_compared']} marts): "
        f"{len(found)} differences; rejects same: {same_rejects}; customers "
        f"{len(duck_partition)} / {len(spark_partition)}, same partition: "
        f"{result['same_partition_of_records']}; published tables and columns same: "
        f"{result['same_published_tables_and_columns']}; net revenue {revenue}; "
        f"{result['quality_suites_compared']} quality suite results, same outcomes: {same_checks} "
        f"(frames computed by {result['quality_frames_computed_by']})"
    )
    for line in found[:20]:
        print("  " + line)
    out = REPO / "bench" / "results" / "spark_pipeline.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    ok = (
        not found
        and same_rejects
        and result["same_partition_of_records"]
        and result["same_published_tables_and_columns"]
        and same_checks
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
