"""The identity.* tables: their columns, last run's state read back, this run's written.

`TABLE_COLUMNS` is the one declaration of the tables' columns (the dbt test warehouse, the
docs and the dbt sources are checked against it). The new tables replace the previous ones
in one transaction and the merge and split logs are appended to, so a failed run leaves the
previous tables as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from identity.shared_values import SHARED_COLUMNS

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
    """What the last run left: the id registry and customers' creation times (stable ids),
    the customer map (its spanning-tree links), refusals and the identity records' columns."""

    registry: pd.DataFrame
    registry_customer: dict[str, str]
    customer_created_at: dict[str, pd.Timestamp]
    known_ids: set[str]
    customer_map: pd.DataFrame
    golden: pd.DataFrame
    refused: pd.DataFrame
    identity_record_columns: set[str]


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [SCHEMA, table],
        ).fetchall()[0][0]
    )


def read_previous(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    if table_exists(con, table):
        return con.sql(f"select * from {SCHEMA}.{table}").df()
    return pd.DataFrame({c: pd.Series(dtype=object) for c in TABLE_COLUMNS[table]})


def read_previous_state(con: duckdb.DuckDBPyConnection) -> PreviousState:
    registry = read_previous(con, "id_registry")
    golden = (
        con.sql(f"select customer_id, created_at from {SCHEMA}.golden_customers").df()
        if table_exists(con, "golden_customers")
        else pd.DataFrame({"customer_id": [], "created_at": []})
    )
    merge_log = read_previous(con, "merge_log")
    created: dict[str, pd.Timestamp] = {}
    if len(registry):
        created.update(
            registry.groupby("customer_id")["customer_created_at"].min().dropna().to_dict()
        )
    if len(golden):
        created.update(golden.set_index("customer_id")["created_at"].dropna().to_dict())
    known = set(registry["customer_id"].dropna()) | set(merge_log["retired_customer_id"].dropna())
    return PreviousState(
        registry=registry,
        registry_customer=dict(zip(registry["record_key"], registry["customer_id"], strict=True)),
        customer_created_at=created,
        known_ids=known,
        customer_map=read_previous(con, "customer_map"),
        golden=golden,
        refused=read_previous(con, "refused_merges"),
        identity_record_columns=(
            {c for c, *_ in con.sql(f"describe {SCHEMA}.identity_records").fetchall()}
            if table_exists(con, "identity_records")
            else set()
        ),
    )


def write_identity_tables(
    con: duckdb.DuckDBPyConnection,
    tables: dict[str, pd.DataFrame | str],
    new_merges: pd.DataFrame,
    new_splits: pd.DataFrame | None = None,
) -> None:
    """Replace the identity tables and append to the merge and split logs in one transaction.
    A table's source is a DataFrame or a SELECT over temp tables (kept in DuckDB)."""
    con.execute("begin transaction")
    try:
        con.execute(f"create schema if not exists {SCHEMA}")
        for name, source in tables.items():
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
            con.execute(
                f"create or replace table {SCHEMA}.{name} as select {select} from {relation}"
            )
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
