"""A statement parsed once and executed again binds the tables as they are at each execute."""

from __future__ import annotations

import duckdb

from ingestion.load_session import parsed_statement


def test_a_cached_statement_reads_a_re_created_temp_table_afresh():
    con = duckdb.connect()
    sql = "CREATE OR REPLACE TEMP TABLE out AS SELECT count(*) AS n, max(v) AS top FROM lines"
    results = []
    for rows, column_type in ((3, "INTEGER"), (5, "VARCHAR")):
        con.execute(f"CREATE OR REPLACE TEMP TABLE lines (v {column_type})")
        con.execute(f"INSERT INTO lines SELECT CAST(range AS {column_type}) FROM range({rows})")
        statement = parsed_statement(con, sql)
        con.execute(statement)
        results.append((statement, con.execute("SELECT n, top FROM out").fetchone()))
    (first, counted_3), (second, counted_5) = results
    assert first is second  # parsed once
    assert counted_3 == (3, 2) and counted_5 == (5, "4")  # bound to each table's rows and type
