"""One night of `int_billing__customer_mrr_monthly` alone: incremental against a whole rebuild.

    nice .venv/bin/python bench/mrr_monthly_night.py NIGHT.duckdb PREVIOUS.duckdb [--repeat 3]

NIGHT is a warehouse after a night built by a whole rebuild of the model (e.g. main's
`bench/nightly.py --workdir`), PREVIOUS the warehouse of the night before with the model's
snapshots (`dbt_incremental.mrr_monthly_*`, which this branch's build leaves). On a copy of
NIGHT whose MRR table and snapshots are PREVIOUS's (so: the state the night's model step
started from), this compiles the model both ways with dbt, times each SELECT (CPU seconds of
the process, so DuckDB's threads too), applies the incremental one as `replace_keys` does
and checks the table equals NIGHT's rebuilt one, every column. Writes
bench/results/mrr_monthly_night.json.
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
MODEL = "int_billing__customer_mrr_monthly"
TABLE = f"intermediate.{MODEL}"
SNAPSHOTS = ("mrr_monthly_versions", "mrr_monthly_billing_identities", "mrr_monthly_as_of")


def _compiled(warehouse: Path, target: Path, *flags: str) -> str:
    env = {**os.environ, "CDP_WAREHOUSE": str(warehouse)}
    subprocess.run(
        [str(DBT), "compile", "--select", MODEL, "--target-path", str(target), *flags],
        cwd=REPO / "dbt_project",
        env=env,
        check=True,
        capture_output=True,
    )
    return (target / "compiled" / "cdp" / "models" / "intermediate" / f"{MODEL}.sql").read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("night", type=Path)
    parser.add_argument("previous", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="mrr-night-", dir=args.night.parent))
    try:
        warehouse = scratch / "warehouse.duckdb"  # the stem names the dbt database
        shutil.copyfile(args.night, warehouse)
        con = duckdb.connect(str(warehouse))
        con.execute(f"attach '{args.previous}' as previous (read_only)")
        con.execute(f"create table main.rebuilt as select * from {TABLE}")
        con.execute(f"create or replace table {TABLE} as select * from previous.{TABLE}")
        con.execute("create schema if not exists dbt_incremental")
        for name in SNAPSHOTS:
            con.execute(
                f"create or replace table dbt_incremental.{name} as "
                f"select * from previous.dbt_incremental.{name}"
            )
        con.execute("detach previous")
        con.close()
        queries = {
            "incremental": _compiled(warehouse, scratch / "incremental"),
            "rebuild": _compiled(warehouse, scratch / "rebuild", "--full-refresh"),
        }
        con = duckdb.connect(str(warehouse))
        seconds: dict[str, list[list[float]]] = {name: [] for name in queries}
        for _ in range(args.repeat):
            for name, sql in queries.items():
                wall, cpu = time.perf_counter(), time.process_time()
                con.execute(f"create or replace temp table out_{name} as {sql}")
                seconds[name].append(
                    [round(time.perf_counter() - wall, 3), round(time.process_time() - cpu, 3)]
                )
        found = con.execute(
            "select count(distinct customer_id), count(*) from out_incremental"
        ).fetchone()
        customers = con.execute("select count(distinct customer_id) from out_rebuild").fetchone()
        con.execute(
            f"delete from {TABLE} where customer_id in (select customer_id from out_incremental)"
        )
        con.execute(
            f"insert into {TABLE} select * from out_incremental where month_start is not null"
        )
        differences = [
            con.execute(f"select count(*) from ({left} except all {right})").fetchone()[0]
            for left, right in (
                (f"select * from {TABLE}", "select * from main.rebuilt"),
                ("select * from main.rebuilt", f"select * from {TABLE}"),
            )
        ]
        rows = con.execute("select count(*) from main.rebuilt").fetchone()[0]
        con.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = {
        "night": str(args.night),
        "previous": str(args.previous),
        "rows": rows,
        "customers": customers[0],
        "customers_recomputed": found[0],
        "rows_returned": found[1],
        "select_wall_cpu_seconds": seconds,
        "rows_differing_from_rebuild": differences,
        "load_average": list(os.getloadavg()),
    }
    print(json.dumps(result, indent=2))
    (REPO / "bench" / "results" / "mrr_monthly_night.json").write_text(
        json.dumps(result, indent=2) + "\n"
    )
    if differences != [0, 0]:
        raise SystemExit(f"incremental != rebuild: {differences} rows differ")


if __name__ == "__main__":
    main()
