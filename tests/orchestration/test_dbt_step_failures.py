"""A failed `dbt build` step says what failed and retries only what a retry can fix."""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.assets.dbt import (
    CdpDbtCliResource,
    cdp_dbt_project,
    dbt_staging,
    dbt_step_failure,
)
from orchestration.resources import WarehouseResource


def test_a_model_error_fails_the_step_once_naming_the_models_and_no_retry(tmp_path):
    # A warehouse without the raw tables: every staging model fails the same way however
    # often it runs, so the step must not wait out its retry policy and rebuild.
    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    result = dg.materialize(
        [dbt_staging],
        resources={
            "warehouse": WarehouseResource(path=str(warehouse)),
            "dbt": CdpDbtCliResource(
                project_dir=cdp_dbt_project,
                dbt_executable=str(Path(sys.executable).with_name("dbt")),
            ),
        },
        raise_on_error=False,
    )
    assert not result.success
    events = [e.event_type_value for e in result.all_events]
    assert events.count("STEP_FAILURE") == 1 and "STEP_UP_FOR_RETRY" not in events
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "`dbt build (dbt_staging)` failed on" in message
    assert "model stg_email__contacts: error (Catalog Error)" in message
    assert "a retry would fail the same way" in message
    assert "dbt's full messages are in the run's log" in message


def _results(*rows):
    return {
        "results": [
            dict(zip(("unique_id", "status", "message", "failures"), r, strict=True)) for r in rows
        ]
    }


def test_only_failures_a_retry_can_fix_are_retried():
    locked = _results(
        (
            "model.cdp.stg_web__events",
            "error",
            'IO Error: Could not set lock on file "/w/warehouse.duckdb": Conflicting lock is held',
            None,
        ),
        ("model.cdp.stg_web__pages", "skipped", None, None),
    )
    assert dbt_step_failure(locked, "dbt build").retriable

    # A failing error-severity test beside a lock error: the test fails again on retry.
    mixed = _results(
        ("model.cdp.stg_web__events", "error", "IO Error: Could not set lock on file", None),
        ("test.cdp.unique_dim_customers_customer_id.1a2b", "fail", "Got 3 results", 3),
    )
    failure = dbt_step_failure(mixed, "dbt build (dbt_marts)")
    assert not failure.retriable
    assert "test unique_dim_customers_customer_id: fail (3 failing row(s))" in failure.description

    # No results at all: dbt stopped before any node (cause unknown, so one retry).
    assert dbt_step_failure(None, "dbt build").retriable


def test_the_description_keeps_error_text_with_row_values_out():
    # DuckDB quotes the offending value; the step's failure (shown in the UI, the CLI and
    # alerts) names only the error's class.
    results = _results(
        (
            "model.cdp.stg_billing__customers",
            "error",
            "Conversion Error: Could not convert string 'ann@example.com' to INT32",
            None,
        ),
    )
    failure = dbt_step_failure(results, "dbt build (dbt_staging)")
    assert "Conversion Error" in failure.description
    assert "ann@example.com" not in failure.description
    assert not failure.retriable
