"""Benchmark the dbt project: `dbt build` of every model on a generated landing zone.

    .venv/bin/python bench/marts.py --customers 1000000          # target: < 3 min on 2 cores

1. Generates a landing zone (demo_data.generate.generate_landing_zone) unless --landing
   points at one, and loads every partition of every raw table (ingestion.load.load_partition);
   or copies a warehouse already loaded that way (--loaded-warehouse, e.g. the
   `loaded.duckdb` a previous run kept with --keep-loaded): loading is not what is measured.
2. Builds the staging models, resolves identities with the real engine
   (identity.pipeline.resolve_identities; or --identity sql-standin, a one-line SQL stand-in
   that makes every source record its own customer, to time dbt alone quickly).
3. Times the measured step: `dbt build --full-refresh` of ALL models (staging, intermediate,
   marts, with contracts, data tests and unit tests), threads 2, as `cdp run` would.
   Reports wall and CPU seconds (dbt + DuckDB threads) and the 1-minute load average around
   it: the 2 cores are shared, so CPU time is the steadier figure.
Prints and writes bench/results/marts-<customers>.json, with the slowest models.

    .venv/bin/python bench/marts.py --landing /tmp/zone --keep-loaded /tmp/loaded.duckdb
    .venv/bin/python bench/marts.py --loaded-warehouse /tmp/loaded.duckdb --identity sql-standin
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from warehouse_engine.dbt_cli import DBT_PROJECT_DIR, dbt_command  # noqa: E402

THREADS = 2


def generate(landing: Path, customers: int, days: int, seed: int) -> dict:
    from demo_data.generate import generate_landing_zone

    summary = generate_landing_zone(landing, customers=customers, days=days, seed=seed)
    return {"seconds": summary.elapsed_seconds, "rows_per_table": summary.rows_per_table}


def load(warehouse: Path, landing: Path) -> dict:
    from ingestion.contract import RAW_TABLES
    from ingestion.load import configure_connection, load_partition

    started = time.perf_counter()
    con = duckdb.connect(str(warehouse))
    configure_connection(con, threads=THREADS)
    rows = 0
    for name, spec in RAW_TABLES.items():
        table_dir = landing / spec.landing_path
        days = sorted(
            date.fromisoformat(folder.name.removeprefix("dt="))
            for folder in table_dir.glob("dt=*")
            if folder.is_dir()
        )
        for dt in days:
            rows += load_partition(con, name, dt, landing).rows_loaded
    con.close()
    return {"seconds": round(time.perf_counter() - started, 1), "rows_loaded": rows}


@dataclass(frozen=True)
class DbtTiming:
    """Wall and CPU seconds of one dbt invocation, and the machine's load around it.

    The cores are shared, so wall time depends on what else runs; CPU time (user + system
    of dbt and its DuckDB threads) is the steadier figure.
    """

    wall_seconds: float
    cpu_seconds: float
    load_average_1m_before: float
    load_average_1m_after: float


def run_dbt(warehouse: Path, work_dir: Path, *args: str) -> DbtTiming:
    """Run dbt against `warehouse` and time it; raises with dbt's output on failure."""
    command = dbt_command(args, work_dir)
    env = {**os.environ, "CDP_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    load_before = os.getloadavg()[0]
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise SystemExit(
            f"`dbt {' '.join(args)}` failed:\n{completed.stdout[-8000:]}\n{completed.stderr[-2000:]}"
        )
    cpu = (children_after.ru_utime - children_before.ru_utime) + (
        children_after.ru_stime - children_before.ru_stime
    )
    return DbtTiming(
        wall_seconds=round(seconds, 1),
        cpu_seconds=round(cpu, 1),
        load_average_1m_before=round(load_before, 2),
        load_average_1m_after=round(os.getloadavg()[0], 2),
    )


def resolve_identities_with_engine(warehouse: Path) -> dict:
    from identity.pipeline import resolve_identities

    con = duckdb.connect(str(warehouse))
    con.execute(f"set threads = {THREADS}")
    started = time.perf_counter()
    resolve_identities(con)
    con.close()
    return {
        "method": "identity.pipeline.resolve_identities",
        "seconds": round(time.perf_counter() - started, 1),
    }


STANDIN_SQL = """
create schema if not exists identity;
create or replace table identity.customer_map as
with records as (
    select 'email' as source_system, contact_id as source_record_id from staging.stg_email__contacts
    union all select 'billing', customer_id from staging.stg_billing__customers
    union all select distinct 'web', coalesce(anonymous_id, user_id) from staging.stg_web__events
    where user_id is not null
)
select source_system, source_record_id, 'cus_' || md5(source_system || ':' || source_record_id) as customer_id,
       'singleton' as match_rule, cast(null as double) as match_weight, cast(null as varchar) as matched_record,
       now()::timestamp as first_assigned_at, now()::timestamp as updated_at
from records;
create or replace table identity.golden_customers as
select customer_id, null::varchar as first_name, null::varchar as last_name, null::varchar as full_name,
       null::varchar as email, null::varchar as email_source_record, null::varchar as phone,
       null::varchar as phone_source_record, null::varchar as address_line1, null::varchar as address_city,
       null::varchar as address_postal_code, null::varchar as address_country,
       null::varchar as address_source_record, null::varchar as billing_user_id, 1::bigint as n_source_records,
       0::bigint as n_emails, 0::bigint as n_phones, now()::timestamp as first_seen_at,
       now()::timestamp as last_seen_at, now()::timestamp as created_at, now()::timestamp as updated_at
from identity.customer_map;
create table if not exists identity.merge_log (merged_at timestamp, surviving_customer_id varchar,
    retired_customer_id varchar, record_a varchar, record_b varchar, match_rule varchar, match_weight double);
create table if not exists identity.refused_merges (refused_at timestamp, customer_a varchar,
    customer_b varchar, record_a varchar, record_b varchar, guard varchar, detail varchar);
"""


def resolve_identities_with_sql_standin(warehouse: Path) -> dict:
    started = time.perf_counter()
    con = duckdb.connect(str(warehouse))
    con.execute(STANDIN_SQL)
    con.close()
    return {
        "method": "sql stand-in (every record its own customer)",
        "seconds": round(time.perf_counter() - started, 1),
    }


def slowest_models(work_dir: Path, top: int = 10) -> list[dict]:
    results = json.loads((work_dir / "target" / "run_results.json").read_text())["results"]
    timed = sorted(results, key=lambda r: r["execution_time"], reverse=True)[:top]
    return [{"node": r["unique_id"], "seconds": round(r["execution_time"], 1)} for r in timed]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--landing", type=Path, help="use this landing zone instead of generating one"
    )
    parser.add_argument(
        "--work-dir", type=Path, help="keep the warehouse here (default: a temp dir)"
    )
    parser.add_argument(
        "--loaded-warehouse",
        type=Path,
        help="copy this warehouse (raw.* loaded from a landing zone) instead of loading one",
    )
    parser.add_argument(
        "--keep-loaded",
        type=Path,
        help="save a copy of the warehouse right after loading, for --loaded-warehouse",
    )
    parser.add_argument("--identity", choices=["engine", "sql-standin"], default="engine")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cdp-bench-marts-") as scratch:
        work_dir = args.work_dir or Path(scratch)
        work_dir.mkdir(parents=True, exist_ok=True)
        warehouse = work_dir / "warehouse.duckdb"
        if warehouse.exists():
            raise SystemExit(f"{warehouse} already exists: pass an empty --work-dir")
        report: dict = {"customers": args.customers, "days": args.days, "threads": THREADS}
        if args.loaded_warehouse is not None:
            shutil.copyfile(args.loaded_warehouse, warehouse)
            report["load"] = {"copied_from": str(args.loaded_warehouse)}
            print(f"copied the loaded warehouse {args.loaded_warehouse}", flush=True)
        else:
            landing = args.landing
            if landing is None:
                landing = work_dir / "landing"
                report["generate"] = generate(landing, args.customers, args.days, args.seed)
                print(f"generated {landing} in {report['generate']['seconds']} s", flush=True)
            report["load"] = load(warehouse, landing)
            print(
                f"loaded {report['load']['rows_loaded']:,} raw rows in {report['load']['seconds']} s",
                flush=True,
            )
            if args.keep_loaded is not None:
                shutil.copyfile(warehouse, args.keep_loaded)
        report["dbt_build_staging"] = asdict(
            run_dbt(warehouse, work_dir, "build", "--selector", "staging_from_raw")
        )
        resolver = (
            resolve_identities_with_engine
            if args.identity == "engine"
            else resolve_identities_with_sql_standin
        )
        report["identity"] = resolver(warehouse)
        print(f"identity: {report['identity']}", flush=True)

        build = run_dbt(warehouse, work_dir, "build", "--full-refresh")
        report["dbt_build_all_models"] = asdict(build)
        report["dbt_build_all_models_seconds"] = build.wall_seconds
        report["slowest_nodes"] = slowest_models(work_dir)
        con = duckdb.connect(str(warehouse), read_only=True)
        report["mart_rows"] = dict(
            con.execute(
                "select table_name, estimated_size from duckdb_tables() where schema_name = 'marts' order by 1"
            ).fetchall()
        )
        con.close()

    report["target_seconds"] = 180
    report["within_target"] = report["dbt_build_all_models_seconds"] < 180
    results_dir = REPO / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / f"marts-{args.customers}.json").write_text(
        json.dumps(report, indent=2, default=str)
    )
    print(json.dumps(report, indent=2, default=str))
    return 0 if report["within_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
