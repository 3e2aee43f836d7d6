"""A generated landing zone loaded into a warehouse for real -- raw partition loads, dbt
staging, identity resolution -- without the rest of the pipeline (no marts, no Dagster).

What the prediction tests and `bench/predictions.py` learn from: the same loading code in
one place, so the bench measures what the tests check. `prepare_held_out_zone` also
builds the reviewers' kind of held-out check: one warehouse with every day but the last
30 (what the models see) and one with every day (what really happened), sharing the
first one's identity map so that outcomes cannot move a customer between the two.

Like the rest of `demo_data`, only the CLI, tests and benches import this module.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from demo_data.generate import first_delivery_day, generate_landing_zone
from demo_data.habits import habits_from_names
from identity.pipeline import resolve_identities
from ingestion.contract import RAW_TABLES
from ingestion.load import load_partitions
from warehouse_engine.dbt_cli import run_on_duckdb

REPO_ROOT = Path(__file__).resolve().parents[1]


class DbtFailed(RuntimeError):
    """A dbt command of the zone build failed; the message carries the end of its log."""


def landing_days(zone: Path) -> list[date]:
    """Every delivery day (`dt=` folder) present in a landing zone, oldest first."""
    return sorted({date.fromisoformat(p.name[3:]) for p in Path(zone).glob("*/*/dt=*")})


def load_raw(warehouse: Path, zone: Path, days: list[date]) -> None:
    """Real partition loads of every source table for `days`."""
    con = duckdb.connect(str(warehouse))
    try:
        for table in RAW_TABLES:
            load_partitions(con, table, days, zone, max_workers=2)
    finally:
        con.close()


def run_dbt(warehouse: Path, work_dir: Path, *args: str) -> str:
    """`dbt <args>` on the repository's project against `warehouse`; its stdout."""
    completed = run_on_duckdb(warehouse, work_dir, args)
    if completed.returncode != 0:
        raise DbtFailed(
            f"dbt {' '.join(args)} failed on {warehouse}:\n"
            + completed.stdout[-6000:]
            + completed.stderr[-2000:]
        )
    return completed.stdout


def build_staging_and_identity(warehouse: Path, work_dir: Path) -> None:
    """dbt staging models from raw.*, then identity resolution into identity.*."""
    run_dbt(warehouse, work_dir, "run", "--selector", "staging_from_raw")
    con = duckdb.connect(str(warehouse))
    try:
        resolve_identities(con)
    finally:
        con.close()


@dataclass(frozen=True)
class ZoneSpec:
    """What `cdp generate` is asked for: seed, size, length and habits of the data."""

    name: str
    seed: int
    customers: int
    days: int
    habits: str | None = None  # `cdp generate --habits`
    hard: bool = False  # `cdp generate --hard`


def copy_identity_map(source: Path, target: Path) -> None:
    """Give `target` the identity map of `source`: a snapshot is a function of the
    delivered rows *given* who each record is, so both sides share one identity map."""
    con = duckdb.connect(str(target))
    try:
        con.execute(f"attach '{source}' as source_wh (read_only)")
        con.execute("create schema if not exists identity")
        con.execute(
            "create or replace table identity.customer_map as "
            "select * from source_wh.identity.customer_map"
        )
    finally:
        con.close()


def prepare_held_out_zone(zone: ZoneSpec, work: Path, hold_back_days: int = 30) -> dict:
    """Generate `zone`, load all but its last `hold_back_days` into `until_t.duckdb` (with
    staging and identity) and every day into `full.duckdb` (with the same identity map).

    Returns the scoring date (the last visible day), the zone's first and last day and the
    seconds it took; a finished preparation in `work` (its `prepared.json`) is reused.
    """
    marker = work / "prepared.json"
    if marker.exists():
        return json.loads(marker.read_text())
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.perf_counter()
    landing = work / "landing"
    generate_landing_zone(
        landing,
        customers=zone.customers,
        days=zone.days,
        seed=zone.seed,
        start=first_delivery_day(zone.days),
        habits=habits_from_names(zone.habits, hard=zone.hard),
    )
    days = landing_days(landing)
    held_out_from = days[-hold_back_days]
    visible = [d for d in days if d < held_out_from]
    warehouse = work / "until_t.duckdb"
    load_raw(warehouse, landing, visible)
    build_staging_and_identity(warehouse, work / "dbt_until_t")
    full = work / "full.duckdb"
    shutil.copyfile(warehouse, full)
    load_raw(full, landing, [d for d in days if d >= held_out_from])
    copy_identity_map(warehouse, full)
    shutil.rmtree(landing, ignore_errors=True)
    info = {
        "scoring_date": visible[-1].isoformat(),
        "first_day": days[0].isoformat(),
        "last_day": days[-1].isoformat(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    marker.write_text(json.dumps(info))
    return info


__all__ = [
    "DbtFailed",
    "ZoneSpec",
    "build_staging_and_identity",
    "landing_days",
    "load_raw",
    "prepare_held_out_zone",
    "run_dbt",
]
