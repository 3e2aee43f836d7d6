"""Suppression: later deliveries about an erased person are counted, never stored.

An erasure (see `privacy/erasure.py`) leaves behind only *keyed hashes* of the erased
person's identifiers in `privacy.suppressed_identifiers`: their email addresses, phone
numbers and source ids (contact, billing customer, web anonymous and user ids, ticket and
response ids). When a file is loaded, every parsed row whose identifiers hash to one of
them is dropped before it reaches `raw.<table>` or `raw.rejects`, and counted as
`rows_suppressed` in `raw.load_audit` (read = loaded + rejected + suppressed).

The hash is SHA-256 over `salt|kind|value`: without the salt nobody can test a guessed
email against the list. The salt comes from `CDP_PRIVACY_SALT`, else from a key file
(`CDP_PRIVACY_KEY_FILE`, default `privacy.key` next to the warehouse) that is generated on
first use with mode 600. Losing the key makes the list useless (erased people would come
back with the next re-delivery): back it up with the warehouse, never with the BI files.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import duckdb

SUPPRESSION_SCHEMA = "privacy"
SUPPRESSION_TABLE = f"{SUPPRESSION_SCHEMA}.suppressed_identifiers"
SALT_ENV = "CDP_PRIVACY_SALT"
KEY_FILE_ENV = "CDP_PRIVACY_KEY_FILE"
KEY_FILE_NAME = "privacy.key"
MIN_SALT_CHARS = 16
# Phone numbers arrive in any human format, with or without a country code or a national
# trunk 0: the last nine digits are what `+49 30 1234567`, `030 1234567` share.
PHONE_SUFFIX_DIGITS = 9
_EMAIL_TOKEN = r"[a-z0-9._%+\-]+@[a-z0-9\-]+(\.[a-z0-9\-]+)+"


class PrivacyKeyError(Exception):
    """The keyed-hash salt is missing or unusable; the message says what to do."""


@dataclass(frozen=True)
class IdentifierColumn:
    """A raw column that identifies a person: `kind` namespaces its hash."""

    kind: str  # email, phone, or an id kind (contact_id, customer_id, ...)
    sql: str  # expression over the raw/parsed row


# Per raw table: the columns whose values identify the person a row is about.
IDENTIFIER_COLUMNS: dict[str, tuple[IdentifierColumn, ...]] = {
    "email_contacts": (
        IdentifierColumn("email", "email"),
        IdentifierColumn("phone", "phone"),
        IdentifierColumn("contact_id", "contact_id"),
    ),
    "email_events": (IdentifierColumn("contact_id", "contact_id"),),
    "billing_customers": (
        IdentifierColumn("email", "email"),
        IdentifierColumn("phone", "phone"),
        IdentifierColumn("customer_id", "customer_id"),
        IdentifierColumn("user_id", "user_id"),
    ),
    "billing_invoices": (IdentifierColumn("customer_id", "customer_id"),),
    "billing_subscriptions": (IdentifierColumn("customer_id", "customer_id"),),
    "web_events": (
        IdentifierColumn("anonymous_id", "anonymous_id"),
        IdentifierColumn("user_id", "user_id"),
        IdentifierColumn("email", "json_extract_string(traits, '$.email')"),
        IdentifierColumn("phone", "json_extract_string(traits, '$.phone')"),
    ),
    "support_tickets": (
        IdentifierColumn("email", "requester_email"),
        IdentifierColumn("phone", "requester_phone"),
        IdentifierColumn("ticket_id", "ticket_id"),
    ),
    "survey_responses": (
        IdentifierColumn("email", "respondent_email"),
        IdentifierColumn("response_id", "response_id"),
    ),
}
# Requests themselves are never suppressed: a new request for an already erased address
# must reach the erasure log; a re-delivered old one is removed by the erasure step.
NEVER_SUPPRESSED = {"privacy_requests"}


def key_file_path() -> Path | None:
    """Where the generated key lives: $CDP_PRIVACY_KEY_FILE, else next to $CDP_WAREHOUSE."""
    if os.environ.get(KEY_FILE_ENV):
        return Path(os.environ[KEY_FILE_ENV])
    if os.environ.get("CDP_WAREHOUSE"):
        return Path(os.environ["CDP_WAREHOUSE"]).parent / KEY_FILE_NAME
    return None


def privacy_salt(create: bool = False) -> str:
    """The secret salt of every keyed hash; with `create`, generate the key file if absent."""
    configured = os.environ.get(SALT_ENV)
    if configured is not None:
        if len(configured) < MIN_SALT_CHARS:
            raise PrivacyKeyError(
                f"{SALT_ENV} is set but shorter than {MIN_SALT_CHARS} characters; use a long "
                "random secret (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
            )
        return configured
    path = key_file_path()
    if path is None:
        raise PrivacyKeyError(
            f"no privacy salt: set {SALT_ENV}, or {KEY_FILE_ENV} (or CDP_WAREHOUSE, whose "
            f"folder then holds {KEY_FILE_NAME})"
        )
    if not path.exists():
        if not create:
            raise PrivacyKeyError(
                f"the privacy key file {path} is missing but the warehouse has a suppression "
                f"list: restore the file from the warehouse's backup (or set {SALT_ENV} to the "
                "salt it held); without it erased people cannot be recognised on re-delivery"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    salt = path.read_text().strip()
    if len(salt) < MIN_SALT_CHARS:
        raise PrivacyKeyError(f"the privacy key file {path} holds no usable key; restore it")
    return salt


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def normalized_sql(kind: str, value_sql: str) -> str:
    """The form of a value that is hashed: emails trimmed and lower-cased, phones' last
    nine digits (NULL when fewer), ids trimmed."""
    text = f"trim(CAST({value_sql} AS VARCHAR))"
    if kind == "email":
        return f"nullif(lower({text}), '')"
    if kind == "phone":
        digits = f"regexp_replace({text}, '[^0-9]', '', 'g')"
        return (
            f"CASE WHEN length({digits}) >= {PHONE_SUFFIX_DIGITS} "
            f"THEN right({digits}, {PHONE_SUFFIX_DIGITS}) END"
        )
    return f"nullif({text}, '')"


def hash_sql(salt: str, kind: str, value_sql: str) -> str:
    """SQL for the keyed hash of a value of `kind` (NULL for an empty value)."""
    return f"sha256({_sql_str(salt + '|' + kind + '|')} || {normalized_sql(kind, value_sql)})"


def keyed_hash(con: duckdb.DuckDBPyConnection, salt: str, kind: str, value: str) -> str | None:
    """The keyed hash of one value, computed by the same SQL as at ingestion (the value is
    bound once and named, since a phone's normal form reads it twice)."""
    return con.execute(
        f"SELECT {hash_sql(salt, kind, 'keyed_value')} FROM (SELECT ?::VARCHAR AS keyed_value)",
        [value],
    ).fetchone()[0]


def row_hashes_sql(table: str, salt: str, record_column: str | None = None) -> str:
    """A list expression: every identifier hash of a row of raw table `table` (and of the
    email addresses inside its raw line, when `record_column` names one)."""
    parts = [hash_sql(salt, c.kind, c.sql) for c in IDENTIFIER_COLUMNS.get(table, ())]
    expr = f"list_filter([{', '.join(parts)}]::VARCHAR[], lambda h: h IS NOT NULL)"
    if record_column:
        token_hash = hash_sql(salt, "email", "t")
        expr += (
            f" || list_transform(regexp_extract_all(lower(coalesce({record_column}, '')), "
            f"'{_EMAIL_TOKEN}'), lambda t: {token_hash})"
        )
    return expr


def ensure_suppression_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SUPPRESSION_SCHEMA}")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {SUPPRESSION_TABLE} ("
        "identifier_hash VARCHAR NOT NULL, identifier_kind VARCHAR NOT NULL, "
        "request_id VARCHAR NOT NULL, suppressed_at TIMESTAMP NOT NULL)"
    )


def suppression_hashes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every keyed hash on the suppression list (none if there is no list): what a loader
    that cannot join the list in SQL (Spark's, ingestion/spark_reading.py) is given."""
    if not has_suppression_list(con):
        return []
    return [
        h
        for (h,) in con.execute(
            f"SELECT DISTINCT identifier_hash FROM {SUPPRESSION_TABLE}"
        ).fetchall()
    ]


def has_suppression_list(con: duckdb.DuckDBPyConnection) -> bool:
    (exists,) = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ? "
        "AND database_name = current_database()",
        [SUPPRESSION_SCHEMA, SUPPRESSION_TABLE.split(".")[1]],
    ).fetchone()
    if not exists:
        return False
    return con.execute(f"SELECT count(*) > 0 FROM {SUPPRESSION_TABLE}").fetchone()[0]


def suppress_parsed_rows(
    con: duckdb.DuckDBPyConnection, table: str, parsed_table: str, listed: bool | None = None
) -> int:
    """Delete from a parsed file's temp table every row about a suppressed person; return
    how many. Loaded and rejected rows alike: a rejected raw line is personal data too.
    `listed`: whether there is a suppression list, when the caller knows (None: look)."""
    if table in NEVER_SUPPRESSED:
        return 0
    if not (has_suppression_list(con) if listed is None else listed):
        return 0
    salt = privacy_salt()
    matched = f"_suppressed_{parsed_table}"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {matched} AS "
        f"WITH row_hashes AS (SELECT ln, unnest({row_hashes_sql(table, salt, 'record')}) AS h "
        f"FROM {parsed_table}) "
        f"SELECT DISTINCT ln FROM row_hashes JOIN {SUPPRESSION_TABLE} s ON s.identifier_hash = h"
    )
    try:
        (count,) = con.execute(f"SELECT count(*) FROM {matched}").fetchone()
        if count:
            con.execute(f"DELETE FROM {parsed_table} WHERE ln IN (SELECT ln FROM {matched})")
    finally:
        con.execute(f"DROP TABLE IF EXISTS {matched}")
    return int(count)
