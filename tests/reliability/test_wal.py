"""A WAL left by a killed direct writer is replayed before the run copies the warehouse."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb

from orchestration.resources import WarehouseResource
from orchestration.run_lock import wal_path


def leave_a_wal_behind(warehouse, rows: int = 3) -> None:
    """Write the warehouse directly, without a checkpoint, and get SIGKILLed: what a
    killed ad-hoc writer (or a killed run of hand-picked assets) leaves."""
    code = textwrap.dedent(
        f"""
        import os, signal, duckdb
        con = duckdb.connect({str(warehouse)!r})
        con.execute("SET checkpoint_threshold = '10GB'")
        con.execute("create schema if not exists ops")
        con.execute("create table ops.wal_probe as select range as n from range({rows})")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -9
    assert wal_path(warehouse).exists(), "the writer was meant to leave a WAL"


def test_a_leftover_wal_is_replayed_before_the_copy_and_nothing_is_lost(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).execute("create table t as select 1 as v").close()
    leave_a_wal_behind(warehouse)

    run = WarehouseResource(path=str(warehouse))
    run.begin_run("run-after-the-crash")
    assert not wal_path(warehouse).exists(), "the WAL is folded in before the copy"
    with run.connect() as con:
        assert con.execute("select count(*) from ops.wal_probe").fetchone()[0] == 3
        con.execute("insert into t values (2)")
    assert run.commit_run()
    run.end_run()

    assert not wal_path(warehouse).exists()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from ops.wal_probe").fetchone()[0] == 3
        assert con.execute("select sum(v) from t").fetchone()[0] == 3
    assert sorted(p.name for p in (tmp_path / ".runs").iterdir()) == []
