"""One normalised identity record per source record, read from the dbt staging models.

Sources: email contacts, billing customers, and web identities (one per `anonymous_id`
with its latest identify traits and `user_id`; events without an anonymous id form one
identity per `user_id`). A web identity never tied to an email, a phone or a user id is
not a customer and is skipped. Junk values (config `blocked_*`) are kept for display but
never used for matching; they are listed in `blocked_values`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import duckdb
import pandas as pd

from identity.config import IdentityConfig
from identity.normalize import (
    email_match_key,
    first_name_key,
    fold_name,
    normalize_city,
    normalize_email,
    normalize_phone,
    normalize_postcode,
    normalize_street,
    split_full_name,
)

STAGING_TABLES = (
    "staging.stg_email__contacts",
    "staging.stg_billing__customers",
    "staging.stg_web__events",
)

RAW_RECORDS_SQL = """
with web_by_anonymous_id as (
    select
        anonymous_id as source_record_id,
        arg_max(trait_email, occurred_at) filter (where trait_email is not null) as email,
        arg_max(trait_first_name, occurred_at) filter (where trait_first_name is not null) as first_name,
        arg_max(trait_last_name, occurred_at) filter (where trait_last_name is not null) as last_name,
        arg_max(trait_name, occurred_at) filter (where trait_name is not null) as full_name,
        arg_max(trait_phone, occurred_at) filter (where trait_phone is not null) as phone,
        arg_max(user_id, occurred_at) filter (where user_id is not null) as user_id,
        count(distinct user_id) as n_user_ids,
        min(occurred_at) as created_at,
        max(occurred_at) as updated_at
    from staging.stg_web__events
    where anonymous_id is not null
    group by anonymous_id
),
web_by_user_id as (
    select
        user_id as source_record_id,
        arg_max(trait_email, occurred_at) filter (where trait_email is not null) as email,
        arg_max(trait_first_name, occurred_at) filter (where trait_first_name is not null) as first_name,
        arg_max(trait_last_name, occurred_at) filter (where trait_last_name is not null) as last_name,
        arg_max(trait_name, occurred_at) filter (where trait_name is not null) as full_name,
        arg_max(trait_phone, occurred_at) filter (where trait_phone is not null) as phone,
        user_id,
        1 as n_user_ids,
        min(occurred_at) as created_at,
        max(occurred_at) as updated_at
    from staging.stg_web__events
    where anonymous_id is null and user_id is not null
    group by user_id
)
select 'email' as source_system, contact_id as source_record_id, email, first_name, last_name,
       null::varchar as full_name, phone, null::varchar as address_line1, city as address_city,
       null::varchar as address_postal_code, country, null::varchar as user_id,
       0 as n_user_ids, false as is_deleted, created_at, updated_at
from staging.stg_email__contacts
union all
select 'billing', customer_id, email, null, null, name, phone, address_line1, address_city,
       address_postal_code, address_country, user_id, case when user_id is null then 0 else 1 end,
       coalesce(is_deleted, false), created_at, updated_at
from staging.stg_billing__customers
union all
select 'web', source_record_id, email, first_name, last_name, full_name, phone, null, null, null,
       null, user_id, n_user_ids, false, created_at, updated_at
from (select * from web_by_anonymous_id union all by name select * from web_by_user_id)
where email is not null or phone is not null or user_id is not null
"""


def read_source_records(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The un-normalised identity records of all sources, one row per source record."""
    missing = [t for t in STAGING_TABLES if not _table_exists(con, t)]
    if missing:
        raise LookupError(
            f"identity resolution reads {', '.join(missing)}, which the warehouse does not "
            "have yet; run the dbt staging models first (`dbt build --select staging`)"
        )
    return con.sql(RAW_RECORDS_SQL).df()


def _table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, table = qualified.split(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )


def _map_distinct(values: pd.Series, fn: Callable) -> pd.Series:
    """Apply fn once per distinct value (names and cities repeat a lot)."""
    uniques = values.dropna().unique()
    mapping = {v: fn(v) for v in uniques}
    return values.map(mapping, na_action="ignore").astype(object).where(values.notna(), None)


class BlockedValues:
    """The config's junk values, compiled once."""

    def __init__(self, config: IdentityConfig):
        self.emails = {e.strip().lower() for e in config.blocked_emails}
        self.email_patterns = [re.compile(p) for p in config.blocked_email_patterns]
        self.phones = set(config.blocked_phones)
        self.phone_patterns = [re.compile(p) for p in config.blocked_phone_patterns]
        self.user_ids = {u.strip().lower() for u in config.blocked_user_ids}
        self.names = {n.strip().lower() for n in config.blocked_names}

    def email_is_blocked(self, email: str) -> bool:
        return email in self.emails or any(p.search(email) for p in self.email_patterns)

    def phone_is_blocked(self, e164: str) -> bool:
        digits = e164.lstrip("+")
        return e164 in self.phones or any(p.search(digits) for p in self.phone_patterns)

    def user_id_is_blocked(self, user_id: str) -> bool:
        return user_id.strip().lower() in self.user_ids

    def name_is_blocked(self, folded_name: str) -> bool:
        return folded_name in self.names


def _title_if_shouting(text: str | None) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text.title() if text.isupper() or text.islower() else text or None


def normalize_records(raw: pd.DataFrame, config: IdentityConfig) -> pd.DataFrame:
    """The identity records fed to matching: normalised keys plus display values."""
    blocked = BlockedValues(config)
    out = pd.DataFrame(
        {
            "source_system": raw["source_system"].astype(str),
            "source_record_id": raw["source_record_id"].astype(str),
        }
    )
    out.insert(0, "record_key", out["source_system"] + ":" + out["source_record_id"])
    blocked_notes: list[pd.Series] = []

    email = _map_distinct(raw["email"], normalize_email)
    email_key = _map_distinct(email, email_match_key)
    email_blocked = (
        _map_distinct(email, blocked.email_is_blocked).astype("boolean").fillna(False).astype(bool)
    )
    email_blocked |= (
        _map_distinct(email_key, blocked.email_is_blocked)
        .astype("boolean")
        .fillna(False)
        .astype(bool)
    )
    blocked_notes.append(("email:" + email).where(email_blocked))
    out["email"] = email
    out["email_key"] = email_key.where(~email_blocked, None)
    out["email_local"] = out["email_key"].str.split("@", n=1).str[0]

    region = raw["country"].fillna(config.default_phone_region).str.upper().str.strip()
    # the distinct (phone, region) pairs, each parsed once
    phone_cache: dict[tuple[str, str], str | None] = {}
    phone_values = []
    for raw_phone, phone_region in zip(raw["phone"], region, strict=True):
        if not isinstance(raw_phone, str):
            phone_values.append(None)
            continue
        key = (raw_phone, phone_region)
        if key not in phone_cache:
            phone_cache[key] = normalize_phone(raw_phone, phone_region, config.default_phone_region)
        phone_values.append(phone_cache[key])
    phone = pd.Series(phone_values, index=raw.index, dtype=object)
    phone_blocked = (
        _map_distinct(phone, blocked.phone_is_blocked).astype("boolean").fillna(False).astype(bool)
    )
    blocked_notes.append(("phone:" + phone).where(phone_blocked))
    out["phone_e164"] = phone.where(~phone_blocked, None)
    out["phone_display"] = phone

    split = _map_distinct(raw["full_name"], split_full_name)
    split_first = split.map(lambda t: t[0], na_action="ignore")
    split_last = split.map(lambda t: t[1], na_action="ignore")
    first = _map_distinct(raw["first_name"], fold_name).fillna(split_first)
    last = _map_distinct(raw["last_name"], fold_name).fillna(split_last)
    first_blocked = (
        _map_distinct(first, blocked.name_is_blocked).astype("boolean").fillna(False).astype(bool)
    )
    last_blocked = (
        _map_distinct(last, blocked.name_is_blocked).astype("boolean").fillna(False).astype(bool)
    )
    blocked_notes.append(("first_name:" + first).where(first_blocked))
    blocked_notes.append(("last_name:" + last).where(last_blocked))
    out["first_name"] = first.where(~first_blocked, None)
    out["last_name"] = last.where(~last_blocked, None)
    out["first_name_key"] = _map_distinct(out["first_name"], first_name_key)

    display_split = _map_distinct(raw["full_name"], _display_split)
    out["display_first_name"] = _map_distinct(raw["first_name"], _title_if_shouting).fillna(
        display_split.map(lambda t: t[0], na_action="ignore")
    )
    out["display_last_name"] = _map_distinct(raw["last_name"], _title_if_shouting).fillna(
        display_split.map(lambda t: t[1], na_action="ignore")
    )
    out.loc[first_blocked, "display_first_name"] = None
    out.loc[last_blocked, "display_last_name"] = None

    out["address_line1"] = _map_distinct(raw["address_line1"], normalize_street)
    out["address_city"] = _map_distinct(raw["address_city"], normalize_city)
    out["address_postal_code"] = [
        normalize_postcode(p, c) if p is not None else None
        for p, c in zip(_none(raw["address_postal_code"]), _none(raw["country"]), strict=True)
    ]
    out["address_country"] = raw["country"].str.upper().str.strip()
    out["display_address_line1"] = _map_distinct(
        raw["address_line1"], lambda s: " ".join(s.split()) or None
    )
    out["display_city"] = _map_distinct(raw["address_city"], _title_if_shouting)

    user_id = raw["user_id"].astype(object).where(raw["user_id"].notna(), None)
    user_blocked = (
        _map_distinct(user_id, blocked.user_id_is_blocked)
        .astype("boolean")
        .fillna(False)
        .astype(bool)
    )
    blocked_notes.append(("user_id:" + user_id.fillna("")).where(user_blocked))
    out["user_id"] = user_id.where(~user_blocked, None)
    out["n_user_ids"] = raw["n_user_ids"].astype("int64")
    out["is_deleted"] = raw["is_deleted"].astype("boolean").fillna(False).astype(bool)
    out["source_created_at"] = raw["created_at"]
    out["source_updated_at"] = raw["updated_at"]
    notes = pd.concat(blocked_notes, axis=1)
    has_blocked = notes.notna().any(axis=1)
    out["blocked_values"] = None
    if has_blocked.any():
        out.loc[has_blocked, "blocked_values"] = notes[has_blocked].apply(
            lambda row: ", ".join(row.dropna()), axis=1
        )
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].where(out[column].notna(), None)
    return out.sort_values("record_key", kind="stable").reset_index(drop=True)


def _none(series: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in series]


def _display_split(raw: str) -> tuple[str | None, str | None]:
    """Display-cased first and last name from one free-text name (keeps accents)."""
    if "," in raw:
        last, first = raw.split(",", 1)
        return _title_if_shouting(first.strip()) or None, _title_if_shouting(last.strip()) or None
    words = raw.split()
    if not words:
        return None, None
    if len(words) == 1:
        return _title_if_shouting(words[0]), None
    return _title_if_shouting(" ".join(words[:-1])), _title_if_shouting(words[-1])


def build_identity_records(con: duckdb.DuckDBPyConnection, config: IdentityConfig) -> pd.DataFrame:
    """Read the staging models and return the normalised identity records, sorted by record_key."""
    return normalize_records(read_source_records(con), config)
