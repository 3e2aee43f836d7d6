"""The identity.* tables: their columns, last run's state read back, this run's written.

`TABLE_COLUMNS` is the one declaration of the tables' columns (the dbt test warehouse, the
docs and the dbt sources are checked against it). The new tables replace the previous ones
in one transaction and the merge and split logs are appended to, so a failed run leaves the
previous tables as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from identity.shared_values import SHARED_COLUMNS
from warehouse_engine import catalog
from warehouse_engine.frames import to_pandas

SCHEMA = "identity"

TABLE_COLUMNS: dict[str, dict[str, str]] = {
    "customer_map": {
        "source_system": "VARCHAR",
        "source_record_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "match_rule": "VARCHAR",
        "match_weight": "DOUBLE",
        "matched_record": "VARCHAR",
        "first_assigned_at": "TIMESTAMP",
        "updated_at": "TIMESTAMP",
    },
    "golden_customers": {
        "customer_id": "VARCHAR",
        "first_name": "VARCHAR",
        "last_name": "VARCHAR",
        "full_name": "VARCHAR",
        "name_source_record": "VARCHAR",
        "email": "VARCHAR",
        "email_source_record": "VARCHAR",
        "phone": "VARCHAR",
        "phone_source_record": "VARCHAR",
        "address_line1": "VARCHAR",
        "address_city": "VARCHAR",
        "address_postal_code": "VARCHAR",
        "address_country": "VARCHAR",
        "address_source_record": "VARCHAR",
        "billing_user_id": "VARCHAR",
        "n_source_records": "BIGINT",
        "n_emails": "BIGINT",
        "n_phones": "BIGINT",
        "first_seen_at": "TIMESTAMP",
        "last_seen_at": "TIMESTAMP",
        "created_at": "TIMESTAMP",
        "updated_at": "TIMESTAMP",
    },
    "id_registry": {
        "record_key": "VARCHAR",
        "source_system": "VARCHAR",
        "source_record_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "first_assigned_at": "TIMESTAMP",
        "updated_at": "TIMESTAMP",
        "customer_created_at": "TIMESTAMP",
    },
    "merge_log": {
        "merged_at": "TIMESTAMP",
        "surviving_customer_id": "VARCHAR",
        "retired_customer_id": "VARCHAR",
        "record_a": "VARCHAR",
        "record_b": "VARCHAR",
        "match_rule": "VARCHAR",
        "match_weight": "DOUBLE",
    },
    "split_log": {
        "split_at": "TIMESTAMP",
        "original_customer_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "n_records_moved": "BIGINT",
        "example_record": "VARCHAR",
    },
    "shared_values": {**SHARED_COLUMNS, "resolved_at": "TIMESTAMP"},
    "refused_merges": {
        "refused_at": "TIMESTAMP",
        "customer_a": "VARCHAR",
        "customer_b": "VARCHAR",
        "record_a": "VARCHAR",
        "record_b": "VARCHAR",
        "guard": "VARCHAR",
        "detail": "VARCHAR",
        "match_rule": "VARCHAR",
        "match_weight": "DOUBLE",
    },
}


@dataclass
class PreviousState:
    """What the last run left, for this run's records (index = rid): their customer ids and
    first assignment times (stable ids, the anchors of the customer map), when each
    customer id was created, every id ever used, the refusals, the identity records'
    columns."""

    customer_of_record: pd.Series  # customer id per rid, None for a record new to the run
    first_assigned_at: np.ndarray  # datetime64 per rid, NaT for a new record
    customer_created_at: dict  # customer_id -> datetime.datetime (or pd.Timestamp)
    known_ids: set[str]
    refused: pd.DataFrame
    identity_record_columns: set[str]


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Is `identity.<table>` in the warehouse?"""
    return catalog.table_exists(con, f"{SCHEMA}.{table}")


def read_previous(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    if table_exists(con, table):
        return con.sql(f"select * from {SCHEMA}.{table}").df()
    return pd.DataFrame({c: pd.Series(dtype=object) for c in TABLE_COLUMNS[table]})


def _created_at_by_id(frame: pd.DataFrame) -> dict:
    """customer_id -> created_at (datetime.datetime, microseconds: the column's precision).
    Through numpy's datetime64 rather than pandas' Timestamps: a night reads ~100,000 of
    them and boxing each as a Timestamp cost more than the rest of the read."""
    instants = frame["created_at"].to_numpy(dtype="datetime64[us]").tolist()
    return dict(zip(frame["customer_id"].tolist(), instants, strict=True))


def read_previous_state(con: duckdb.DuckDBPyConnection, records_table: str) -> PreviousState:
    """Last run's state, joined to this run's records inside DuckDB: only one row per
    record and one per customer id reach pandas."""
    if table_exists(con, "id_registry"):
        per_record = to_pandas(
            con.sql(f"""
            select p.customer_id, p.first_assigned_at from {records_table} r
            left join {SCHEMA}.id_registry p on p.record_key = r.record_key order by r.rid
        """)
        )
        registry_created = to_pandas(
            con.sql(f"""
            select customer_id, min(customer_created_at) as created_at from {SCHEMA}.id_registry
            where customer_id is not null group by customer_id having min(customer_created_at) is not null
        """)
        )
        known = {
            c
            for (c,) in con.sql(
                f"select distinct customer_id from {SCHEMA}.id_registry where customer_id is not null"
            ).fetchall()
        }
    else:
        n = con.sql(f"select count(*) from {records_table}").fetchall()[0][0]
        per_record = pd.DataFrame(
            {
                "customer_id": pd.Series([None] * n, dtype=object),
                "first_assigned_at": pd.Series(pd.NaT, index=range(n), dtype="datetime64[us]"),
            }
        )
        registry_created = pd.DataFrame({"customer_id": [], "created_at": []})
        known = set()
    created = _created_at_by_id(registry_created)
    if table_exists(con, "golden_customers"):
        golden = to_pandas(
            con.sql(
                f"select customer_id, created_at from {SCHEMA}.golden_customers "
                "where customer_id is not null and created_at is not null"
            )
        )
        created.update(_created_at_by_id(golden))
    if table_exists(con, "merge_log"):
        known |= {
            c
            for (c,) in con.sql(
                f"select distinct retired_customer_id from {SCHEMA}.merge_log "
                "where retired_customer_id is not null"
            ).fetchall()
        }
    customers = per_record["customer_id"].astype(object)
    return PreviousState(
        customer_of_record=customers.where(customers.notna(), None),
        first_assigned_at=per_record["first_assigned_at"].to_numpy(dtype="datetime64[us]"),
        customer_created_at=created,
        known_ids=known,
        refused=read_previous(con, "refused_merges"),
        identity_record_columns=(
            {c for c, *_ in con.sql(f"describe {SCHEMA}.identity_records").fetchall()}
            if table_exists(con, "identity_records")
            else set()
        ),
    )


# The tables a run rewrites only where they changed, and the columns that name a row.
ROW_KEYS: dict[str, tuple[str, ...]] = {
    "identity_records": ("record_key",),
    "customer_map": ("source_system", "source_record_id"),
    "golden_customers": ("customer_id",),
    "id_registry": ("record_key",),
}
_NEW_ROWS = "_identity_write_new"
# Above this share of changed rows a table is replaced rather than patched: deleting and
# re-inserting most rows costs more than writing them (the first night after an upgrade
# that re-stamps every record).
PATCH_AT_MOST = 0.5
_CHANGED_ROWS = "_identity_write_changed"


@dataclass
class TablePatch:
    """A table a run knows the changes of: `rows` (a SELECT) replaces the rows `delete_where`
    (a condition on the table, alias `p`) picks. `full` (a SELECT of the whole table) is
    written instead when the table is absent or its columns are not the new ones."""

    full: str
    delete_where: str
    rows: str


@dataclass
class ScopedRows:
    """A table of `ROW_KEYS` whose rows can differ from last run's only for the records of
    `scope` (a table with the key columns; a nightly run's `_identity_maybe_changed`):
    `rows` (a SELECT of the new rows of those records) is compared with last run's rows of
    them, and only the rows that changed or went are deleted and written. `full` (a SELECT
    of the whole table) is written instead when the table cannot be patched."""

    full: str
    rows: str
    scope: str


def _columns_and_types(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    return [(c, t) for c, t, *_ in con.sql(f"describe {relation}").fetchall()]


def _write_changed_rows(
    con: duckdb.DuckDBPyConnection,
    name: str,
    select: str,
    relation: str,
    scope: str | None = None,
) -> int | None:
    """Make `identity.<name>` equal to the SELECT by deleting the rows that changed or went
    (by `ROW_KEYS[name]`) and inserting the changed and new ones: a night rewrites the day's
    rows, not the whole history. With `scope` (a table of key values, `ScopedRows`),
    `relation` holds the new rows of those keys only, the table's other rows being known to
    be last run's: only the scope's previous rows are compared, and only they may go.
    Returns the rows written, or None when the table cannot be patched (absent, its columns
    differ from the new ones, or most rows changed) and must be replaced."""
    if name not in ROW_KEYS or not table_exists(con, name):
        return None
    con.execute(f"create or replace temp table {_NEW_ROWS} as select {select} from {relation}")
    try:
        if _columns_and_types(con, _NEW_ROWS) != _columns_and_types(con, f"{SCHEMA}.{name}"):
            return None
        keys = ROW_KEYS[name]
        same_key = " and ".join(f"n.{k} = p.{k}" for k in keys)
        if scope is None:
            previous = f"select * from {SCHEMA}.{name}"
            may_go = "true"
            rows_after = f"select count(*) from {_NEW_ROWS}"
        else:
            in_scope = " and ".join(f"s.{k} = p.{k}" for k in keys)
            previous = f"select p.* from {SCHEMA}.{name} p semi join {scope} s on {in_scope}"
            may_go = f"exists (select 1 from {scope} s where {in_scope})"
            rows_after = f"select count(*) from {SCHEMA}.{name}"
        con.execute(
            f"create or replace temp table {_CHANGED_ROWS} as "
            f"select * from {_NEW_ROWS} except {previous}"
        )
        changed, total = con.sql(
            f"select (select count(*) from {_CHANGED_ROWS}), ({rows_after})"
        ).fetchall()[0]
        if changed > total * PATCH_AT_MOST:
            return None
        con.execute(f"""
            delete from {SCHEMA}.{name} p
            where exists (select 1 from {_CHANGED_ROWS} n where {same_key})
               or ({may_go} and not exists (select 1 from {_NEW_ROWS} n where {same_key}))
        """)
        con.execute(f"insert into {SCHEMA}.{name} select * from {_CHANGED_ROWS}")
        return changed
    finally:
        con.execute(f"drop table if exists {_NEW_ROWS}")
        con.execute(f"drop table if exists {_CHANGED_ROWS}")


def _apply_patch(
    con: duckdb.DuckDBPyConnection, name: str, select: str, patch: TablePatch
) -> int | None:
    """Delete the rows the patch names and insert its rows; None when it cannot apply."""
    if not table_exists(con, name):
        return None
    con.execute(
        f"create or replace temp table {_CHANGED_ROWS} as select {select} from ({patch.rows})"
    )
    try:
        if _columns_and_types(con, _CHANGED_ROWS) != _columns_and_types(con, f"{SCHEMA}.{name}"):
            return None
        con.execute(f"delete from {SCHEMA}.{name} p where {patch.delete_where}")
        con.execute(f"insert into {SCHEMA}.{name} select * from {_CHANGED_ROWS}")
        return con.sql(f"select count(*) from {_CHANGED_ROWS}").fetchall()[0][0]
    finally:
        con.execute(f"drop table if exists {_CHANGED_ROWS}")


def write_identity_tables(
    con: duckdb.DuckDBPyConnection,
    tables: dict[str, pd.DataFrame | str | TablePatch | ScopedRows],
    new_merges: pd.DataFrame,
    new_splits: pd.DataFrame | None = None,
) -> dict[str, int]:
    """Write the identity tables and append to the merge and split logs in one transaction.
    A table's source is a DataFrame, a SELECT over temp tables (kept in DuckDB) or a
    `TablePatch` (the run knows which rows changed) or `ScopedRows` (it knows which rows may
    have). The tables of `ROW_KEYS` get only their
    changed rows (found by comparing, deleted and inserted by key); the others, and any
    whose columns changed, are replaced. Returns the rows written per table."""
    written: dict[str, int] = {}
    con.execute("begin transaction")
    try:
        con.execute(f"create schema if not exists {SCHEMA}")
        for name, given in tables.items():
            source = given.full if isinstance(given, TablePatch | ScopedRows) else given
            if isinstance(source, str):
                relation = f"({source})"
                columns = [c for c, *_ in con.sql(f"describe {source}").fetchall()]
            else:
                relation = f"_identity_write_{name}"
                con.register(relation, source)
                columns = list(source.columns)
            typed = TABLE_COLUMNS.get(name)
            if typed:
                extras = [c for c in columns if c not in typed]
                select = ", ".join([f"cast({c} as {t}) as {c}" for c, t in typed.items()] + extras)
            else:
                select = "*"
            if isinstance(given, TablePatch):
                rows = _apply_patch(con, name, select, given)
            elif isinstance(given, ScopedRows):
                rows = _write_changed_rows(con, name, select, f"({given.rows})", given.scope)
            else:
                rows = _write_changed_rows(con, name, select, relation)
            if rows is None:
                con.execute(
                    f"create or replace table {SCHEMA}.{name} as select {select} from {relation}"
                )
                rows = con.sql(f"select count(*) from {SCHEMA}.{name}").fetchall()[0][0]
            written[name] = rows
            if not isinstance(source, str):
                con.unregister(relation)
        merge_columns = TABLE_COLUMNS["merge_log"]
        con.execute(
            f"create table if not exists {SCHEMA}.merge_log ("
            + ", ".join(f"{c} {t}" for c, t in merge_columns.items())
            + ")"
        )
        if len(new_merges):
            con.register("_identity_write_merges", new_merges[list(merge_columns)])
            con.execute(f"insert into {SCHEMA}.merge_log select * from _identity_write_merges")
            con.unregister("_identity_write_merges")
        split_columns = TABLE_COLUMNS["split_log"]
        con.execute(
            f"create table if not exists {SCHEMA}.split_log ("
            + ", ".join(f"{c} {t}" for c, t in split_columns.items())
            + ")"
        )
        if new_splits is not None and len(new_splits):
            con.register("_identity_write_splits", new_splits[list(split_columns)])
            con.execute(
                f"insert into {SCHEMA}.split_log select "
                + ", ".join(f"cast({c} as {t})" for c, t in split_columns.items())
                + " from _identity_write_splits"
            )
            con.unregister("_identity_write_splits")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return written
