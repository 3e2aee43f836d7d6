"""Late and re-delivered data: an incremental run gives exactly what a full rebuild gives."""

from __future__ import annotations

import duckdb

from tests.dbt.dbt_harness import assert_dbt_succeeded, execute_fixture, run_dbt

SCHEMAS = ("staging", "intermediate", "marts")


def _table_contents_differences(incremental, full_rebuild) -> dict[str, tuple[int, int]]:
    """Per table, (rows only in the incremental result, rows only in the full rebuild).

    Multiset comparison (EXCEPT ALL both ways); doubles are rounded to 9 decimals since
    parallel aggregation may order float additions differently.
    """
    con = duckdb.connect()
    con.execute(f"attach '{incremental}' as incremental (read_only)")
    con.execute(f"attach '{full_rebuild}' as full_rebuild (read_only)")
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables "
        f"where table_catalog = 'full_rebuild' and table_schema in {SCHEMAS} order by 1, 2"
    ).fetchall()
    differences = {}
    for schema, table in tables:
        columns = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_catalog = 'full_rebuild' and table_schema = ? and table_name = ? "
            "order by ordinal_position",
            [schema, table],
        ).fetchall()
        select_list = ", ".join(
            f'round("{name}", 9) as "{name}"' if data_type in ("DOUBLE", "FLOAT") else f'"{name}"'
            for name, data_type in columns
            if name != "loaded_at"  # load bookkeeping of the incremental models, not content
        )
        counts = []
        for left, right in (("incremental", "full_rebuild"), ("full_rebuild", "incremental")):
            counts.append(
                con.execute(
                    f"select count(*) from (select {select_list} from {left}.{schema}.{table} "
                    f"except all select {select_list} from {right}.{schema}.{table})"
                ).fetchone()[0]
            )
        if counts != [0, 0]:
            differences[f"{schema}.{table}"] = tuple(counts)
    con.close()
    assert len(tables) > 25, f"expected every model to be compared, found {len(tables)} tables"
    return differences


def test_incremental_run_after_late_data_equals_full_rebuild(copy_of_built_warehouse):
    incremental = copy_of_built_warehouse("incremental")
    full_rebuild = copy_of_built_warehouse("full_rebuild")
    for warehouse in (incremental, full_rebuild):
        execute_fixture(warehouse, "late_data")

    assert_dbt_succeeded(run_dbt(incremental, incremental.parent, "run"))
    assert_dbt_succeeded(run_dbt(full_rebuild, full_rebuild.parent, "run", "--full-refresh"))

    assert _table_contents_differences(incremental, full_rebuild) == {}

    # ... and the late data really changed the marts (the comparison above is not vacuous)
    con = duckdb.connect(str(incremental), read_only=True)
    try:
        ada_sessions = con.execute(
            "select count(*), sum(n_events) from marts.fct_web_sessions where visitor_id = 'a_ada'"
        ).fetchone()
        ee_8_delivered = con.execute(
            "select strftime(delivered_dt, '%Y-%m-%d') from staging.stg_email__events where event_id = 'ee_8'"
        ).fetchone()[0]
        in_ada_3 = con.execute(
            "select net_revenue_cents from marts.fct_invoices where invoice_id = 'in_ada_3'"
        ).fetchone()[0]
        w_1_copies = con.execute(
            "select count(*) from staging.stg_web__events where message_id = 'w_1'"
        ).fetchone()[0]
    finally:
        con.close()
    assert ada_sessions == (1, 6)  # the late 09:55 page view bridges her two sessions
    assert ee_8_delivered == "2026-09-11"  # the backfilled (older) partition's delivery wins
    assert in_ada_3 == 2000  # re-sent with a 1000 refund
    assert w_1_copies == 1  # the re-delivery did not duplicate the event
