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
import numpy as np
import pandas as pd

from identity.incremental import FINGERPRINT_TABLE, GONE_TABLE, NEW_OR_CHANGED_TABLE
from identity.persistence import SCHEMA, TABLE_COLUMNS, table_exists
from identity.provenance import RESOLVED_TABLE
from identity.records import RECORDS_TABLE
from identity.shared_values import MATCH_RECORDS_TABLE
from warehouse_engine.catalog import temp_table_exists

ASSIGNED_TABLE = "_identity_assigned"  # identity records + customer_id, read by the SQL
GOLDEN_TABLE = "_identity_golden"
GOLDEN_CUSTOMERS_SQL = Path(__file__).with_name("golden_customers.sql")


CHANGED_CUSTOMERS_TABLE = "_identity_golden_changed"
# record keys whose identity record is new, changed or gone since last run
CHANGED_RECORDS_TABLE = "_identity_records_changed"
_CHANGED_ASSIGNED_TABLE = "_identity_assigned_changed"
# a nightly run's records whose rows may differ from last run's (record_key, source_system,
# source_record_id): see create_maybe_changed_table
MAYBE_CHANGED_TABLE = "_identity_maybe_changed"


def create_maybe_changed_table(con: duckdb.DuckDBPyConnection, rids: np.ndarray) -> bool:
    """`_identity_maybe_changed(rid, record_key, source_system, source_record_id)`: on a
    nightly run, the only records whose identity record, customer map or registry row can
    differ from last run's - `rids` (those re-clustered and those whose customer id
    changed), those whose source row changed (normalised this run: every other record's
    normalised columns were copied from last run's row), those a steward's block touched,
    and those gone since (rid null). A record outside them has last run's normalised
    columns, its matching copy unchanged (else its match fingerprint moved and it was
    re-clustered, so its shared values too), its customer id and its customer's spanning
    tree: its rows are last run's. Returns False (no table) when the records whose source
    changed are not known."""
    if not (temp_table_exists(con, NEW_OR_CHANGED_TABLE) and temp_table_exists(con, GONE_TABLE)):
        return False
    con.register("_identity_maybe_changed_rids", pd.DataFrame({"rid": rids.astype(np.int32)}))
    try:
        con.execute(f"""
            create or replace temp table {MAYBE_CHANGED_TABLE} as
            select rid, record_key, source_system, source_record_id from {MATCH_RECORDS_TABLE} a
            where a.rid in (select rid from _identity_maybe_changed_rids)
               or a.rid in (select rid from {NEW_OR_CHANGED_TABLE})
               or coalesce(a.blocked_values, '') like '%steward %'
            union all
            select null::integer, record_key, source_system, source_record_id from {GONE_TABLE}
        """)
    finally:
        con.unregister("_identity_maybe_changed_rids")
    return True


def _assigned_sql(rids: str | None = None) -> str:
    """SELECT of the identity records with their customer id (the records whose rid
    `rids`, a SELECT of rids, gives; None: all)."""
    return (
        f"select r.*, m.shared_values, c.customer_id, f.match_fingerprint from {RECORDS_TABLE} r "
        f"join {MATCH_RECORDS_TABLE} m using (rid) join {RESOLVED_TABLE} c using (rid) "
        f"join {FINGERPRINT_TABLE} f using (rid)" + (f" where r.rid in ({rids})" if rids else "")
    )


def create_assigned_table(con: duckdb.DuckDBPyConnection, scoped: bool = False) -> str:
    """`_identity_assigned`: the identity records with their customer ids, all of them, or
    with `scoped` only those of `_identity_maybe_changed` (create_golden_table adds the
    other records of the customers that changed). Returns the SELECT of all of them."""
    rids = f"select rid from {MAYBE_CHANGED_TABLE} where rid is not null" if scoped else None
    con.execute(f"create or replace temp table {ASSIGNED_TABLE} as {_assigned_sql(rids)}")
    return _assigned_sql()


def add_changed_customers_records(con: duckdb.DuckDBPyConnection) -> None:
    """After `create_golden_table`: add to `_identity_maybe_changed` every record of a
    customer whose golden record was recomputed (a customer-wide value, such as when its id
    was created, may show in all its records' rows)."""
    con.execute(f"""
        insert into {MAYBE_CHANGED_TABLE}
        select a.rid, a.record_key, a.source_system, a.source_record_id from {ASSIGNED_TABLE} a
        semi join {CHANGED_CUSTOMERS_TABLE} c using (customer_id)
        anti join {MAYBE_CHANGED_TABLE} m using (record_key)
    """)


def previous_records_comparable(con: duckdb.DuckDBPyConnection) -> bool:
    """Can this run's records be compared row by row with last run's
    `identity.identity_records` (both exist, with the same columns)? Else everything counts
    as changed."""
    if not table_exists(con, "identity_records") or not table_exists(con, "golden_customers"):
        return False
    now = [c for c, *_ in con.sql(f"describe {ASSIGNED_TABLE}").fetchall() if c != "rid"]
    before = [c for c, *_ in con.sql(f"describe {SCHEMA}.identity_records").fetchall()]
    # last run's golden rows are patched in place: they must have this version's columns
    golden = [(c, t) for c, t, *_ in con.sql(f"describe {SCHEMA}.golden_customers").fetchall()]
    return sorted(now) == sorted(before) and golden == list(
        TABLE_COLUMNS["golden_customers"].items()
    )


def create_changed_customers_table(con: duckdb.DuckDBPyConnection, scoped: bool = False) -> int:
    """`_identity_records_changed(record_key)`: the records that are new, differ in any
    column (their customer id included) from last run's identity record, or are gone.
    `_identity_golden_changed(customer_id)`: the customers whose golden record may differ
    from last run's - those holding a record that is new or differs in any column (its
    customer id included) from last run's identity record, those that lost a record (it
    left or vanished), and any without a golden row last run. A golden record is a function
    of its customer's records alone (golden_customers.sql ranks within a customer), so every
    other customer's golden record is last run's. Returns how many customers changed.
    `scoped`: only the records of `_identity_maybe_changed` are compared (a nightly run)."""
    columns = [c for c, *_ in con.sql(f"describe {SCHEMA}.identity_records").fetchall()]
    differs = " or ".join(f"a.{c} is distinct from p.{c}" for c in columns if c != "record_key")
    now, before = ASSIGNED_TABLE, f"{SCHEMA}.identity_records"
    if scoped:
        now = f"(select * from {now} semi join {MAYBE_CHANGED_TABLE} using (record_key))"
        before = f"(select * from {before} semi join {MAYBE_CHANGED_TABLE} using (record_key))"
    con.execute(f"""
        create or replace temp table {CHANGED_RECORDS_TABLE} as
        select coalesce(a.record_key, p.record_key) as record_key,
               a.customer_id as now_id, p.customer_id as was_id
        from {now} a
        full join {before} p on p.record_key = a.record_key
        where a.record_key is null or p.record_key is null or {differs}
    """)
    con.execute(f"""
        create or replace temp table {CHANGED_CUSTOMERS_TABLE} as
        with diff as (select * from {CHANGED_RECORDS_TABLE})
        select now_id as customer_id from diff where now_id is not null
        union
        select was_id from diff where was_id is not null
        union
        select distinct a.customer_id from {RESOLVED_TABLE} a
        anti join {SCHEMA}.golden_customers g on g.customer_id = a.customer_id
    """)
    return con.sql(f"select count(*) from {CHANGED_CUSTOMERS_TABLE}").fetchall()[0][0]


def create_golden_table(
    con: duckdb.DuckDBPyConnection,
    run_ts: pd.Timestamp,
    only_changed: bool = False,
    scoped: bool = False,
) -> int | None:
    """`_identity_golden`: golden_customers.sql over `_identity_assigned`, plus created_at
    (when the id was first minted: `_identity_customer_created`) and updated_at (kept from
    last run when no value of the golden record changed, else the run time).

    `only_changed` (a nightly run): golden_customers.sql runs over the records of the
    customers `create_changed_customers_table` names, and `_identity_golden` holds only
    their rows (its tables stay for the write, which deletes and inserts only those rows;
    `add_kept_golden_rows` adds every other customer's row, last run's, when the whole
    table must be written instead). `scoped`: `_identity_assigned` holds only the records
    of `_identity_maybe_changed` (create_assigned_table); those of the changed customers
    are added, or all records when last run's cannot be compared. Returns how many golden
    records were recomputed (None: all of them, and `_identity_golden` is the whole table)."""
    value_columns = [
        c for c in TABLE_COLUMNS["golden_customers"] if c not in ("created_at", "updated_at")
    ]
    run_literal = f"timestamp '{run_ts.isoformat(sep=' ')}'"
    source, recomputed = ASSIGNED_TABLE, None
    if only_changed and previous_records_comparable(con):
        recomputed = create_changed_customers_table(con, scoped=scoped)
        if scoped:
            # golden_customers.sql reads every record of a changed customer
            con.execute(
                f"insert into {ASSIGNED_TABLE} "
                + _assigned_sql(
                    f"select rid from {RESOLVED_TABLE} semi join {CHANGED_CUSTOMERS_TABLE} "
                    f"using (customer_id) where rid not in "
                    f"(select rid from {MAYBE_CHANGED_TABLE} where rid is not null)"
                )
            )
        con.execute(
            f"create or replace temp table {_CHANGED_ASSIGNED_TABLE} as select a.* "
            f"from {ASSIGNED_TABLE} a semi join {CHANGED_CUSTOMERS_TABLE} c using (customer_id)"
        )
        source = _CHANGED_ASSIGNED_TABLE
    elif scoped:
        # last run's records cannot be compared with these (e.g. a column was added): the
        # golden records are built from every record
        create_assigned_table(con)
    if table_exists(con, "golden_customers"):
        unchanged = " and ".join(f"g.{c} is not distinct from p.{c}" for c in value_columns)
        updated = f"case when p.customer_id is not null and {unchanged} then p.updated_at else {run_literal} end"
        previous_join = f"left join {SCHEMA}.golden_customers p on p.customer_id = g.customer_id"
    else:
        updated, previous_join = run_literal, ""
    golden_sql = GOLDEN_CUSTOMERS_SQL.read_text(encoding="utf-8").replace(ASSIGNED_TABLE, source)
    con.execute(f"""
        create or replace temp table {GOLDEN_TABLE} as
        select * from (
            select g.*, coalesce(c.created_at::timestamp, {run_literal}) as created_at,
                   {updated} as updated_at
            from ({golden_sql}) g
            left join _identity_customer_created c on c.customer_id = g.customer_id
            {previous_join}
        )
        order by customer_id
    """)
    con.execute(f"drop table if exists {_CHANGED_ASSIGNED_TABLE}")
    return recomputed


def add_kept_golden_rows(con: duckdb.DuckDBPyConnection) -> None:
    """After `create_golden_table(only_changed=True)`: add to `_identity_golden` last run's
    row of every customer that is still there and did not change, so it is the whole table."""
    columns = ", ".join(TABLE_COLUMNS["golden_customers"])
    con.execute(f"""
        insert into {GOLDEN_TABLE} ({columns})
        select {columns} from {SCHEMA}.golden_customers p
        semi join (select distinct customer_id from {RESOLVED_TABLE}) a using (customer_id)
        anti join {CHANGED_CUSTOMERS_TABLE} c using (customer_id)
    """)
