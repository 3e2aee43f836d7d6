"""Golden records: one row per customer, each value taken from one named source record.

Survivorship rules (each value group comes whole from a single record, so a name or an
address is never stitched from two people's fields):
- name (first, last): billing beats email beats web; then not-deleted; then the most
  recently updated record; then the smallest record key.
- address (line 1, city, postcode, country): same order, among records with an address line
  or else a city.
- email: the most frequent mailbox (email matching key) among the customer's records; ties
  by the source order above, then most recent. The displayed address is that record's.
- phone: the most frequent E.164 number, ties as for email.
- billing_user_id: the user id of the best billing record that has one, else of any record.
Each group carries `<group>_source_record` (`source_system:source_record_id`).
The rules are SQL: golden_customers.sql.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from identity.persistence import SCHEMA, TABLE_COLUMNS, table_exists

ASSIGNED_TABLE = "_identity_assigned"  # identity records + customer_id, read by the SQL
GOLDEN_TABLE = "_identity_golden"
GOLDEN_CUSTOMERS_SQL = Path(__file__).with_name("golden_customers.sql")


def create_golden_table(con: duckdb.DuckDBPyConnection, run_ts: pd.Timestamp) -> None:
    """`_identity_golden`: golden_customers.sql over `_identity_assigned`, plus created_at
    (when the id was first minted: `_identity_customer_created`) and updated_at (kept from
    last run when no value of the golden record changed, else the run time)."""
    value_columns = [
        c for c in TABLE_COLUMNS["golden_customers"] if c not in ("created_at", "updated_at")
    ]
    run_literal = f"timestamp '{run_ts.isoformat(sep=' ')}'"
    if table_exists(con, "golden_customers"):
        unchanged = " and ".join(f"g.{c} is not distinct from p.{c}" for c in value_columns)
        updated = f"case when p.customer_id is not null and {unchanged} then p.updated_at else {run_literal} end"
        previous_join = f"left join {SCHEMA}.golden_customers p on p.customer_id = g.customer_id"
    else:
        updated, previous_join = run_literal, ""
    con.execute(f"""
        create or replace temp table {GOLDEN_TABLE} as
        select g.*, coalesce(c.created_at::timestamp, {run_literal}) as created_at,
               {updated} as updated_at
        from ({GOLDEN_CUSTOMERS_SQL.read_text(encoding="utf-8")}) g
        left join _identity_customer_created c on c.customer_id = g.customer_id
        {previous_join}
        order by g.customer_id
    """)
