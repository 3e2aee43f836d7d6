"""Shared fixtures: a temp DuckDB warehouse with hand-written staging rows."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from tests.identity.staging_tables import create_staging_tables, insert_rows

T0 = datetime(2026, 1, 1, 9, 0)


class StagingBuilder:
    """Builds staging.stg_* rows with sensible defaults, so a test states only what matters."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        create_staging_tables(con)
        self._n = 0

    def contact(self, contact_id: str, email: str, **fields) -> None:
        row = {
            "contact_id": contact_id,
            "email": email,
            "created_at": T0,
            "updated_at": T0,
            "is_subscribed": True,
        }
        insert_rows(self.con, "stg_email__contacts", [{**row, **fields}])

    def billing(self, customer_id: str, **fields) -> None:
        row = {"customer_id": customer_id, "created_at": T0, "updated_at": T0, "is_deleted": False}
        insert_rows(self.con, "stg_billing__customers", [{**row, **fields}])

    def web(self, anonymous_id: str | None, user_id: str | None = None, **traits) -> None:
        self._n += 1
        row = {
            "message_id": f"m{self._n}",
            "event_type": "identify",
            "anonymous_id": anonymous_id,
            "user_id": user_id,
            "occurred_at": traits.pop("occurred_at", T0),
        }
        insert_rows(
            self.con, "stg_web__events", [{**row, **{f"trait_{k}": v for k, v in traits.items()}}]
        )


@pytest.fixture
def warehouse(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield con
    con.close()


@pytest.fixture
def staging(warehouse) -> StagingBuilder:
    return StagingBuilder(warehouse)


@pytest.fixture
def customer_of(warehouse):
    """customer_of("email:ct_1") -> the customer_id identity.customer_map gives that record."""

    def lookup(record_key: str) -> str:
        system, record_id = record_key.split(":", 1)
        rows = warehouse.execute(
            "select customer_id from identity.customer_map where source_system = ? and source_record_id = ?",
            [system, record_id],
        ).fetchall()
        assert rows, f"{record_key} is not in identity.customer_map"
        return rows[0][0]

    return lookup
