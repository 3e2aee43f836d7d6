"""A generated landing zone with planted behaviour, loaded for real (ingestion, dbt staging,
identity) without the rest of the pipeline: what the prediction tests read."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def full_warehouse(signal_zone, tmp_path_factory) -> Path:
    """Every landing day loaded, staging built, identities resolved (no marts yet)."""
    work = tmp_path_factory.mktemp("prediction_full")
    warehouse = work / "warehouse.duckdb"
    load_raw(warehouse, signal_zone, landing_days(signal_zone))
    build_staging_and_identity(warehouse, work)
    return warehouse
