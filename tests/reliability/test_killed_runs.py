"""`kill -9` a real `cdp run` early, inside dbt and in its last step: the warehouse and the
BI files stay as they were, and the next run succeeds and leaves no copy or temp file behind.

The three kills are the three kinds of step: Python writing the run's copy (ingestion), a
dbt process of its own writing it (marts), and the step that renames the copy over the
warehouse and swaps the BI files (publish). Kills at random moments of any step, next to
another run and a BI reader, are `make chaos` (20 rounds; one round runs in this suite)."""

from __future__ import annotations

import hashlib

import duckdb
import pytest

from tests.reliability.test_wal import leave_a_wal_behind
from tests.reliability.warehouse_state import CdpRun, leftovers, mart_counts, raw_counts

pytestmark = pytest.mark.slow

# step -> the Dagster step key whose start the kill waits for
STEPS = {
    "ingestion": "raw__email_events",
    "marts": "dbt_marts",
    "publish": "published__marts",
}


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_run_killed_in_python_in_dbt_or_while_publishing_changes_nothing(reference, tmp_path):
    warehouse = reference.copy_to(tmp_path / "wh")
    bi = warehouse.parent / "bi.duckdb"
    warehouse_before, bi_before = _digest(warehouse), _digest(bi)
    day = reference.days[-1]

    for step, step_key in STEPS.items():
        run = CdpRun(reference.zone, warehouse, "--date", day, "--verbose")
        run.wait_for(f'Started execution of step "{step_key}')
        assert run.kill(), f"the run had finished before the kill in {step}"
        assert _digest(warehouse) == warehouse_before, f"killed in {step}"
        assert _digest(bi) == bi_before, f"killed in {step}"

    # A direct writer killed without a checkpoint leaves a WAL: the next run keeps its rows.
    leave_a_wal_behind(warehouse, rows=4)

    recovery = CdpRun(reference.zone, warehouse, "--date", day)
    assert recovery.finish() == 0, recovery.output[-3000:]
    assert raw_counts(warehouse) == reference.raw
    assert mart_counts(warehouse) == reference.marts
    assert mart_counts(bi) == reference.marts
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from ops.wal_probe").fetchone()[0] == 4
    assert leftovers(warehouse) == []
