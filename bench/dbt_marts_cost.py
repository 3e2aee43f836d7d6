"""Where the nightly `dbt_marts` step's time goes: the models' SQL, writing their tables, or dbt.

    nice .venv/bin/python bench/dbt_marts_cost.py <workdir>/warehouse/warehouse.duckdb

WAREHOUSE is a warehouse after a night (e.g. the one `bench/nightly.py --workdir` leaves),
with the dbt target folder of that night's `dbt_marts` step beside it (`.dbt/target`: the
compiled SQL of every model). On copies of it this measures, in CPU seconds (all threads of
the process, so DuckDB's too) and wall seconds:

1. each intermediate and mart model's compiled SELECT as `create temp table` (the SQL alone)
   and as a table of the file (the SQL, writing and committing it, as dbt's table
   materialization does); the incremental models run their compiled incremental SELECT
   against the tables the night left, i.e. their change detection on an unchanged day;
2. the whole selection of the step as `dbt run` (models only) and `dbt test` (its tests
   only), each its own dbt process (CPU seconds of the process), and `dbt ls` on the same
   project: what starting dbt and loading the parsed project costs before any node runs.

Models' SQL and writes against dbt's totals say how much of the step is dbt's per-node work
(rendering, the materialization's statements, events) rather than the data.
Writes bench/results/dbt_marts_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
DBT = Path(sys.executable).with_name("dbt")
PROJECT = REPO / "dbt_project"
# the selection of orchestration/assets/dbt.py's dbt_marts step
SELECT = (
    "path:seeds path:models/staging/identity path:models/staging/predictions "
    "path:models/intermediate path:models/marts"
)
BUILD_FLAGS = ["--exclude", "source:identity", "--exclude-resource-type", "unit_test"]


def _timed(run, *args) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run(*args)
    return round(time.perf_counter() - wall, 3), round(time.process_time() - cpu, 3)


def materializations() -> dict[str, str]:
    """Model name -> materialization, from the parsed project (`make setup` writes it)."""
    manifest = json.loads((PROJECT / "target" / "manifest.json").read_text())
    return {
        node["name"]: node["config"]["materialized"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }


def model_sql_costs(warehouse: Path, compiled: Path) -> list[dict]:
    materialized = materializations()
    con = duckdb.connect()
    con.execute(f"attach '{warehouse}' as warehouse")
    con.execute("use warehouse")
    con.execute("set threads = 2")
    con.execute("set preserve_insertion_order = false")
    con.execute("create schema if not exists bench_scratch")
    rows = []
    for folder in ("intermediate", "marts"):
        for path in sorted((compiled / folder).glob("*.sql")):
            sql = path.read_text()
            name = path.stem
            select_only = _timed(con.execute, f"create or replace temp table t as {sql}")
            written = _timed(con.execute, f"create or replace table bench_scratch.{name} as {sql}")
            rows.append(
                {
                    "model": name,
                    "materialized": materialized.get(name, "unknown"),
                    "rows": con.execute("select count(*) from t").fetchone()[0],
                    "sql_seconds": select_only[0],
                    "sql_cpu_seconds": select_only[1],
                    "sql_and_write_seconds": written[0],
                    "sql_and_write_cpu_seconds": written[1],
                }
            )
    con.close()
    return rows


def dbt_process(args: list[str], env: dict) -> dict:
    """One dbt command as its own process: wall and CPU seconds (process and children)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(DBT), *args, "-q"],
        env=env,
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"dbt {' '.join(args)} failed:\n{output.decode()[-3000:]}")
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    args = parser.parse_args(argv)
    compiled = args.warehouse.parent / ".dbt" / "target" / "compiled" / "cdp" / "models"
    if not compiled.is_dir():
        sys.exit(f"{compiled} is missing: pass a warehouse a `cdp run` built (its .dbt/target)")
    report: dict = {
        "warehouse": str(args.warehouse),
        "load_average_before": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory(prefix="dbt_marts_cost_") as scratch:
        copy = Path(scratch) / "warehouse.duckdb"
        shutil.copyfile(args.warehouse, copy)
        models = model_sql_costs(copy, compiled)
        report["models"] = sorted(models, key=lambda m: -m["sql_and_write_cpu_seconds"])
        # a view's SQL runs inside the models that read it, which are measured: its own
        # row would count that work twice (dbt only creates the view)
        built = [m for m in models if m["materialized"] != "view"]
        for key in ("sql_cpu_seconds", "sql_and_write_cpu_seconds"):
            report[f"models_total_{key}"] = round(sum(m[key] for m in built), 2)
        report["models_measured"] = len(built)
        report["views_not_counted"] = sorted(m["model"] for m in models if m not in built)
        env = {
            **os.environ,
            "CDP_WAREHOUSE": str(copy),
            "DBT_PROFILES_DIR": str(PROJECT),
        }
        target = ["--target-path", str(Path(scratch) / "target")]
        report["dbt_ls"] = dbt_process(["ls", *target], env)  # warms partial parsing too
        report["dbt_ls"] = dbt_process(["ls", *target], env)
        report["dbt_run"] = dbt_process(["run", "--select", *SELECT.split(), *target], env)
        report["dbt_test"] = dbt_process(
            ["test", "--select", *SELECT.split(), *BUILD_FLAGS, *target], env
        )
    report["load_average_after"] = round(os.getloadavg()[0], 2)
    run_cpu = report["dbt_run"]["cpu_seconds"] - report["dbt_ls"]["cpu_seconds"]
    report["dbt_run_cpu_seconds_beyond_start_up"] = round(run_cpu, 2)
    report["dbt_run_cpu_seconds_beyond_models_sql_and_write"] = round(
        run_cpu - report["models_total_sql_and_write_cpu_seconds"], 2
    )
    report["dbt_test_cpu_seconds_beyond_start_up"] = round(
        report["dbt_test"]["cpu_seconds"] - report["dbt_ls"]["cpu_seconds"], 2
    )
    out = REPO / "bench" / "results" / "dbt_marts_cost.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "models"}, indent=2))
    for m in report["models"][:10]:
        print(
            f"  {m['model']:<40} {m['materialized']:<12} SQL {m['sql_cpu_seconds']:5.2f}, "
            f"SQL and write {m['sql_and_write_cpu_seconds']:5.2f} CPU s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
