"""Shared identifiers, found in the data rather than in a list.

A family inbox, the `orders@` address of a small shop, an office switchboard or a user id a
whole team logs in with links records of several people. No list can name them all, but the
records carrying such a value give it away: more distinct first names, or more distinct
other identifiers (phones, emails, user ids, street addresses), than one person plausibly
has. Such a value stops being a key: it is removed from the *matching* copy of the records
(`_identity_match_records`), so it neither links records by a deterministic rule, nor counts
as agreement in a comparison, nor fills a cardinality limit. The records still link through
their other evidence (names, phone, address), so one person's own records on a family inbox
still find each other, while fifty strangers on one address stay fifty customers, with or
without names. The displayed records keep the value (a golden customer's email may well be
the family inbox).

This is a stage of its own, between normalisation and linkage, so a later incremental run
can recompute the statistics of the values a day's records carry.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import jellyfish
import numpy as np
import pandas as pd

from identity.config import IdentityConfig

MATCH_RECORDS_TABLE = "_identity_match_records"
SHARED_TABLE = "_identity_shared_values"
# Two first names are one person's when they are this similar (a typo, a nickname already
# folded to its canonical form), or when one record has the names the other way round.
SAME_FIRST_NAME_SIMILARITY = 0.85


@dataclass(frozen=True)
class SharedIdentifier:
    """One identifier kind checked for sharing: `value_sql` (columns prefixed by `{t}`, the
    table alias) gives the value; `column` is the matching column it is removed from."""

    name: str
    column: str
    value_sql: str


SHARED_IDENTIFIERS = (
    SharedIdentifier("email", "email_key", "{t}email_key"),
    SharedIdentifier("phone", "phone_e164", "{t}phone_e164"),
    SharedIdentifier("user_id", "user_id", "{t}user_id"),
    SharedIdentifier("address", "address_line1", "{t}address_line1 || ' ' || {t}address_postal_code"),
)
SHARED_COLUMNS = {
    "identifier": "VARCHAR",
    "value_masked": "VARCHAR",
    "value_hash": "VARCHAR",
    "n_records": "BIGINT",
    "n_first_names": "BIGINT",
    "n_emails": "BIGINT",
    "n_phones": "BIGINT",
    "n_user_ids": "BIGINT",
    "n_addresses": "BIGINT",
    "reason": "VARCHAR",
}


def _mask_sql(identifier: str, value: str) -> str:
    """A value shown without giving it away: the first character and the shape around it."""
    if identifier == "email":
        return f"left({value}, 1) || '***@' || split_part({value}, '@', 2)"
    if identifier == "phone":
        return f"left({value}, 3) || '***' || right({value}, 2)"
    return f"left({value}, 2) || '***'"


def _statistics_sql(records_table: str, identifier: SharedIdentifier) -> str:
    address = (
        "case when address_line1 is not null then address_line1 || ' ' || "
        "coalesce(address_postal_code, '') end"
    )
    return f"""
        with carriers as (
            select {identifier.value_sql.format(t="")} as value, first_name_key, last_name, email_key,
                   phone_e164, user_id, {address} as address
            from {records_table}
        )
        select '{identifier.name}' as identifier, value,
               count(*) as n_records,
               count(distinct first_name_key) as n_first_name_keys,
               count(distinct email_key) as n_emails,
               count(distinct phone_e164) as n_phones,
               count(distinct user_id) as n_user_ids,
               count(distinct address) as n_addresses,
               list(distinct struct_pack(f := first_name_key, l := last_name))
                   filter (where first_name_key is not null) as names
        from carriers where value is not null
        group by value having count(*) >= 2
    """


def count_first_name_groups(names: list[dict] | None) -> int:
    """How many different people's first names are among (first, last) name pairs: greedy
    grouping, where two names are one person's when the first names are similar or the
    pair is written the other way round ("Lovelace Ada")."""
    groups: list[tuple[str, str | None]] = []
    for name in sorted(() if names is None else list(names), key=lambda n: (n["f"], n["l"] or "")):
        first, last = name["f"], name["l"]
        if not any(
            jellyfish.jaro_winkler_similarity(first, g_first) >= SAME_FIRST_NAME_SIMILARITY
            or (
                last is not None
                and first == g_last
                and jellyfish.jaro_winkler_similarity(last, g_first) >= SAME_FIRST_NAME_SIMILARITY
            )
            for g_first, g_last in groups
        ):
            groups.append((first, last))
    return len(groups)


def detect_shared_values(
    con: duckdb.DuckDBPyConnection, records_table: str, config: IdentityConfig
) -> pd.DataFrame:
    """Create `_identity_match_records` (the records with shared values removed from their
    matching columns) and `_identity_shared_values` (one row per shared value, with the
    statistics that gave it away). Returns the shared values (masked, hashed, no raw value)."""
    limits = {
        "email": config.max_emails_per_customer,
        "phone": config.max_phones_per_customer,
        "user_id": config.max_user_ids_per_customer,
        "address": config.max_addresses_per_person,
    }
    min_names = {
        "email": config.shared_value_min_first_names,
        "phone": config.shared_value_min_first_names,
        "user_id": config.shared_value_min_first_names,
        "address": config.shared_address_min_first_names,
    }
    columns = _columns(con, records_table)
    frames = []
    for identifier in SHARED_IDENTIFIERS:
        if identifier.column not in columns or not config.detect_shared_values:
            continue
        stats = con.sql(_statistics_sql(records_table, identifier)).df()
        if stats.empty:
            continue
        # Names are grouped in Python only where the distinct keys alone could reach the bar.
        many_names = stats["n_first_name_keys"].to_numpy() >= min_names[identifier.name]
        groups = np.zeros(len(stats), dtype=np.int64)
        groups[many_names] = [count_first_name_groups(n) for n in stats.loc[many_names, "names"]]
        stats["n_first_names"] = np.where(many_names, groups, stats["n_first_name_keys"])
        reasons = []
        for row in stats.itertuples(index=False):
            why = []
            if row.n_first_names >= min_names[identifier.name]:
                why.append(f"{row.n_first_names} different first names")
            for other, count in (
                ("email", row.n_emails),
                ("phone", row.n_phones),
                ("user_id", row.n_user_ids),
                ("address", row.n_addresses),
            ):
                # When every named record bears one person's name, extra accounts are that
                # person's duplicate sign-ups: the cardinality guard decides, not sharing.
                if other != identifier.name and count > limits[other] and row.n_first_names != 1:
                    why.append(f"{count} different {other} values (one person: at most {limits[other]})")
            reasons.append("; ".join(why) if why else None)
        stats["reason"] = reasons
        shared = stats[stats["reason"].notna()].drop(columns=["names", "n_first_name_keys"])
        if len(shared):
            frames.append(shared)
    shared = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(
            {c: pd.Series(dtype=object) for c in ("identifier", "value", *SHARED_COLUMNS)}
        )
    )
    con.register("_identity_shared_frame", shared)
    try:
        con.execute(f"""
            create or replace temp table {SHARED_TABLE} as
            select identifier::varchar as identifier, value::varchar as value,
                   case identifier
                       when 'email' then {_mask_sql("email", "value::varchar")}
                       when 'phone' then {_mask_sql("phone", "value::varchar")}
                       else {_mask_sql("other", "value::varchar")} end as value_masked,
                   md5(value::varchar) as value_hash,
                   {", ".join(f"{c}::bigint as {c}" for c in SHARED_COLUMNS if c.startswith("n_"))},
                   reason::varchar as reason
            from _identity_shared_frame
        """)
    finally:
        con.unregister("_identity_shared_frame")
    _create_match_records(con, records_table, columns)
    return con.sql(
        f"select {', '.join(SHARED_COLUMNS)} from {SHARED_TABLE} order by identifier, n_records desc"
    ).df()


def _create_match_records(
    con: duckdb.DuckDBPyConnection, records_table: str, columns: set[str]
) -> None:
    replaced, joins, labels = [], [], []
    for i, identifier in enumerate(SHARED_IDENTIFIERS):
        if identifier.column not in columns:
            continue
        alias = f"s{i}"
        value = identifier.value_sql.format(t="r.")
        joins.append(
            f"left join (select value, value_masked from {SHARED_TABLE} "
            f"where identifier = '{identifier.name}') {alias} on {alias}.value = {value}"
        )
        replaced.append(
            f"case when {alias}.value is null then r.{identifier.column} end as {identifier.column}"
        )
        labels.append(f"case when {alias}.value is not null then '{identifier.name}:' || {alias}.value_masked end")
    if not replaced:
        con.execute(f"create or replace temp table {MATCH_RECORDS_TABLE} as select * from {records_table}")
        return
    con.execute(f"""
        create or replace temp table {MATCH_RECORDS_TABLE} as
        select r.* replace ({", ".join(replaced)}),
               nullif(concat_ws(', ', {", ".join(labels)}), '') as shared_values
        from {records_table} r {" ".join(joins)}
        order by r.rid
    """)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {row[0] for row in con.sql(f"describe {table}").fetchall()}
