"""dbt opens the warehouse through a stable hard link (so its partial parsing survives the
per-run copies); a dbt killed mid-write must not lose or misplace what it committed."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb

from orchestration.resources import WarehouseResource

KILLED_WRITER = """
import os, sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("SET checkpoint_threshold = '1TB'")  # commit to the WAL only, like a busy dbt
con.execute("insert into t select range from range(1000)")
os._exit(9)  # no close, no checkpoint: what SIGKILL leaves
"""


def test_a_killed_dbt_writing_through_the_link_loses_nothing(tmp_path):
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    duckdb.connect(str(warehouse)).execute("create table t (x bigint)").close()
    resource = WarehouseResource(path=str(warehouse), lock_timeout_s=5)

    with resource.dbt_environment():
        link = os.environ["CDP_WAREHOUSE"]
        assert link == str(warehouse.parent / ".dbt" / "warehouse.duckdb")
        assert os.stat(link).st_ino == warehouse.stat().st_ino
        killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, link])
        assert killed.returncode == 9
        assert os.path.exists(link + ".wal"), "the killed writer left its WAL by the link"
    assert os.environ.get("CDP_WAREHOUSE") != link

    # The WAL was replayed into the warehouse before the link was removed.
    assert not (warehouse.parent / ".dbt" / "warehouse.duckdb").exists()
    assert not list((warehouse.parent / ".dbt").glob("*.wal"))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from t").fetchone()[0] == 1000
