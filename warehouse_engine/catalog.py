"""Whether a table is there: one answer for every package that asks a DuckDB connection.

Only the connection's current database counts: a file attached beside it (the BI file a
publish builds, a previous warehouse a bench compares with) may hold a table of the same
schema and name, which is not the one the caller is about to read or write.
"""

from __future__ import annotations

import duckdb


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    """Is `schema.name` a table or view of the current database?"""
    schema, _, name = qualified.rpartition(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_catalog = current_database() and table_schema = ? and table_name = ?",
            [schema or "main", name],
        ).fetchall()[0][0]
    )


def temp_table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Is `name` a temporary table of this connection?"""
    return bool(
        con.execute(
            "select count(*) from duckdb_tables() where temporary and table_name = ?", [name]
        ).fetchall()[0][0]
    )
