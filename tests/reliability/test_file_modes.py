"""Private by default: nothing the pipeline writes is readable by other users; the BI
files are shared with a group only when CDP_BI_GROUP says so."""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.assets.publish import published_marts
from orchestration.resources import WarehouseResource


def _modes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode)
        for p in [folder, *folder.rglob("*")]
    }


@pytest.mark.slow
def test_after_a_real_run_nothing_under_the_warehouse_folder_is_readable_by_others(reference):
    modes = _modes(reference.warehouse.parent)
    assert {"warehouse.duckdb", "bi.duckdb", "bi_parquet", "quality_docs", ".runs"} <= set(modes)
    open_to_others = {name: oct(mode) for name, mode in modes.items() if mode & 0o077}
    assert open_to_others == {}


def _materialize_publish(warehouse: Path) -> None:
    result = dg.materialize(
        [published_marts], resources={"warehouse": WarehouseResource(path=str(warehouse))}
    )
    assert result.success


def test_a_bi_group_can_read_the_published_files_and_nothing_else(tmp_path, monkeypatch):
    group = grp.getgrgid(os.getgid()).gr_name
    monkeypatch.setenv("CDP_BI_GROUP", group)
    old_umask = os.umask(0o022)  # a permissive caller: the modes must not depend on it
    try:
        folder = tmp_path / "wh"
        warehouse = folder / "warehouse.duckdb"
        folder.mkdir(mode=0o700)
        with duckdb.connect(str(warehouse)) as con:
            con.execute("create schema marts")
            con.execute("create table marts.dim_customers as select range as id from range(5)")
        _materialize_publish(warehouse)
    finally:
        os.umask(old_umask)

    modes = _modes(folder)
    assert modes["."] == 0o710, "the group may open files by name, not list the folder"
    assert modes["bi.duckdb"] == 0o640
    # bi_parquet is a link to the current version folder (stat follows it)
    version = (folder / "bi_parquet").resolve().relative_to(folder)
    assert modes["bi_parquet"] == modes["bi_parquet_versions"] == modes[str(version)] == 0o750
    assert modes[f"{version}/dim_customers.parquet"] == 0o640
    assert modes["warehouse.duckdb"] == 0o600
    assert all(mode & 0o007 == 0 for mode in modes.values()), modes
    assert (folder / "bi.duckdb").stat().st_gid == grp.getgrnam(group).gr_gid
    with duckdb.connect(str(folder / "bi.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from marts.dim_customers").fetchone()[0] == 5


def test_an_unknown_bi_group_fails_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("CDP_BI_GROUP", "no-such-group-cdp")
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    result = dg.materialize(
        [published_marts],
        resources={"warehouse": WarehouseResource(path=str(warehouse))},
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = result.get_step_failure_events()
    error = failure.step_failure_data.error
    message = error.message + (error.cause.message if error.cause else "")
    assert "CDP_BI_GROUP='no-such-group-cdp' is not a group" in message
    assert "unset CDP_BI_GROUP" in message
