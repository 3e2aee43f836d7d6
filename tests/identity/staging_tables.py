"""Staging tables with the columns of docs/data-model.md, filled row by row by tests.

Identity tests state only the rows that matter (`tests/identity/conftest.py`'s
`StagingBuilder`); these helpers create the empty `staging.stg_*` tables the identity
engine reads and append rows with any subset of their columns.
"""

from __future__ import annotations

import duckdb
import pandas as pd

STAGING_COLUMNS: dict[str, dict[str, str]] = {
    "stg_email__contacts": {
        "contact_id": "VARCHAR",
        "email": "VARCHAR",
        "first_name": "VARCHAR",
        "last_name": "VARCHAR",
        "phone": "VARCHAR",
        "city": "VARCHAR",
        "country": "VARCHAR",
        "is_subscribed": "BOOLEAN",
        "created_at": "TIMESTAMP",
        "updated_at": "TIMESTAMP",
    },
    "stg_billing__customers": {
        "customer_id": "VARCHAR",
        "user_id": "VARCHAR",
        "email": "VARCHAR",
        "name": "VARCHAR",
        "phone": "VARCHAR",
        "address_line1": "VARCHAR",
        "address_city": "VARCHAR",
        "address_postal_code": "VARCHAR",
        "address_country": "VARCHAR",
        "is_deleted": "BOOLEAN",
        "created_at": "TIMESTAMP",
        "updated_at": "TIMESTAMP",
    },
    "stg_web__events": {
        "message_id": "VARCHAR",
        "event_type": "VARCHAR",
        "anonymous_id": "VARCHAR",
        "user_id": "VARCHAR",
        "event_name": "VARCHAR",
        "page_name": "VARCHAR",
        "trait_email": "VARCHAR",
        "trait_first_name": "VARCHAR",
        "trait_last_name": "VARCHAR",
        "trait_name": "VARCHAR",
        "trait_phone": "VARCHAR",
        "revenue": "DOUBLE",
        "page_url": "VARCHAR",
        "page_path": "VARCHAR",
        "page_referrer": "VARCHAR",
        "page_title": "VARCHAR",
        "campaign_source": "VARCHAR",
        "campaign_medium": "VARCHAR",
        "campaign_name": "VARCHAR",
        "user_agent": "VARCHAR",
        "ip": "VARCHAR",
        "occurred_at": "TIMESTAMP",
        "received_at": "TIMESTAMP",
        "delivered_dt": "DATE",
    },
}


def create_staging_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Empty staging tables with the data-model columns (replacing any that exist)."""
    con.execute("create schema if not exists staging")
    for table, columns in STAGING_COLUMNS.items():
        ddl = ", ".join(f"{c} {t}" for c, t in columns.items())
        con.execute(f"create or replace table staging.{table} ({ddl})")


def insert_rows(
    con: duckdb.DuckDBPyConnection, table: str, rows: list[dict] | pd.DataFrame
) -> None:
    """Append rows (dicts with any subset of the table's columns; the rest are NULL)."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    if frame.empty:
        return
    columns = STAGING_COLUMNS[table]
    unknown = set(frame.columns) - set(columns)
    if unknown:
        raise KeyError(f"staging.{table} has no column(s) {sorted(unknown)}")
    con.register("_test_rows", frame)
    select = ", ".join(
        f"cast({c} as {t})" if c in frame.columns else f"cast(null as {t})"
        for c, t in columns.items()
    )
    con.execute(f"insert into staging.{table} select {select} from _test_rows")
    con.unregister("_test_rows")
