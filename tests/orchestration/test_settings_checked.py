"""Every CDP_* setting a run reads is checked before the run starts: a typo gets one
line naming the variable and what to use, never a traceback or a half-started run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.alerts import AlertDeliveryError, check_webhook
from orchestration.assets.publish import contacts_opted_in
from orchestration.settings import SettingError, environment_problems, flag_setting

REPO = Path(__file__).resolve().parents[2]


def _cdp_run(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDP_")}
    env.update(DAGSTER_HOME=str(tmp_path / "dagster_home"), **settings)
    (tmp_path / "landing" / "web" / "events" / "dt=2026-10-01").mkdir(parents=True)
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "run", "--date", "2026-10-01"]
        + ["--landing", str(tmp_path / "landing")]
        + ["--warehouse", str(tmp_path / "data" / "warehouse.duckdb")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cdp_run_lists_every_bad_setting_and_runs_nothing(tmp_path):
    result = _cdp_run(
        tmp_path,
        CDP_SCHEDULE_CRON="every night",
        CDP_SCHEDULE_TIMEZONE="Mars/Olympus",
        CDP_LOCK_TIMEOUT_S="an hour",
        CDP_PUBLISH_CONTACTS="on",
        CDP_ALERT_WEBHOOK="ftp://alerts.example.com/hook/s3cret",
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "5 settings need fixing before a run (nothing was run)" in result.stderr
    for expected in (
        "CDP_SCHEDULE_CRON='every night' is not a cron expression",
        "CDP_SCHEDULE_TIMEZONE='Mars/Olympus' is not a time zone",
        "CDP_LOCK_TIMEOUT_S='an hour' is not a number of seconds",
        "CDP_PUBLISH_CONTACTS='on' is not understood",
        "CDP_ALERT_WEBHOOK must be an https:// URL",
    ):
        assert expected in result.stderr
    assert "s3cret" not in result.stderr  # the webhook's path is its secret
    # refused before the run lock, the copy or a log: nothing written next to the warehouse
    assert not (tmp_path / "data").exists()


def test_one_bad_setting_is_one_line(tmp_path):
    result = _cdp_run(tmp_path, CDP_PARTITIONS_START="yesterday")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "cdp run: CDP_PARTITIONS_START='yesterday' is not a date; use the YYYY-MM-DD form, "
        "e.g. 2026-01-01; nothing was run"
    ]


def test_the_code_location_names_a_bad_schedule_setting(tmp_path):
    # The UI and the daemon load the schedules from the code location: its load error is
    # what they show, so it must name the variable rather than Dagster's schedule name.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDP_")}
    env.update(CDP_TRAINING_CRON="*/0", DAGSTER_HOME=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", "import orchestration.definitions"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "orchestration.settings.SettingError: CDP_TRAINING_CRON='*/0' is not a cron "
        "expression; use five fields (minute hour day-of-month month day-of-week), "
        "e.g. '0 4 * * 0'"
    )


def test_the_defaults_and_documented_values_pass(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("CDP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CDP_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    assert environment_problems() == []
    monkeypatch.setenv("CDP_SCHEDULE_CRON", "30 1 * * 1-5")
    monkeypatch.setenv("CDP_SCHEDULE_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("CDP_ALERT_WEBHOOK", "http://localhost:9000/hook")
    monkeypatch.setenv("CDP_ALERT_ALLOW_HTTP", "1")
    monkeypatch.setenv("CDP_PUBLISH_CONTACTS", "yes")
    assert environment_problems() == []
    monkeypatch.setenv("CDP_WAREHOUSE", str(tmp_path))
    assert environment_problems() == [
        f"CDP_WAREHOUSE={str(tmp_path)!r} is a folder; point it at the DuckDB file, "
        f"e.g. {str(tmp_path / 'warehouse.duckdb')!r}"
    ]


@pytest.mark.parametrize(
    ("value", "on"),
    [("", False), ("0", False), ("no", False), ("1", True), ("TRUE", True), ("yes", True)],
)
def test_an_on_off_setting_reads_its_documented_values(monkeypatch, value, on):
    monkeypatch.setenv("CDP_PUBLISH_CONTACTS", value)
    assert flag_setting("CDP_PUBLISH_CONTACTS") is on
    assert contacts_opted_in() is on


def test_an_unknown_on_off_value_is_an_error_not_a_silent_off(monkeypatch):
    # Before: CDP_PUBLISH_CONTACTS=on published no contacts file, and said nothing.
    monkeypatch.setenv("CDP_PUBLISH_CONTACTS", "on")
    with pytest.raises(SettingError, match="CDP_PUBLISH_CONTACTS='on' is not understood"):
        contacts_opted_in()
    monkeypatch.setenv("CDP_ALERT_ALLOW_HTTP", "yes")  # only 1 allows plain http
    with pytest.raises(AlertDeliveryError, match="CDP_ALERT_ALLOW_HTTP='yes'"):
        check_webhook("http://localhost:9000/hook")
