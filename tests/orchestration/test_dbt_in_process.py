"""dbt running inside the step's process must let go of the warehouse when its command ends.

The next step (identity, the GX checks, the next dbt command through the same `.dbt/` link)
opens the same file. A DuckDB database dbt left open there is handed back by DuckDB's
instance cache with the catalog it had, so the marts would be built from the tables as they
were before the identity step wrote them. This once made CI fail: the four cross-layer
mart checks all found yesterday's marts.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import duckdb
import pytest
from dbt.adapters.duckdb.connections import DuckDBConnectionManager
from dbt.cli.main import dbtRunner

from orchestration.dbt_in_process import _close_duckdb


def _open_paths(path: Path) -> list[str]:
    """This process's open file descriptors on `path` or its WAL."""
    names = {str(path), str(path) + ".wal"}
    opened = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target in names:
            opened.append(target)
    return opened


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: tiny\nversion: '1.0'\nprofile: tiny\nconfig-version: 2\n", encoding="utf-8"
    )
    (project / "profiles.yml").write_text(
        textwrap.dedent(
            f"""\
            tiny:
              target: dev
              outputs:
                dev:
                  type: duckdb
                  path: "{tmp_path / "warehouse.duckdb"}"
                  threads: 2
            """
        ),
        encoding="utf-8",
    )
    (project / "models" / "numbers.sql").write_text(
        "select range as n from range(1000)", encoding="utf-8"
    )
    return project


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc/self/fd")
def test_the_warehouse_is_closed_even_while_something_still_refers_to_dbts_environment(
    tiny_project: Path,
):
    warehouse = tiny_project.parent / "warehouse.duckdb"
    target = tiny_project.parent / "target"
    result = dbtRunner().invoke(
        [
            "run",
            "--project-dir",
            str(tiny_project),
            "--profiles-dir",
            str(tiny_project),
            "--target-path",
            str(target),
            "--log-path",
            str(target),
            "--log-level",
            "none",
        ]
    )
    assert result.success, result.exception
    # What a traceback or an uncollected cycle does in a real run: a reference survives.
    lingering = DuckDBConnectionManager._ENV
    assert lingering is not None and _open_paths(warehouse), "dbt left its database open"

    _close_duckdb()

    assert _open_paths(warehouse) == [], "the warehouse is still open after the dbt command"
    assert not Path(str(warehouse) + ".wal").exists(), "dbt's last writes are not in the file"
    # A connection with another configuration is refused while a cached instance lives.
    with duckdb.connect(str(warehouse), config={"threads": 1}) as con:
        assert con.execute("select count(*) from numbers").fetchone() == (1000,)
    del lingering
