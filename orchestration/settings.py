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
TRAINING_CRON_DEFAULT = "0 4 * * 0"


class SettingError(ValueError):
    """A CDP_* variable with a value the pipeline cannot use; the message names it, quotes
    the value and says what to use instead."""


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


def schedule_timezone() -> str:
    """CDP_SCHEDULE_TIMEZONE: the IANA name both schedules' cron expressions are read in."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    value = os.environ.get("CDP_SCHEDULE_TIMEZONE", "").strip() or DEFAULTS["CDP_SCHEDULE_TIMEZONE"]
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingError(
            f"CDP_SCHEDULE_TIMEZONE={value!r} is not a time zone; use an IANA name such as "
            "UTC, Europe/Berlin or America/New_York"
        ) from None
    return value


def _cron(name: str, default: str) -> str:
    import dagster as dg

    value = os.environ.get(name, "").strip() or default
    try:
        # Dagster's own rules, so that what passes here is what the schedule accepts.
        dg.ScheduleDefinition(name="cdp_setting_probe", cron_schedule=value, job_name="probe")
    except dg.DagsterInvalidDefinitionError:
        raise SettingError(
            f"{name}={value!r} is not a cron expression; use five fields (minute hour "
            f"day-of-month month day-of-week), e.g. {default!r}"
        ) from None
    return value


def schedule_cron() -> str:
    """CDP_SCHEDULE_CRON: when the nightly run starts."""
    return _cron("CDP_SCHEDULE_CRON", DEFAULTS["CDP_SCHEDULE_CRON"])


def training_cron() -> str:
    """CDP_TRAINING_CRON: when the weekly training job retrains the prediction models."""
    return _cron("CDP_TRAINING_CRON", TRAINING_CRON_DEFAULT)


def flag_setting(
    name: str,
    on: tuple[str, ...] = ("1", "true", "yes"),
    off: tuple[str, ...] = ("0", "false", "no"),
) -> bool:
    """An on/off variable; unset is off. Any other value is an error, not a silent off."""
    value = os.environ.get(name, "").strip().lower()
    if value in on:
        return True
    if value in ("", *off):
        return False
    raise SettingError(
        f"{name}={value!r} is not understood; set it to 1 to turn it on, or unset it"
    )


def _warehouse_file() -> None:
    path = Path(configured_path("CDP_WAREHOUSE"))
    if path.is_dir():
        raise SettingError(
            f"CDP_WAREHOUSE={str(path)!r} is a folder; point it at the DuckDB file, "
            f"e.g. {str(path / 'warehouse.duckdb')!r}"
        )


def environment_problems() -> list[str]:
    """Every CDP_* value a run would fail on, each as one message naming the variable:
    checked before a run starts, so a typo is reported at once, all of them together,
    rather than by whichever step reads it first (or, for the alert webhook, only when a
    run fails and its alert cannot be sent)."""
    from ingestion.delivery import settle_seconds_from_env
    from orchestration.alerts import (
        AlertDeliveryError,
        check_webhook,
        http_alerts_allowed,
        webhook_from_env,
    )
    from orchestration.file_modes import FileModeError, bi_group_id
    from orchestration.run_lock import lock_timeout_s
    from quality.store_settings import results_kept_per_suite

    checks = [
        _warehouse_file,
        partitions_start,
        schedule_cron,
        training_cron,
        schedule_timezone,
        lock_timeout_s,
        lambda: settle_seconds_from_env("CDP_SETTLE_SECONDS", 0),
        lambda: settle_seconds_from_env("CDP_SETTLE_MAX_WAIT_SECONDS", 0),
        results_kept_per_suite,
        bi_group_id,
        lambda: flag_setting("CDP_PUBLISH_CONTACTS"),
        http_alerts_allowed,
        lambda: check_webhook(url) if (url := webhook_from_env()) else None,
    ]
    problems = []
    for check in checks:
        try:
            check()
        except (ValueError, FileModeError, AlertDeliveryError) as exc:
            problems.append(str(exc))
    # a bad CDP_ALERT_ALLOW_HTTP is also the webhook check's answer: say it once
    return list(dict.fromkeys(problems))


def engine_settings():
    """CDP_ENGINE and CDP_SPARK_* (warehouse_engine.settings), with this process's warehouse.
    Raises EngineSettingError, whose message names the variable, on a bad value."""
    from warehouse_engine.settings import EngineSettings

    return EngineSettings.from_environment(duckdb_warehouse=configured_path("CDP_WAREHOUSE"))
