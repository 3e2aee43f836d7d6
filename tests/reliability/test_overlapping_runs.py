"""Two real `cdp run` processes for different days at once: both days survive.

Before the run lock, each run copied the warehouse at its start and renamed its copy over
it at its end, so the later rename silently dropped the other day (both exited 0).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from orchestration.run_lock import read_generation
from tests.reliability.warehouse_state import CdpRun, leftovers, mart_counts, raw_counts

pytestmark = pytest.mark.slow


def test_overlapping_runs_of_two_days_keep_both_and_no_wait_names_the_holder(reference, tmp_path):
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    first_day, second_day = reference.days
    # -v: the line saying the run works on its private copy is in the full log only.
    first = CdpRun(reference.zone, warehouse, "--date", first_day, "-v")
    first.wait_for("private copy")
    holder = json.loads((warehouse.parent / "warehouse.duckdb.run-lock.owner").read_text())
    assert holder["pid"] == first.proc.pid

    second = CdpRun(reference.zone, warehouse, "--date", second_day)
    waiting = second.wait_for("Waiting for the warehouse")
    assert holder["run_id"] in waiting and f"pid {first.proc.pid}" in waiting

    started = time.monotonic()
    refused = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "run", "--landing", str(reference.zone)]
        + ["--warehouse", str(warehouse), "--date", second_day, "--no-wait"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1
    assert holder["run_id"] in refused.stderr
    assert time.monotonic() - started < 15
    assert first.running(), "the refusal was checked while the first run held the lock"

    assert first.finish() == 0, first.output[-3000:]
    assert second.finish() == 0, second.output[-3000:]
    assert raw_counts(warehouse) == reference.raw
    assert mart_counts(warehouse) == reference.marts
    assert mart_counts(warehouse.parent / "bi.duckdb") == reference.marts
    assert read_generation(warehouse) == 2
    assert leftovers(warehouse) == []
