"""The run lock, generations and copies, with real processes holding real locks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from orchestration.resources import WarehouseResource
from orchestration.run_lock import (
    RunCopy,
    RunLock,
    WarehouseBusy,
    discard_abandoned_copies,
    read_generation,
)


def _hold_lock_in_another_process(warehouse, run_id: str) -> subprocess.Popen:
    """A process (another run, as far as the lock knows) that takes the lock and sleeps."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from orchestration.run_lock import RunLock
        RunLock(Path({str(warehouse)!r})).acquire({run_id!r}, timeout_s=0)
        print("held", flush=True)
        time.sleep(600)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "wh" / "warehouse.duckdb"
    path.parent.mkdir()
    duckdb.connect(str(path)).execute("create table t as select 1 as v").close()
    return path


def test_a_second_run_names_the_holder_and_gives_up_after_its_timeout(warehouse):
    holder = _hold_lock_in_another_process(warehouse, "nightly-run-0001")
    try:
        notices = []
        started = time.monotonic()
        with pytest.raises(WarehouseBusy) as busy:
            RunLock(warehouse).acquire("manual-run", timeout_s=1.5, on_wait=notices.append)
        assert 1.5 <= time.monotonic() - started < 10
        message = str(busy.value)
        assert "nightly-run-0001" in message
        assert f"pid {holder.pid}" in message
        assert "since 20" in message
        assert "CDP_LOCK_TIMEOUT_S" in message
        assert len(notices) == 1 and "nightly-run-0001" in notices[0]
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()


def test_a_killed_holder_releases_the_lock(warehouse):
    holder = _hold_lock_in_another_process(warehouse, "killed-run")
    lock = RunLock(warehouse)
    assert lock.owner().run_id == "killed-run"
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()
    assert lock.owner() is None
    assert lock.acquire("next-run", timeout_s=0) is True
    assert lock.owner().run_id == "next-run"
    lock.release("next-run")
    assert not lock.is_held()


def test_a_step_process_of_the_holding_run_is_let_in(warehouse):
    """Dagster's multiprocess executor runs steps in processes of their own: the lock
    belongs to the run, so a process of the same run goes on under it."""
    holder = _hold_lock_in_another_process(warehouse, "run-with-steps")
    try:
        assert RunLock(warehouse).acquire("run-with-steps", timeout_s=0) is False
        with pytest.raises(WarehouseBusy):
            RunLock(warehouse).acquire("another-run", timeout_s=0)
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()


def test_the_lock_is_reentrant_for_its_run_within_a_process(warehouse):
    lock = RunLock(warehouse)
    assert lock.acquire("run-a", timeout_s=0)
    assert lock.acquire("run-a", timeout_s=0)  # e.g. `cdp run`, then the run's resource
    lock.release("run-a")
    assert lock.is_held()
    with pytest.raises(WarehouseBusy):
        lock.acquire("run-b", timeout_s=0)
    lock.release("run-a")
    assert not lock.is_held()


def test_a_commit_on_top_of_a_newer_generation_is_refused(warehouse):
    import dagster as dg

    # A run takes its copy at generation 0 ...
    stale = WarehouseResource(path=str(warehouse))
    stale.begin_run("stale-run")
    with stale.connect() as con:
        con.execute("insert into t values (2)")
    # ... and, had it lost its lock (the case generations guard), another run commits.
    RunLock(warehouse).release("stale-run")
    other = WarehouseResource(path=str(warehouse))
    other._run_id, other._transactional = "other-run", True
    RunCopy(warehouse, "other-run").take()
    assert other.commit_run()
    assert read_generation(warehouse) == 1
    before = warehouse.read_bytes()

    with pytest.raises(dg.Failure, match="generation 0 .* now at generation 1"):
        stale.commit_run()
    assert warehouse.read_bytes() == before, "a refused commit leaves the warehouse untouched"
    assert read_generation(warehouse) == 1


def test_copies_are_removed_only_when_their_owner_is_gone(warehouse):
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        for run_id, pid in (("live-owner", alive.pid), ("dead-owner", 999_999_999)):
            copy = RunCopy(warehouse, run_id)
            copy.runs_dir.mkdir(exist_ok=True)
            copy.file.write_bytes(b"copy")
            copy._write_record(base_generation=0)
            record = copy.record() | {"pid": pid}
            copy.record_path.write_text(__import__("json").dumps(record))
        removed = discard_abandoned_copies(warehouse, keep_run_id="me")
        assert removed == ["dead-owner"]
        assert RunCopy(warehouse, "live-owner").exists()
    finally:
        alive.kill()
        alive.wait()


def test_cdp_run_no_wait_fails_at_once_naming_the_holder(warehouse, tmp_path):
    landing = tmp_path / "landing" / "email" / "contacts" / "dt=2026-10-01"
    landing.mkdir(parents=True)
    holder = _hold_lock_in_another_process(warehouse, "nightly-run-0002")
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    try:
        started = time.monotonic()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "orchestration.cli",
                "run",
                "--landing",
                str(tmp_path / "landing"),
                "--warehouse",
                str(warehouse),
                "--no-wait",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        elapsed = time.monotonic() - started
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "nightly-run-0002" in result.stderr
    assert f"pid {holder.pid}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert elapsed < 15, "--no-wait must not wait (nor start Dagster)"
    assert not (warehouse.parent / ".runs").exists()
