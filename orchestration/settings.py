"""Where the pipeline reads and writes, resolved once from the environment.

The UI (`dagster dev`), the nightly schedule and `cdp run` all import this module, so
they always agree on the landing zone and the warehouse. Relative paths are taken from
the repository root, not from whatever directory a process happens to start in.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

DEFAULTS = {
    "CDP_LANDING_DIR": "data/landing",
    "CDP_WAREHOUSE": "data/warehouse.duckdb",
    # First day the daily partitions cover. Landing days before it are refused with a
    # message that names this variable.
    "CDP_PARTITIONS_START": "2026-01-01",
    "CDP_SCHEDULE_CRON": "0 2 * * *",
    "CDP_SCHEDULE_TIMEZONE": "UTC",
}


def _absolute(value: str) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (PROJECT_ROOT / path).resolve())


def apply_environment_defaults() -> None:
    """Fill unset CDP_* variables with defaults and make path variables absolute.

    dbt reads CDP_WAREHOUSE from the environment, and Dagster resources read it through
    EnvVar; normalising it here is what keeps the two pointed at the same file.
    """
    for name, default in DEFAULTS.items():
        os.environ.setdefault(name, default)
    for name in ("CDP_LANDING_DIR", "CDP_WAREHOUSE"):
        os.environ[name] = _absolute(os.environ[name])


def configured_path(name: str) -> str:
    """CDP_LANDING_DIR or CDP_WAREHOUSE as an absolute path (the default when unset),
    without changing the environment: importing the code location has no side effects."""
    return _absolute(os.environ.get(name) or DEFAULTS[name])


def partitions_start() -> date:
    raw = os.environ.get("CDP_PARTITIONS_START", DEFAULTS["CDP_PARTITIONS_START"])
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(
            f"CDP_PARTITIONS_START={raw!r} is not a date; use the YYYY-MM-DD form, e.g. 2026-01-01"
        ) from exc


def engine_settings():
    """CDP_ENGINE and CDP_SPARK_* (warehouse_engine.settings), with this process's warehouse.
    Raises EngineSettingError, whose message names the variable, on a bad value."""
    from warehouse_engine.settings import EngineSettings

    return EngineSettings.from_environment(duckdb_warehouse=configured_path("CDP_WAREHOUSE"))
