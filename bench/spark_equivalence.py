"""The dbt models on Spark against DuckDB: same tables, and what it costs (issue 15).

    .venv/bin/python bench/spark_equivalence.py                       # 150 customers, 3 days
    .venv/bin/python bench/spark_equivalence.py --warehouse data/warehouse.duckdb

1. Unless --warehouse names a DuckDB warehouse a `cdp run` wrote, generates a zone
   (`cdp generate`) and runs the whole pipeline on it (`cdp run`, DuckDB), timed.
2. `build_on_spark` (what `CDP_ENGINE=spark cdp spark-build` runs): hands raw.*, identity.*
   and predictions.* to Spark as Parquet, then `dbt build` on the spark target (local
   Spark, --master, default local[2]; 2 shuffle partitions): every model with its contract,
   every data test (unit tests stay in `make test` on DuckDB). Timed, JVM start included.
3. Compares every staging, intermediate and mart table both engines built: rows, NULLs per
   column, the sum of every numeric column (warehouse_engine/equivalence.py).
Prints the figures and writes bench/results/spark_equivalence.json. The machine's 1-minute
load average is recorded: the 2 cores are shared, so seconds vary with it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from warehouse_engine.equivalence import (  # noqa: E402
    differences,
    duckdb_fingerprints,
    spark_fingerprints,
)
from warehouse_engine.settings import EngineSettings  # noqa: E402
from warehouse_engine.spark_build import build_on_spark  # noqa: E402

CDP = [sys.executable, "-m", "orchestration.cli"]


def duckdb_run(work: Path, customers: int, days: int, seed: int) -> tuple[Path, float]:
    landing = work / "landing"
    warehouse = work / "wh" / "warehouse.duckdb"
    env = {**os.environ, "CDP_SETTLE_SECONDS": "0", "CDP_ENGINE": "duckdb"}
    env.pop("DAGSTER_HOME", None)
    subprocess.run(
        [*CDP, "generate", "--out", str(landing), "--customers", str(customers),
         "--days", str(days), "--seed", str(seed)],
        cwd=REPO, env=env, check=True, capture_output=True,
    )  # fmt: skip
    started = time.monotonic()
    subprocess.run(
        [*CDP, "run", "--landing", str(landing), "--warehouse", str(warehouse)],
        cwd=REPO, env=env, check=True, capture_output=True,
    )  # fmt: skip
    return warehouse, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warehouse", help="a DuckDB warehouse a `cdp run` wrote")
    parser.add_argument("--customers", type=int, default=150)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--work-dir", help="where to write (default: a temporary folder)")
    args = parser.parse_args()

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="cdp-spark-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"master": args.master, "load_average_before": os.getloadavg()[0]}
    if args.warehouse:
        warehouse = Path(args.warehouse).resolve()
        result["zone"] = f"given warehouse {warehouse.name}"
    else:
        warehouse, seconds = duckdb_run(work, args.customers, args.days, args.seed)
        result["zone"] = (
            f"cdp generate --customers {args.customers} --days {args.days} --seed {args.seed}"
        )
        result["duckdb_cdp_run_seconds"] = round(seconds, 1)
        print(f"duckdb: cdp run {seconds:.1f}s")

    settings = EngineSettings.from_environment(
        {
            "CDP_ENGINE": "spark",
            "CDP_SPARK_MASTER": args.master,
            "CDP_SPARK_SHUFFLE_PARTITIONS": "2",
            "CDP_SPARK_WAREHOUSE": str(work / "spark"),
        },
        duckdb_warehouse=warehouse,
    )
    build = build_on_spark(settings, work / "spark_dbt")
    summary = re.search(r"Done\. PASS=(\d+) WARN=(\d+) ERROR=(\d+) SKIP=(\d+)", build.output)
    result.update(
        handed_off_tables=len(build.handed_off),
        handed_off_rows=sum(t.rows for t in build.handed_off),
        handoff_seconds=round(build.handoff_seconds, 1),
        spark_dbt_build_seconds=round(build.dbt_seconds, 1),
        spark_dbt_build_succeeded=build.succeeded,
        spark_dbt_pass_warn_error_skip=[int(g) for g in summary.groups()] if summary else None,
        load_average_after=os.getloadavg()[0],
    )
    print(
        f"spark: handed off {result['handed_off_tables']} tables / {result['handed_off_rows']:,} "
        f"rows in {build.handoff_seconds:.1f}s; dbt build {build.dbt_seconds:.1f}s, "
        f"{'succeeded' if build.succeeded else 'FAILED'}"
        + (
            f" (PASS={summary[1]} WARN={summary[2]} ERROR={summary[3]} SKIP={summary[4]})"
            if summary
            else ""
        )
    )
    if not build.succeeded:
        print(build.output[-4000:])

    duckdb_side = duckdb_fingerprints(warehouse)
    spark_side = spark_fingerprints(settings.spark_warehouse)
    found = differences(duckdb_side, spark_side)
    marts = sorted(t for t in spark_side if t.startswith("marts."))
    result.update(
        tables_compared=len(set(duckdb_side) & set(spark_side)),
        marts_compared=len(marts),
        differences=found,
        fct_invoices_net_revenue_usd_cents={
            "duckdb": duckdb_side.get("marts.fct_invoices").sums.get("net_revenue_usd_cents")
            if "marts.fct_invoices" in duckdb_side else None,
            "spark": spark_side.get("marts.fct_invoices").sums.get("net_revenue_usd_cents")
            if "marts.fct_invoices" in spark_side else None,
        },
    )  # fmt: skip
    print(
        f"compared {result['tables_compared']} tables ({len(marts)} marts): "
        f"{len(found)} differences; fct_invoices net revenue (USD cents) "
        f"duckdb {result['fct_invoices_net_revenue_usd_cents']['duckdb']} / "
        f"spark {result['fct_invoices_net_revenue_usd_cents']['spark']}"
    )
    for line in found[:30]:
        print("  " + line)
    out = REPO / "bench" / "results" / "spark_equivalence.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0 if build.succeeded and not found else 1


if __name__ == "__main__":
    sys.exit(main())
