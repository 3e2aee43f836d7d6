"""Fixtures for the quality tests: small DuckDB warehouses with hand-written rows (DDL from
docs/data-model.md) and a Data Docs directory."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import duckdb
import pytest

LINEAGE_DDL = "_dt DATE, _source_file VARCHAR, _line_number BIGINT, _loaded_at TIMESTAMP"

RAW_DDL = {
    "raw.email_contacts": (
        "contact_id VARCHAR NOT NULL, email VARCHAR NOT NULL, first_name VARCHAR, last_name VARCHAR, "
        "phone VARCHAR, city VARCHAR, country VARCHAR, subscribed BOOLEAN, "
        "created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL"
    ),
    "raw.email_events": (
        "event_id VARCHAR NOT NULL, contact_id VARCHAR NOT NULL, campaign_id VARCHAR, "
        "campaign_name VARCHAR, event_type VARCHAR, occurred_at TIMESTAMP NOT NULL, url VARCHAR"
    ),
    "raw.billing_invoices": (
        "invoice_id VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, subscription_id VARCHAR, "
        "status VARCHAR, currency VARCHAR, amount_due_cents BIGINT, amount_paid_cents BIGINT, "
        "amount_refunded_cents BIGINT, product VARCHAR, created_at TIMESTAMP NOT NULL, "
        "updated_at TIMESTAMP NOT NULL, paid_at TIMESTAMP"
    ),
}


def _insert_raw(
    con: duckdb.DuckDBPyConnection, table: str, dt: date, rows: Iterable[Sequence[object]]
) -> None:
    """Append rows (contract columns only) to a raw table as one delivery file of day `dt`."""
    source_file = f"{table.split('.')[1]}/dt={dt.isoformat()}/part-0.csv"
    for line_number, row in enumerate(rows, start=2):
        placeholders = ", ".join("?" for _ in range(len(row) + 4))
        con.execute(
            f"INSERT INTO {table} VALUES ({placeholders})",
            [*row, dt, source_file, line_number, "2026-10-03 00:00:00"],
        )


def new_warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("CREATE SCHEMA raw")
    for table, ddl in RAW_DDL.items():
        con.execute(f"CREATE TABLE {table} ({ddl}, {LINEAGE_DDL})")
    return con


@pytest.fixture
def warehouse() -> duckdb.DuckDBPyConnection:
    con = new_warehouse()
    yield con
    con.close()


@pytest.fixture
def insert_raw():
    """insert_raw(con, table, dt, rows): append rows as one delivery file of day `dt`."""
    return _insert_raw


@pytest.fixture
def docs_dir(tmp_path):
    return tmp_path / "wh" / "quality_docs"
