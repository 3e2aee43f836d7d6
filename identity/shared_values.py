"""Shared identifiers, found in the data rather than in a list.

A family inbox, the `orders@` address of a small shop, an office switchboard or a user id a
whole team logs in with links records of several people. No list can name them all, but the
records carrying such a value give it away: more than one person's first name (typos,
nicknames and "Last First" order aside), or more distinct other identifiers (phones,
emails, user ids, street addresses) than one person plausibly has while their names do not
say it is one person. Such a value stops being a key in the *matching* copy of the records
(`_identity_match_records`): it is qualified by the first-name group of each record
(`value#0`, `value#1`) and dropped from records without a first name. So one person's own
records on a family inbox still share a key, fifty strangers on one address stay fifty
customers with or without names, and a nameless record cannot be chained to a stranger.
The displayed records keep the value (a golden customer's email may well be the family
inbox), and `identity.shared_values` says which values were shared and why (masked).

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
from identity.normalize import may_be_same_first_name

MATCH_RECORDS_TABLE = "_identity_match_records"
SHARED_TABLE = "_identity_shared_values"
NAME_GROUP_TABLE = "_identity_shared_name_groups"
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
    qualify_by_name: bool = True


SHARED_IDENTIFIERS = (
    SharedIdentifier("email", "email_key", "{t}email_key"),
    SharedIdentifier("phone", "phone_e164", "{t}phone_e164"),
    SharedIdentifier("user_id", "user_id", "{t}user_id"),
    SharedIdentifier(
        "address",
        "address_line1",
        "{t}address_line1 || ' ' || {t}address_postal_code",
        qualify_by_name=False,
    ),
)
SHARED_COLUMNS = {
    "identifier": "VARCHAR",
    "value_masked": "VARCHAR",
    "value_hash": "VARCHAR",
    "n_records": "BIGINT",
    "n_names": "BIGINT",
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


def _statistics_sql(
    records_table: str,
    identifier: SharedIdentifier,
    limits: dict[str, int],
    guests: bool = False,
    candidates: bool = False,
) -> str:
    """Per value carried by 2+ records: the counts that can show sharing. Only values that
    could be shared come back (several name pairs, or too many of another identifier): most
    values are one person's and never leave DuckDB. `candidates`: only the values of
    `_identity_shared_candidates` (a nightly run's, see `_create_candidates`)."""
    among = (
        f" semi join (select value from {CANDIDATE_TABLE} "
        f"where identifier = '{identifier.name}') k using (value)"
        if candidates
        else ""
    )
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
               count(distinct struct_pack(f := first_name_key, l := last_name))
                   filter (where first_name_key is not null or last_name is not null)
                   as n_name_pairs,
               count(distinct email_key) as n_emails,
               count(distinct phone_e164) as n_phones,
               count(distinct user_id) as n_user_ids,
               count(distinct address) as n_addresses,
               list(distinct struct_pack(f := first_name_key, l := last_name))
                   filter (where first_name_key is not null or last_name is not null) as names
        from carriers{among} where value is not null
        group by value
        having count(*) >= 2 and (
            n_name_pairs >= 2{f" or value in (select value from {GUEST_TABLE})" if guests else ""}
            or n_emails > {limits["email"]} or n_phones > {limits["phone"]}
            or n_user_ids > {limits["user_id"]} or n_addresses > {limits["address"]})
    """


GUEST_TABLE = "_identity_mailbox_guests"
CANDIDATE_TABLE = "_identity_shared_candidates"
CHANGED_RECORDS = "_identity_shared_changed_records"
_PREVIOUS_RECORDS = "identity.identity_records"


def _previous_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    schema, name = table.split(".")
    return {
        c
        for (c,) in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchall()
    }


def _create_candidates(
    con: duckdb.DuckDBPyConnection, records_table: str, columns: set[str]
) -> bool:
    """`_identity_shared_candidates(identifier, value)`: the values whose statistics a nightly
    run recomputes. A value's statistics are a function of the records carrying it, so
    they can differ from last run's only for a value that a record new or changed since
    last run carries now or carried then, or that a vanished record carried. A record is
    unchanged when its source fingerprint is last run's (identity/records.py: the same
    source row through the same normaliser and value blocks gives the same record). Every
    other value keeps last run's verdict; of those only last run's shared values are
    needed again (for their name groups): the values of last run's records that carried a
    shared value (`identity_records.shared_values`). Returns False (every value is
    examined) when last run's records cannot say this."""
    needed = {c for i in SHARED_IDENTIFIERS for c in (i.column, "address_postal_code")}
    previous = _previous_columns(con, _PREVIOUS_RECORDS)
    if not needed | {"record_key", "shared_values", "source_fingerprint"} <= previous:
        return False
    if "source_fingerprint" not in columns:
        return False
    con.execute(f"""
        create or replace temp table {CHANGED_RECORDS} as
        select r.record_key from {records_table} r
        anti join {_PREVIOUS_RECORDS} p
          on p.record_key = r.record_key and p.source_fingerprint = r.source_fingerprint
    """)
    parts = []
    for identifier in SHARED_IDENTIFIERS:
        if identifier.column not in columns:
            continue
        now, before = identifier.value_sql.format(t="r."), identifier.value_sql.format(t="p.")
        parts += [
            f"select '{identifier.name}' as identifier, {now} as value from {records_table} r "
            f"semi join {CHANGED_RECORDS} f using (record_key)",
            f"select '{identifier.name}', {before} from {_PREVIOUS_RECORDS} p "
            f"where p.shared_values is not null "
            f"or p.record_key in (select record_key from {CHANGED_RECORDS}) "
            f"or not exists (select 1 from {records_table} c where c.record_key = p.record_key)",
        ]
    con.execute(
        f"create or replace temp table {CANDIDATE_TABLE} as "
        f"select distinct identifier, value from ({' union all '.join(parts)}) "
        "where value is not null"
    )
    con.execute(f"drop table {CHANGED_RECORDS}")
    return True


GUEST_REASON = "its mailbox names another person than the one using it"


def mailbox_names_person(prefix: str, first_name: str, first_name_key: str | None) -> bool:
    """Could a mailbox's given-name part (what precedes the surname: `j` in `jsmith@`,
    `bill` in `bill.smith@`; else what follows it: `john` in `smith.john@`) be this first
    name's? An initial or two (first and middle),
    the name itself, a typo, a nickname or a short form of it."""
    if not prefix:
        return True
    words = first_name.split(" ")
    if len(prefix) <= 2:
        return prefix[0] == words[0][:1]
    candidates = {
        *words,
        first_name.replace(" ", ""),
        *([first_name_key] if first_name_key else []),
    }
    return any(may_be_same_first_name(prefix, c, SAME_FIRST_NAME_SIMILARITY) for c in candidates)


def mailbox_guest_values(con: duckdb.DuckDBPyConnection, records_table: str) -> list[str]:
    """Email keys used by someone the mailbox does not name, next to records without a
    first name: `edomier@` (E. Domier's) used by Robert Domier. Robert is a guest on a
    relative's inbox, so a record on it without a first name is as likely the mailbox's
    owner as Robert: the address is shared, though only one name was ever typed with it.
    A mailbox that spells none of its users' surnames says nothing and is left alone."""
    rows = con.sql(f"""
        with values_with_nameless as (
            select email_key from {records_table}
            where email_key is not null
            group by 1
            having count(*) >= 2 and count(*) filter (where first_name_key is null) >= 1
               and count(*) filter (where first_name_key is not null) >= 1
        ),
        named as (
            select r.email_key,
                   regexp_replace(split_part(r.email_key, '@', 1), '[^a-z]', '', 'g') as mailbox,
                   regexp_replace(r.last_name, '[^a-z]', '', 'g') as surname,
                   trim(regexp_replace(r.first_name, '[^a-z ]', '', 'g')) as first_name,
                   r.first_name_key
            from {records_table} r semi join values_with_nameless v using (email_key)
            where r.first_name_key is not null and r.first_name is not null
        )
        select distinct email_key,
               -- the given-name part: before the surname (`jsmith`), else after it
               -- (`smith.john`)
               coalesce(nullif(split_part(mailbox, surname, 1), ''),
                        split_part(mailbox, surname, 2)) as prefix,
               first_name,
               first_name_key, length(surname) >= 3 and contains(mailbox, surname) as claims
        from named
    """).fetchall()
    verdict: dict[str, list[bool]] = {}
    for value, prefix, first_name, key, claims in rows:
        fits = (
            None if not claims or not first_name else mailbox_names_person(prefix, first_name, key)
        )
        verdict.setdefault(value, []).append(fits)
    return sorted(value for value, fits in verdict.items() if False in fits and True not in fits)


def _similar(a: str | None, b: str | None) -> bool:
    return (
        a is not None
        and b is not None
        and (a == b or jellyfish.jaro_winkler_similarity(a, b) >= SAME_FIRST_NAME_SIMILARITY)
    )


def _same_persons_names(a: dict, b: dict, by_last_name: bool) -> bool:
    """Could two (first, last) name pairs, both with a first name, be one person's? The
    first names may be one person's (typos, nicknames, short forms), or one pair is written
    the other way round ("Lovelace Ada", "RAILEY Patricia", "Paul" next to "Crountic Paul")."""
    if may_be_same_first_name(a["f"], b["f"], SAME_FIRST_NAME_SIMILARITY) and (
        not by_last_name or a["l"] is None or b["l"] is None or _similar(a["l"], b["l"])
    ):
        return True
    return written_other_way_round(a, b)


def _name_like(a: str, b: str) -> bool:
    return _similar(a, b) or may_be_same_first_name(a, b, SAME_FIRST_NAME_SIMILARITY)


def written_other_way_round(a: dict, b: dict) -> bool:
    """One (first, last) name pair is the other's with first and last swapped, allowing
    typos and nicknames ("Macleod Bill" for William Macleod); a missing last name on the
    swapped side does not contradict it ("Paul" next to "Crountic Paul")."""

    def round_of(x: dict, y: dict) -> bool:
        return (
            x["f"] is not None
            and y["l"] is not None
            and _name_like(x["f"], y["l"])
            and (x["l"] is None or (y["f"] is not None and _name_like(x["l"], y["f"])))
        )

    return round_of(a, b) or round_of(b, a)


def first_name_groups(names, by_last_name: bool = False) -> list[int]:
    """The person (0, 1, ...) each (first, last) name pair belongs to, in input order, or -1
    when it cannot be told. Names with a first name are grouped transitively (union-find,
    so the order they come in does not matter) when they may be one person's
    (`_same_persons_names`: typos, nicknames, short forms, "Last First" order). A name
    without a first name joins the one group whose last name it shares; sharing none it is
    another person, sharing several (a family's surname) it cannot be told (-1).
    `by_last_name`: also keep apart equal first names whose last names both exist and
    differ (William Thirro and William Fealdi on a company's `frontdesk@`). Used only to
    split a value already known to be shared: on a person's own address the same first name
    with two surnames is a surname change, not two people."""
    names = list(names) if isinstance(names, list | np.ndarray) else []
    if not by_last_name and names and len({name["f"] for name in names}) == 1:
        if names[0]["f"] is not None:
            # one first name on every pair (most values seen by several records): one
            # person, whatever the surnames - the pairwise comparison below would say so
            return [0] * len(names)
    named = [i for i, name in enumerate(names) if name["f"] is not None]
    parent = {i: i for i in named}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for x, i in enumerate(named):
        for j in named[x + 1 :]:
            if find(i) != find(j) and _same_persons_names(names[i], names[j], by_last_name):
                parent[max(find(i), find(j))] = min(find(i), find(j))
    assigned = [-1] * len(names)
    roots: dict[int, int] = {}
    # groups numbered in order of their first member by name, as before (stable output)
    for i in sorted(named, key=lambda i: (names[i]["f"], names[i]["l"] or "")):
        assigned[i] = roots.setdefault(find(i), len(roots))
    group_names: list[set[str]] = [set() for _ in roots]
    for i in named:
        group_names[assigned[i]].update(n for n in (names[i]["f"], names[i]["l"]) if n)
    group_lasts: list[set[str]] = [set() for _ in roots]
    for i in named:
        if names[i]["l"] is not None:
            group_lasts[assigned[i]].add(names[i]["l"])
    # in order of the surname, not of the input: a surname that starts a group of its own
    # gets the next number, and SQL hands the pairs over in no set order (the numbers
    # qualify shared values in the matching copy, so they must follow the names alone)
    surname_only = sorted(
        (i for i, name in enumerate(names) if name["f"] is None and name["l"] is not None),
        key=lambda i: names[i]["l"],
    )
    for i in surname_only:
        last = names[i]["l"]
        matches = [
            g
            for g in range(len(roots))
            if any(_similar(last, known) for known in group_lasts[g]) or last in group_names[g]
        ]
        if len(matches) == 1:
            assigned[i] = matches[0]
        elif not matches:
            assigned[i] = len(group_names)
            group_names.append({last})
            group_lasts.append({last})
    return assigned


def count_first_name_groups(names) -> int:
    """How many different people's names are among (first, last) name pairs."""
    assigned = first_name_groups(names)
    return max(assigned, default=-1) + 1


def detect_shared_values(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    config: IdentityConfig,
    changed_only: bool = False,
) -> pd.DataFrame:
    """Create `_identity_match_records` and `_identity_shared_values` (one row per shared
    value, with the statistics that gave it away). Returns the shared values (masked and
    hashed: no raw value leaves DuckDB).

    In the matching copy a shared value is qualified by the first-name group of the record
    carrying it (`value#0`, `value#1`, ...) and removed from records without a first name:
    the records of one person on a family inbox still share a key, different people's do
    not, and a record without a name cannot be told apart, so the value links it to no one.

    `changed_only` (a nightly run): only the values that records new or changed since last
    run touch, and last run's shared values, are examined again (`_create_candidates`):
    the same result at the cost of the day's values, not of every value in the history."""
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
    candidates = (
        changed_only
        and config.detect_shared_values
        and _create_candidates(con, records_table, columns)
    )
    frames, group_frames = [], []
    for identifier in SHARED_IDENTIFIERS:
        if identifier.column not in columns or not config.detect_shared_values:
            continue
        guests: set[str] = set()
        if identifier.name == "email" and {"first_name", "last_name"} <= columns:
            guests = set(mailbox_guest_values(con, records_table))
            con.register(GUEST_TABLE, pd.DataFrame({"value": sorted(guests)}, dtype=object))
        try:
            stats = con.sql(
                _statistics_sql(
                    records_table, identifier, limits, guests=bool(guests), candidates=candidates
                )
            ).df()
        finally:
            if guests:
                con.unregister(GUEST_TABLE)
        if stats.empty:
            continue
        # Names are grouped in Python only where there are several distinct name pairs.
        several = stats["n_name_pairs"].to_numpy() >= 2
        names_of = stats["names"].to_list()
        groups = {i: first_name_groups(names_of[i]) for i in np.flatnonzero(several)}
        stats["n_names"] = [
            (max(groups[i], default=-1) + 1) if i in groups else min(int(n), 1)
            for i, n in enumerate(stats["n_name_pairs"].to_numpy())
        ]
        reasons = []
        for row in stats.itertuples(index=False):
            why = []
            if row.n_names >= min_names[identifier.name]:
                why.append(f"{row.n_names} different people's names")
            if row.value in guests:
                why.append(GUEST_REASON)
            for other, count in (
                ("email", row.n_emails),
                ("phone", row.n_phones),
                ("user_id", row.n_user_ids),
                ("address", row.n_addresses),
            ):
                # When every named record bears one person's name, extra accounts are that
                # person's duplicate sign-ups: the cardinality guard decides, not sharing.
                if other != identifier.name and count > limits[other] and row.n_names != 1:
                    why.append(
                        f"{count} different {other} values (one person: at most {limits[other]})"
                    )
            reasons.append("; ".join(why) if why else None)
        stats["reason"] = reasons
        is_shared = stats["reason"].notna().to_numpy()
        shared = stats[is_shared].drop(columns=["names", "n_first_name_keys", "n_name_pairs"])
        if not len(shared):
            continue
        frames.append(shared)
        rows = []
        values_of = stats["value"].to_list()
        for i in np.flatnonzero(is_shared):
            names = names_of[i]
            names = list(names) if isinstance(names, list | np.ndarray) else []
            # a shared value is split per person: equal first names with different
            # surnames are different people on it
            split = first_name_groups(names, by_last_name=True) if len(names) >= 2 else None
            split = split or groups.get(i, [0] * len(names))
            if values_of[i] in guests:
                # the mailbox's owner is not among the names: a record without a first name
                # may be the owner, whatever surname the family shares
                split = [
                    -1 if name["f"] is None else g for name, g in zip(names, split, strict=True)
                ]
            for name, group in zip(names, split, strict=True):
                if group >= 0:
                    rows.append((identifier.name, values_of[i], name["f"], name["l"], group))
        group_frames.append(
            pd.DataFrame(
                rows, columns=["identifier", "value", "first_name_key", "last_name", "name_group"]
            )
        )
    shared = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(
            {c: pd.Series(dtype=object) for c in ("identifier", "value", *SHARED_COLUMNS)}
        )
    )
    name_groups = (
        pd.concat(group_frames, ignore_index=True)
        if group_frames
        else pd.DataFrame(
            {
                c: pd.Series(dtype=object)
                for c in ("identifier", "value", "first_name_key", "last_name")
            }
            | {"name_group": pd.Series(dtype="int64")}
        )
    )
    con.register("_identity_shared_frame", shared)
    con.register("_identity_name_group_frame", name_groups)
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
        con.execute(f"""
            create or replace temp table {NAME_GROUP_TABLE} as
            select identifier::varchar as identifier, value::varchar as value,
                   first_name_key::varchar as first_name_key, last_name::varchar as last_name,
                   name_group::integer as name_group
            from _identity_name_group_frame
        """)
    finally:
        con.unregister("_identity_shared_frame")
        con.unregister("_identity_name_group_frame")
    _create_match_records(con, records_table, columns)
    con.execute(f"drop table if exists {NAME_GROUP_TABLE}")
    con.execute(f"drop table if exists {CANDIDATE_TABLE}")
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
        alias, group = f"s{i}", f"g{i}"
        value = identifier.value_sql.format(t="r.")
        joins.append(
            f"left join (select value, value_masked from {SHARED_TABLE} "
            f"where identifier = '{identifier.name}') {alias} on {alias}.value = {value} "
            f"left join (select * from {NAME_GROUP_TABLE} where identifier = '{identifier.name}') "
            f"{group} on {group}.value = {value} "
            f"and {group}.first_name_key is not distinct from r.first_name_key "
            f"and {group}.last_name is not distinct from r.last_name"
        )
        # Exact keys are qualified by name group; a value compared by similarity (an
        # address) cannot be, so a shared one is simply not evidence.
        qualified = (
            f"when {group}.name_group is not null "
            f"then r.{identifier.column} || '#' || {group}.name_group "
            if identifier.qualify_by_name
            else ""
        )
        replaced.append(
            f"case when {alias}.value is null then r.{identifier.column} {qualified}"
            f"end as {identifier.column}"
        )
        labels.append(
            f"case when {alias}.value is not null then '{identifier.name}:' || {alias}.value_masked end"
        )
    if not replaced:
        con.execute(
            f"create or replace temp table {MATCH_RECORDS_TABLE} as "
            f"select *, null::varchar as shared_values from {records_table}"
        )
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
