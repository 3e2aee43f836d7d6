"""A generated landing zone with planted behaviour, loaded for real (ingestion, dbt staging,
identity) without the rest of the pipeline: what the prediction tests read."""

from __future__ import annotations

import os
import shutil
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


# The backtest tests also read warehouses holding only the first days of the zone; the
# full load passes through them, so a copy is kept on the way instead of loading again.
PREFIX_DAYS = (40, 60)


@pytest.fixture(scope="session")
def raw_prefixes(signal_zone, tmp_path_factory) -> dict[int, Path]:
    """n -> a warehouse whose raw tables hold the zone's first n landing days (n in
    PREFIX_DAYS, and every day), loaded for real one range of days after another."""
    work = tmp_path_factory.mktemp("prediction_raw")
    warehouse = work / "warehouse.duckdb"
    days = landing_days(signal_zone)
    prefixes, loaded = {}, 0
    for n in (*PREFIX_DAYS, len(days)):
        load_raw(warehouse, signal_zone, days[loaded:n])
        loaded = n
        prefixes[n] = work / f"first_{n}_days.duckdb"
        shutil.copyfile(warehouse, prefixes[n])
    return prefixes


@pytest.fixture(scope="session")
def full_warehouse(signal_zone, raw_prefixes, tmp_path_factory) -> Path:
    """Every landing day loaded, staging built, identities resolved (no marts yet)."""
    work = tmp_path_factory.mktemp("prediction_full")
    warehouse = work / "warehouse.duckdb"
    shutil.copyfile(raw_prefixes[len(landing_days(signal_zone))], warehouse)
    build_staging_and_identity(warehouse, work)
    return warehouse


@pytest.fixture(scope="session")
def scored(full_warehouse, tmp_path_factory):
    """A copy of the full warehouse after the real training and scoring assets and their
    checks (one training run, shared by the asset tests and the backtest test)."""
    import dagster as dg

    from orchestration.assets.predictions import (
        customer_scores,
        customer_scores_check,
        model_performance,
        model_performance_check,
    )
    from orchestration.resources import WarehouseResource

    work = tmp_path_factory.mktemp("scored")
    warehouse = work / "warehouse.duckdb"
    shutil.copyfile(full_warehouse, warehouse)
    resource = WarehouseResource(path=str(warehouse))
    result = dg.materialize(
        [model_performance, customer_scores, model_performance_check, customer_scores_check],
        resources={"warehouse": resource},
    )
    return warehouse, resource, result, work
