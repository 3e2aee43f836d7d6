"""A generated landing zone with planted behaviour, loaded for real (ingestion, dbt staging,
identity) without the rest of the pipeline: what the prediction tests read."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from demo_data.generate import generate_landing_zone
from demo_data.loaded_zone import build_staging_and_identity, landing_days, load_raw

ZONE_START = date(2026, 6, 1)
ZONE_DAYS = 100
ZONE_CUSTOMERS = 2000


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
