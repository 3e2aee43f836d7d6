"""`warehouse_engine.catalog`: the one existence check every package uses."""

from __future__ import annotations

import duckdb

from warehouse_engine.catalog import table_exists, temp_table_exists


def test_a_table_or_view_of_the_current_database_exists_and_an_attached_files_does_not(
    tmp_path,
):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema identity")
    con.execute("create table identity.customer_map (record_key varchar)")
    con.execute("create view identity.golden as select 1 as x")
    # the BI file a publish attaches beside the warehouse, with a table of the same names
    con.execute(f"attach '{tmp_path / 'bi.duckdb'}' as published")
    con.execute("create schema published.marts")
    con.execute("create table published.marts.customer_360 (customer_id varchar)")
    con.execute("create temp table _resolved (record_key varchar)")

    assert table_exists(con, "identity.customer_map")
    assert table_exists(con, "identity.golden")
    assert not table_exists(con, "identity.id_registry")
    assert not table_exists(con, "marts.customer_360")
    assert temp_table_exists(con, "_resolved")
    assert not temp_table_exists(con, "customer_map")
    con.close()
