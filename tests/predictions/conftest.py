"""A generated landing zone with planted behaviour, loaded for real (ingestion, dbt staging,
identity) without the rest of the pipeline: what the prediction tests read."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from demo_data.generate import generate_landing_zone
from identity.pipeline import resolve_identities
from ingestion.contract import RAW_TABLES
from ingestion.load import load_partitions

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
ZONE_START = date(2026, 6, 1)
ZONE_DAYS = 100
ZONE_CUSTOMERS = 2000


def landing_days(zone: Path) -> list[date]:
    return sorted({date.fromisoformat(p.name[3:]) for p in zone.glob("*/*/dt=*")})


def load_raw(warehouse: Path, zone: Path, days: list[date]) -> None:
    """Real partition loads of every source table for `days`."""
    con = duckdb.connect(str(warehouse))
    try:
        for table in RAW_TABLES:
            load_partitions(con, table, days, zone, max_workers=2)
    finally:
        con.close()


def run_dbt(warehouse: Path, work_dir: Path, *args: str) -> str:
    completed = subprocess.run(
        [
            str(Path(sys.executable).with_name("dbt")),
            *args,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(work_dir / "target"),
            "--log-path",
            str(work_dir / "logs"),
        ],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, "CDP_WAREHOUSE": str(warehouse)},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-2000:]
    return completed.stdout


def build_staging_and_identity(warehouse: Path, work_dir: Path) -> None:
    run_dbt(warehouse, work_dir, "run", "--selector", "staging_from_raw")
    con = duckdb.connect(str(warehouse))
    try:
        resolve_identities(con)
    finally:
        con.close()


@pytest.fixture(scope="session")
def signal_zone(tmp_path_factory) -> Path:
    """2,000 people over 100 days with the generator's planted engagement signal."""
    out = tmp_path_factory.mktemp("prediction_zone") / "landing"
    generate_landing_zone(out, customers=ZONE_CUSTOMERS, days=ZONE_DAYS, seed=5, start=ZONE_START)
    return out


@pytest.fixture(scope="session")
def full_warehouse(signal_zone, tmp_path_factory) -> Path:
    """Every landing day loaded, staging built, identities resolved (no marts yet)."""
    work = tmp_path_factory.mktemp("prediction_full")
    warehouse = work / "warehouse.duckdb"
    load_raw(warehouse, signal_zone, landing_days(signal_zone))
    build_staging_and_identity(warehouse, work)
    return warehouse
