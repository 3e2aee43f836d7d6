"""Erasure: forget a person everywhere the warehouse holds them, and prove it without them.

A request (`raw.privacy_requests`, one row per request id) names a person by an email or
a phone. `erase_pending_requests` resolves it through identity, deletes every row about
the person from every table of the warehouse, adds the keyed hashes of their identifiers
to the suppression list (`ingestion/suppression.py`) and writes one `privacy.erasure_log`
row: request id, when, the hashed identifier, the golden customer ids affected and the
rows erased per table; nothing that re-identifies the person.

Scope, carefully (identity can over-merge; a stranger must never be erased for it):

* the records *carrying* the requested identifier are always erased;
* the golden customer those records belong to is erased whole (all their source records,
  events, invoices, tickets, responses, marts rows) only when it is unambiguous: the
  records carrying the identifier all belong to ONE customer. A shared inbox or phone
  (several customers carry it; `identity.shared_values` lists it) erases only the records
  carrying it, and the log says `ambiguous` with how many customers were left: the DPO
  then files a request by another identifier or `cdp forget --customer`;
* a customer's *other* emails and phones are used to find their rows and suppressed,
  except values identity judged shared (a family phone would otherwise suppress the
  family).

Deleting rows does not remove their bytes from a DuckDB file (deleted rows and freed
blocks stay until rewritten): the caller rewrites the file afterwards
(`privacy.storage.rewrite_database`). Names are never used as a key (two people share
names); they go with the rows that carry the person's ids, emails or phones.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

import duckdb

from ingestion.contract import RAW_TABLES
from ingestion.suppression import (
    IDENTIFIER_COLUMNS,
    PHONE_SUFFIX_DIGITS,
    SUPPRESSION_SCHEMA,
    SUPPRESSION_TABLE,
    IdentifierColumn,
    ensure_suppression_table,
    hash_sql,
    keyed_hash,
)
from warehouse_engine.catalog import table_exists

ERASURE_LOG = f"{SUPPRESSION_SCHEMA}.erasure_log"
# Which loaded file each erased raw row came from (counts, no values): a file's rows stay
# accounted for as landed = raw + rejected + suppressed + erased while its load is the
# current one, and stop counting as erased once the file is loaded again (its rows about
# the person are then suppressed at load instead: counting both would count them twice).
ERASED_RAW_ROWS = f"{SUPPRESSION_SCHEMA}.erased_raw_rows"
REQUESTS_TABLE = "raw.privacy_requests"
# Ids that hang off a source row: erasing the row erases the rows these ids name elsewhere
# (an invoice's lines in the marts, a web event's session, a contact's campaign events).
# Not a web event's user id: the person's own are known from their identity records, and
# any other one on a browser the person used is someone else who logged in on it (a
# family computer); following it would erase that person's account, billing included.
DEPENDENT_IDS: dict[str, tuple[str, ...]] = {
    "email_contacts": ("contact_id",),
    "email_events": ("event_id", "contact_id"),
    "billing_customers": ("customer_id", "user_id"),
    "billing_invoices": ("invoice_id", "subscription_id", "customer_id"),
    "billing_subscriptions": ("subscription_id", "customer_id"),
    "web_events": ("message_id", "anonymous_id"),
    "support_tickets": ("ticket_id",),
    "survey_responses": ("response_id",),
}
# Each raw table's source system, as identity names it (`<system>:<record id>` lineage).
TABLE_SYSTEMS: dict[str, str] = {
    "email_contacts": "email",
    "email_events": "email",
    "billing_customers": "billing",
    "billing_invoices": "billing",
    "billing_subscriptions": "billing",
    "web_events": "web",
    "support_tickets": "support",
    "survey_responses": "survey",
}
# The id column an identity record's id is, per source system (a web identity is keyed
# by its anonymous id, or by its user id when it was only seen with one).
RECORD_ID_COLUMNS: dict[str, tuple[str, ...]] = {
    "email": ("contact_id",),
    "billing": ("customer_id",),
    "web": ("anonymous_id", "user_id"),
    "support": ("ticket_id",),
    "survey": ("response_id",),
}
# The kind of an identity record's own id (`_Needles.add_record`), beside its column's.
IDENTITY_RECORD = "<identity record>"
# The user id is the product's account id: billing and the web tracker both carry it.
USER_ID_KINDS = frozenset({("billing", "user_id"), ("web", "user_id")})
# Columns that hold one kind of id, under the same name in every layer. Sources number
# their records independently, so a plain number is only the person's in a column of its
# own kind: a helpdesk's ticket 4521 is not the survey tool's response 4521.
ID_COLUMNS = frozenset(
    {c for columns in DEPENDENT_IDS.values() for c in columns}
    | {c for columns in RECORD_ID_COLUMNS.values() for c in columns}
    | {"user_id", "request_id", "survey_id", "campaign_id", "session_id"}
)
_ID_BOUNDARY = "[^A-Za-z0-9_-]"
# An all-digit id (a helpdesk's ticket 4521) is also a token of phone numbers, street
# numbers, postcodes and amounts ("555 4521", "4521 Oak St", "45.21"): it matches only
# where a structured value holds it whole, between the joined columns' separator (chr(1)),
# quotes, ':' (a lineage value such as `support:4521`), ',' ';' '|' '=' or brackets.
_STRUCTURED_BOUNDARY = '[\\x01":,;|=\\[\\]{}]'
# A plain number whose kind is known: the same, but after ':' only as a JSON value
# (`"ticket_id":4521`), not as another system's lineage value (`survey:4521`); its own
# system's lineage value is a needle of its own (`support:4521`).
_TYPED_PREFIX = '(^|[\\x01",;|=\\[\\]{}]|": ?)'
# Shorter "ids" (a user id "42") would match unrelated text; no source issues such ids.
MIN_ID_CHARS = 4


@dataclass(frozen=True)
class ErasureRequest:
    request_id: str
    email: str | None
    phone: str | None
    received_at: datetime | None


@dataclass
class ErasureOutcome:
    """What one request erased; the log row, without any personal value."""

    request_id: str
    identifier_kind: str
    identifier_hash: str | None
    customer_ids: list[str]
    rows_per_table: dict[str, int] = field(default_factory=dict)
    ambiguous: bool = False
    customers_left: int = 0
    note: str = ""
    # (raw table, dt, source file, load time) -> rows erased from that load of the file
    raw_rows_by_load: Counter = field(default_factory=Counter)

    @property
    def rows_erased(self) -> int:
        return sum(self.rows_per_table.values())


@dataclass
class _Needles:
    """The values that find a person's rows: exact ids, emails and phone suffixes."""

    ids: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)  # last nine digits
    # Phone numbers as delivered and in E.164: what files outside the warehouse may show.
    texts: set[str] = field(default_factory=set)
    # An all-digit id -> the (source system, id column) it was found as, and
    # (system, IDENTITY_RECORD) when it is one of the person's identity records. Such an
    # id only matches in columns of its kind and in its own system's rows
    # (`_typed_conditions`); one found nowhere typed matches as any id does.
    kinds: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.ids or self.emails or self.phones)

    def absorb(self, other: _Needles) -> None:
        """Add every value of `other` to these."""
        self.ids |= other.ids
        self.emails |= other.emails
        self.phones |= other.phones
        self.texts |= other.texts
        self.add_kinds(other.kinds)

    def add_id(self, value: str, system: str | None, column: str) -> None:
        """An id found as `column` of a `system` row: a plain number is typed by it, and a
        user id brings the web visitor id of its events without a browser (`user:4521`)."""
        self.ids.add(value)
        if system and value.isdigit():
            self.kinds.setdefault(value, set()).add((system, column))
            if column == "user_id":
                self.ids.add(f"user:{value}")

    def add_record(
        self, system: str, record_id: str, columns: tuple[str, ...] | None = None
    ) -> None:
        """The id of one of the person's identity records, typed by its system's id
        column(s) (or `columns`: a web record is a browser's anonymous id, or a user id).
        A plain number also brings its lineage value (`support:4521`) and may be matched
        as that system's `source_record_id`; a number merely seen in a row (a user id)
        may not: `web:4521` could be a stranger's browser numbered 4521."""
        for column in columns or RECORD_ID_COLUMNS.get(system, ("source_record_id",)):
            self.add_id(record_id, system, column)
        if record_id.isdigit():
            self.kinds[record_id].add((system, IDENTITY_RECORD))
            self.ids.add(f"{system}:{record_id}")

    def add_kinds(self, kinds: dict[str, set[tuple[str, str]]]) -> None:
        for value, found_as in kinds.items():
            self.kinds.setdefault(value, set()).update(found_as)

    def with_ids(self, ids: set[str]) -> _Needles:
        """Just `ids`, with the kinds known for them."""
        return _Needles(ids=set(ids), kinds={i: set(self.kinds[i]) for i in ids if i in self.kinds})

    def file_values(self) -> set[str]:
        """What a file written by the pipeline must not contain after the erasure."""
        return (
            {i for i in self.ids if len(i) >= MIN_ID_CHARS}
            | self.emails
            | {t for t in self.texts if len(t) >= MIN_ID_CHARS}
        )


def ensure_privacy_tables(con: duckdb.DuckDBPyConnection) -> None:
    ensure_suppression_table(con)
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {ERASURE_LOG} ("
        "request_id VARCHAR NOT NULL, erased_at TIMESTAMP NOT NULL, "
        "identifier_kind VARCHAR NOT NULL, identifier_hash VARCHAR, "
        "customer_ids VARCHAR[] NOT NULL, rows_erased BIGINT NOT NULL, "
        "rows_per_table JSON NOT NULL, ambiguous BOOLEAN NOT NULL, "
        "customers_left BIGINT NOT NULL, note VARCHAR)"
    )
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {ERASED_RAW_ROWS} ("
        "request_id VARCHAR NOT NULL, source_table VARCHAR NOT NULL, dt DATE NOT NULL, "
        "source_file VARCHAR NOT NULL, loaded_at TIMESTAMP NOT NULL, rows_erased BIGINT NOT NULL)"
    )


def pending_requests(con: duckdb.DuckDBPyConnection) -> list[ErasureRequest]:
    """Erase requests in raw not yet in the erasure log, oldest first (one per id)."""
    if not table_exists(con, REQUESTS_TABLE):
        return []
    ensure_privacy_tables(con)
    rows = con.execute(
        f"SELECT request_id, any_value(email), any_value(phone), min(received_at) "
        f"FROM {REQUESTS_TABLE} WHERE request_type = 'erase' "
        f"AND request_id NOT IN (SELECT request_id FROM {ERASURE_LOG}) "
        "GROUP BY request_id ORDER BY min(received_at), request_id"
    ).fetchall()
    return [ErasureRequest(*row) for row in rows]


def purge_processed_requests(con: duckdb.DuckDBPyConnection) -> int:
    """Delete re-delivered rows of requests already carried out (they carry the identifier;
    the log keeps their id). Returns how many rows went."""
    if not table_exists(con, REQUESTS_TABLE) or not table_exists(con, ERASURE_LOG):
        return 0
    (deleted,) = con.execute(
        f"DELETE FROM {REQUESTS_TABLE} WHERE request_id IN (SELECT request_id FROM {ERASURE_LOG})"
    ).fetchone()
    return int(deleted)


def erase_pending_requests(
    con: duckdb.DuckDBPyConnection, salt: str, now: datetime | None = None
) -> tuple[list[ErasureOutcome], _Needles]:
    """Carry out every pending request in one transaction; returns the log rows written and
    every value that identified the erased rows (for scrubbing files; never to be logged)."""
    erased_at = (now or datetime.now(UTC)).replace(tzinfo=None)
    requests = pending_requests(con)
    outcomes: list[ErasureOutcome] = []
    everything = _Needles()
    if not requests:
        return outcomes, everything
    con.execute("BEGIN TRANSACTION")
    try:
        # Read once: the erasure deletes and updates rows, and creates temp tables only.
        columns = _text_columns(con)
        scope = _candidate_rows(con, columns, salt, requests)
        for request in requests:
            outcome, needles = _erase_one(con, columns, salt, request, erased_at, scope)
            outcomes.append(outcome)
            everything.absorb(needles)
        if scope is not None:
            scope.drop(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return outcomes, everything


# ------------------------------------------------------------------ candidate rows

_ROWID = "_cdp_rowid"


@dataclass
class _Scope:
    """The rows an erasure may touch, per table, copied once before the first request.

    Scanning every text column of every table with the requests' values is the cost of an
    erasure, and it is the same for one value or for every value of a day's requests. So
    every table is scanned once with all of them (`_candidate_rows`), and each request then
    reads and matches only those candidate rows; a table without one is skipped. Each
    request still sees what the requests before it left, as if it ran alone."""

    # (schema, table) -> temp table with the candidate rows and their rowid in the table
    candidates: dict[tuple[str, str], str] = field(default_factory=dict)

    def relation(self, schema: str, table: str) -> str | None:
        return self.candidates.get((schema, table))

    def forget_deleted(
        self, con: duckdb.DuckDBPyConnection, tables: list[tuple[str, ...]] | None = None
    ) -> None:
        """Drop candidate rows whose row a statement outside the scope deleted."""
        for key in tables if tables is not None else list(self.candidates):
            candidate = self.candidates.get(key)  # type: ignore[arg-type]
            if candidate is not None:
                schema, table = key
                con.execute(
                    f'DELETE FROM {candidate} WHERE {_ROWID} NOT IN (SELECT rowid FROM "{schema}"."{table}")'
                )

    def drop(self, con: duckdb.DuckDBPyConnection) -> None:
        for candidate in self.candidates.values():
            con.execute(f"DROP TABLE IF EXISTS {candidate}")
        self.candidates.clear()


def _candidate_rows(
    con: duckdb.DuckDBPyConnection,
    text_columns: TextColumns,
    salt: str,
    requests: list[ErasureRequest],
) -> _Scope | None:
    """Every row any of `requests` could erase or scrub (see `_Scope`).

    The values come from resolving each request before anything is deleted, which finds at
    least what it finds after an earlier request's deletions; the ids hanging off the raw
    rows are followed for all of them at once. Customers left without records (orphans)
    are not known yet: they are erased from every table, outside the scope."""
    scope = _Scope()
    union = _Needles()
    for request in requests:
        found = _resolve(con, salt, request)
        union.absorb(found.needles)
        union.absorb(found.scrub)
    if not union:
        return scope
    union.absorb(_dependent_ids(con, text_columns, union))
    for number, ((schema, table), columns) in enumerate(text_columns.items()):
        condition = _row_condition(columns, union)
        if not condition:
            continue
        candidate = f"_cdp_erasure_candidates_{number}"
        (copied,) = con.execute(  # CREATE TABLE AS returns the rows it wrote
            f"CREATE OR REPLACE TEMP TABLE {candidate} AS "
            f'SELECT rowid AS {_ROWID}, * FROM "{schema}"."{table}" WHERE {condition}'
        ).fetchone()
        if copied:
            scope.candidates[(schema, table)] = candidate
        else:
            con.execute(f"DROP TABLE {candidate}")
    return scope


# ------------------------------------------------------------------------ resolution


def _phone_suffix(value: str | None) -> str | None:
    digits = re.sub(r"\D", "", value or "")
    return digits[-PHONE_SUFFIX_DIGITS:] if len(digits) >= PHONE_SUFFIX_DIGITS else None


def _carrying_records(
    con: duckdb.DuckDBPyConnection, email: str | None, phone_suffix: str | None
) -> list[tuple[str, str, str | None]]:
    """(source_system, source_record_id, customer_id) of identity records with the value."""
    if not table_exists(con, "identity.identity_records"):
        return []
    conditions, params = [], []
    if email:
        conditions.append("lower(trim(email)) = ? OR email_key = ?")
        params += [email, email]
    if phone_suffix:
        conditions.append(
            f"right(regexp_replace(coalesce(phone_e164, phone_display, ''), '[^0-9]', '', 'g'), "
            f"{PHONE_SUFFIX_DIGITS}) = ?"
        )
        params.append(phone_suffix)
    if not conditions:
        return []
    return con.execute(
        "SELECT DISTINCT source_system, source_record_id, customer_id "
        f"FROM identity.identity_records WHERE {' OR '.join(f'({c})' for c in conditions)}",
        params,
    ).fetchall()


def _shared_value_hashes(con: duckdb.DuckDBPyConnection) -> set[str]:
    if not table_exists(con, "identity.shared_values"):
        return set()
    return {h for (h,) in con.execute("SELECT value_hash FROM identity.shared_values").fetchall()}


def _customer_records(
    con: duckdb.DuckDBPyConnection, customer_ids: list[str]
) -> list[tuple[str, str, str | None]]:
    if not customer_ids:
        return []
    return con.execute(
        "SELECT DISTINCT source_system, source_record_id, customer_id "
        "FROM identity.identity_records WHERE list_contains(?, customer_id)",
        [customer_ids],
    ).fetchall()


def _record_values(
    con: duckdb.DuckDBPyConnection, records: list[tuple[str, str, str | None]], shared: set[str]
) -> _Needles:
    """Ids, emails and phones of identity records, leaving out values judged shared."""
    needles = _Needles()
    if not records:
        return needles
    keys = [f"{system}:{record_id}" for system, record_id, _ in records]
    rows = con.execute(
        "SELECT source_system, source_record_id, user_id, lower(trim(email)), email_key, "
        "phone_display, phone_e164, md5(email_key), md5(phone_e164), md5(user_id) "
        "FROM identity.identity_records "
        "WHERE list_contains(?, source_system || ':' || source_record_id)",
        [keys],
    ).fetchall()
    for system, record_id, user_id, email, email_key, phone, e164, h_email, h_phone, h_user in rows:
        # a web identity is keyed by its browser's anonymous id, or by its user id when it
        # was seen only with one: then the record's user id is its own id
        web = ("anonymous_id", "user_id") if user_id == record_id else ("anonymous_id",)
        needles.add_record(system, record_id, web if system == "web" else None)
        if user_id and h_user not in shared:
            for user_system, column in sorted(USER_ID_KINDS):
                needles.add_id(user_id, user_system, column)
        if h_email not in shared:
            needles.emails |= {v for v in (email, email_key) if v}
        if h_phone not in shared:
            needles.phones |= {s for s in (_phone_suffix(phone), _phone_suffix(e164)) if s}
            needles.texts |= {v.strip() for v in (phone, e164) if v and v.strip()}
    for _, _, customer_id in records:
        if customer_id:
            needles.ids.add(customer_id)
    return needles


@dataclass
class _Resolution:
    """Who a request is about, read from identity before anything is deleted."""

    email: str | None
    phone: str | None
    kind: str
    identifier_hash: str | None
    carrying: list[tuple[str, str, str | None]]
    customers: list[str]
    erased_customers: list[str]
    needles: _Needles
    scrub: _Needles
    note: str

    @property
    def ambiguous(self) -> bool:
        return len(self.customers) > 1


def _resolve(con: duckdb.DuckDBPyConnection, salt: str, request: ErasureRequest) -> _Resolution:
    """The request's identifier, the records carrying it, the customers they belong to and
    the values that find the person's rows (reads identity only; changes nothing)."""
    email = (request.email or "").strip().lower() or None
    phone = _phone_suffix(request.phone)
    kind = "email" if email else ("phone" if phone else "none")
    identifier_hash = (
        keyed_hash(con, salt, "email", email)
        if email
        else (keyed_hash(con, salt, "phone", request.phone) if phone else None)
    )
    if not email and not phone:
        note = "the request names no usable email or phone; nothing was erased"
        return _Resolution(None, None, kind, None, [], [], [], _Needles(), _Needles(), note)

    carrying = _carrying_records(con, email, phone)
    customers = sorted({c for _, _, c in carrying if c})
    needles = _Needles()
    if email:
        needles.emails.add(email)
    if phone:
        needles.phones.add(phone)
        needles.texts.add(request.phone.strip())
    scrub = _Needles()
    if len(customers) > 1:
        # Only the records carrying the value; their other values may be a stranger's, and
        # the strangers' own rows elsewhere (their golden customer, their marts rows) only
        # lose the value itself.
        scrub, needles = needles, _Needles(texts=set(needles.texts))
        # A web identity keyed by a user id names the account, not the record: leave it to
        # the email in the events' traits, or a stranger's billing account would follow.
        user_ids = _user_ids(con, carrying)
        for system, record_id, _ in carrying:
            if record_id not in user_ids:
                needles.add_record(
                    system, record_id, ("anonymous_id",) if system == "web" else None
                )
        erased_customers: list[str] = []
        note = (
            f"the {kind} is shared by {len(customers)} customers: only the "
            f"{len(carrying)} record(s) carrying it were erased; file a request by another "
            "identifier (or cdp forget --customer) to erase the rest of the right person"
        )
    else:
        erased_customers = customers
        shared = _shared_value_hashes(con)
        values = _record_values(con, _customer_records(con, customers) or carrying, shared)
        needles.absorb(values)
        note = "" if customers else f"no customer carries the {kind}; raw rows matched directly"
    return _Resolution(
        email,
        phone,
        kind,
        identifier_hash,
        carrying,
        customers,
        erased_customers,
        needles,
        scrub,
        note,
    )


def _erase_one(
    con: duckdb.DuckDBPyConnection,
    text_columns: TextColumns,
    salt: str,
    request: ErasureRequest,
    erased_at: datetime,
    scope: _Scope | None = None,
) -> tuple[ErasureOutcome, _Needles]:
    found = _resolve(con, salt, request)
    if found.kind == "none":
        outcome = ErasureOutcome(request.request_id, "none", None, [], note=found.note)
        _delete_request_rows(con, request.request_id, outcome)
        _write_log(con, outcome, erased_at)
        return outcome, _Needles()
    email, kind, customers = found.email, found.kind, found.customers
    needles, scrub, ambiguous = found.needles, found.scrub, found.ambiguous
    erased_customers, note = found.erased_customers, found.note

    # Rows of the raw tables hang other ids off them (invoices, events, anonymous ids).
    raw_needles = needles.with_ids(needles.ids)
    raw_needles.emails, raw_needles.phones = (
        needles.emails | scrub.emails,
        needles.phones | scrub.phones,
    )
    needles.absorb(
        _dependent_ids(con, text_columns, raw_needles, primary_only=ambiguous, scope=scope)
    )
    raw_needles.ids, raw_needles.kinds = needles.ids, needles.kinds
    _suppress(
        con,
        text_columns,
        salt,
        request.request_id,
        raw_needles,
        email,
        request.phone,
        erased_at,
        ambiguous,
        scope,
    )
    outcome = ErasureOutcome(
        request.request_id,
        kind,
        found.identifier_hash,
        erased_customers,
        ambiguous=ambiguous,
        customers_left=len(customers) if ambiguous else 0,
        note=note,
    )
    touched = _customers_of_records(con, text_columns, needles, scrub, scope) | set(customers)
    outcome.rows_per_table = _delete_everywhere(
        con, text_columns, needles, scrub, scope, by_load=outcome.raw_rows_by_load
    )
    # A customer left without records (every one of them carried the person's values) was
    # the person's: it goes whole, its golden id with it.
    orphans = _customers_without_records(con, sorted(touched))
    orphans = [c for c in orphans if c not in erased_customers]
    if orphans:
        # Their ids were not known when the candidate rows were chosen: every table.
        orphan_rows = _delete_everywhere(
            con,
            text_columns,
            _Needles(ids=set(orphans)),
            _Needles(),
            scope=None,
            by_load=outcome.raw_rows_by_load,
        )
        if scope is not None:
            scope.forget_deleted(con)
        for table, n in orphan_rows.items():
            outcome.rows_per_table[table] = outcome.rows_per_table.get(table, 0) + n
        outcome.customer_ids = sorted(set(erased_customers) | set(orphans))
        if ambiguous:
            outcome.customers_left = len(set(customers) - set(orphans))
        needles.ids |= set(orphans)
    needles.emails |= scrub.emails
    needles.phones |= scrub.phones
    _delete_request_rows(con, request.request_id, outcome)
    if scope is not None:
        scope.forget_deleted(con, [tuple(REQUESTS_TABLE.split("."))])
    _write_log(con, outcome, erased_at)
    return outcome, needles


# ---------------------------------------------------------------------- the deletion


def _regex_alternatives(values: set[str]) -> str:
    return "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))


def _match_condition(
    column: str, column_type: str, needles: _Needles, exact_ids: bool = False
) -> str | None:
    """SQL true when a column's value carries one of the needles (`exact_ids`: an id only
    when it is the whole value, not inside a lineage value such as `billing:cus_1`)."""
    text = f"CAST({column} AS VARCHAR)"
    parts = []
    ids = {i for i in needles.ids if len(i) >= MIN_ID_CHARS}
    typed = {i for i in ids if i in needles.kinds and _fits(column, needles.kinds[i])}
    ids -= set(needles.kinds)
    if exact_ids and (ids or typed):
        parts.append(f"{text} IN ({', '.join(_sql_literal(i) for i in sorted(ids | typed))})")
    elif ids or typed:
        patterns = (_id_alternatives(ids) if ids else []) + (
            [_typed_pattern(typed)] if typed else []
        )
        parts.append(f"regexp_matches({text}, '{'|'.join(patterns)}')")
    if needles.emails:
        parts.append(f"regexp_matches(lower({text}), '{_sql_regex(needles.emails)}')")
    if needles.phones:
        phones = ", ".join(f"'{p}'" for p in sorted(needles.phones))
        if "phone" in column.lower():
            parts.append(
                f"right(regexp_replace({text}, '[^0-9]', '', 'g'), {PHONE_SUFFIX_DIGITS}) "
                f"IN ({phones})"
            )
        elif column_type == "JSON" or column.strip('"') in ("raw_record", "traits", "record"):
            parts.append(
                f"list_has_any(list_transform(regexp_extract_all({text}, "
                "'\\+?[0-9][0-9 ().\\-/]{7,}[0-9]'), lambda p: "
                f"right(regexp_replace(p, '[^0-9]', '', 'g'), {PHONE_SUFFIX_DIGITS})), "
                f"[{phones}])"
            )
    if not parts:
        return None
    return f"coalesce({' OR '.join(parts)}, false)"


def _fits(column: str, kinds: set[tuple[str, str]]) -> bool:
    """Whether a plain-number id found as `kinds` may be the value of `column`: any column
    but one holding another kind of id (`_column_kinds`). (`source_record_id` is any
    source's record: beside a `source_system` it is typed by it, see `_typed_conditions`.)"""
    held = _column_kinds(column)
    return held is None or bool(held & {c for _, c in kinds})


@cache  # asked for every column of every table, for each group of ids
def _column_kinds(column: str) -> frozenset[str] | None:
    """The kinds of id a column holds (None: any text): its name, or the end of its name
    (`billing_customer_id` holds a billing customer id), when that is one of `ID_COLUMNS`;
    a web visitor id is a browser's anonymous id (or `user:<user id>`, a needle of its
    own), the scoring state's web key a web record's id or a user id."""
    name = column.strip('"')
    if name in ID_COLUMNS:
        return frozenset({name})
    if name == "visitor_id":
        return frozenset({"anonymous_id"})
    if name == "web_key":
        return frozenset({"anonymous_id", "user_id"})
    return next((frozenset({c}) for c in sorted(ID_COLUMNS) if name.endswith(f"_{c}")), None)


def _typed_pattern(ids: set[str]) -> str:
    """A regular expression (for a SQL literal) finding plain-number ids of known kind."""
    return f"{_TYPED_PREFIX}({_sql_regex(ids)})({_STRUCTURED_BOUNDARY}|$)"


def _typed_conditions(
    columns: list[tuple[str, str]], needles: _Needles, exact_ids: bool = False
) -> list[str]:
    """SQL conditions finding the plain-number ids of known kind (`_Needles.kinds`) in a
    row: only in columns that may hold their kind (`_fits`), as `source_record_id` only
    beside their own `source_system` and when they are the ids of the person's identity
    records (not a billing invoice's number as a billing customer's), and in a quarantined
    row (`source_table`) only when it came from a table of their own system (or does not
    say which)."""
    kinds = {i: k for i, k in needles.kinds.items() if i in needles.ids and len(i) >= MIN_ID_CHARS}
    if not kinds:
        return []
    names = {name.strip('"') for name, _ in columns}
    by_system: dict[str, set[str]] = {}
    for value, found_as in kinds.items():
        for system, _ in found_as:
            by_system.setdefault(system, set()).add(value)
    parts = []
    per_table = "source_table" in names
    for system, ids in sorted(by_system.items()) if per_table else [(None, set(kinds))]:
        by_columns: dict[frozenset[str], list[str]] = {}
        for name, _ in columns:
            if name.strip('"') == "source_record_id" and "source_system" in names:
                continue
            fitting = frozenset(i for i in ids if _fits(name, kinds[i]))
            if fitting:
                by_columns.setdefault(fitting, []).append(name)
        for fitting, fitting_columns in by_columns.items():
            if exact_ids:
                listed = ", ".join(_sql_literal(i) for i in sorted(fitting))
                found = " OR ".join(f"CAST({c} AS VARCHAR) IN ({listed})" for c in fitting_columns)
            else:
                text = ", ".join(f"CAST({c} AS VARCHAR)" for c in fitting_columns)
                found = (
                    f"regexp_matches(concat_ws(chr(1), {text}), '{_typed_pattern(set(fitting))}')"
                )
            if system is not None:
                tables = ", ".join(
                    _sql_literal(t) for t, s in sorted(TABLE_SYSTEMS.items()) if s == system
                )
                found = f'(coalesce("source_table" IN ({tables}), true) AND ({found}))'
            parts.append(found)
    if {"source_record_id", "source_system"} <= names:
        for system, ids in sorted(by_system.items()):
            # the person's identity records only (not a number seen in a row of the system)
            ids = {i for i in ids if (system, IDENTITY_RECORD) in kinds[i]}
            if not ids:
                continue
            listed = ", ".join(_sql_literal(i) for i in sorted(ids))
            parts.append(
                f'("source_system" = {_sql_literal(system)} '
                f'AND CAST("source_record_id" AS VARCHAR) IN ({listed}))'
            )
    return parts


def _id_alternatives(ids: set[str]) -> list[str]:
    """Regular expressions (for a SQL literal) finding the ids as whole tokens of a text:
    any id between `_ID_BOUNDARY` characters, an all-digit one only between
    `_STRUCTURED_BOUNDARY` ones."""
    numeric = {i for i in ids if i.isdigit()}
    patterns = []
    if ids - numeric:
        patterns.append(f"(^|{_ID_BOUNDARY})({_sql_regex(ids - numeric)})({_ID_BOUNDARY}|$)")
    if numeric:
        patterns.append(
            f"(^|{_STRUCTURED_BOUNDARY})({_sql_regex(numeric)})({_STRUCTURED_BOUNDARY}|$)"
        )
    return patterns


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_regex(values: set[str]) -> str:
    return _regex_alternatives(values).replace("'", "''")


def _email_regex(emails: set[str]) -> str:
    """The lower-case emails as a pattern for `(?i:...)`, matching every text whose DuckDB
    `lower()` holds one: RE2's case folding agrees with `lower()` on every letter but 'İ'
    (lower-cased to 'i', not folded to it), which is added to each 'i'. (Escaping leaves
    letters as they are, so no 'i' is part of an escape.)"""
    return _sql_regex(emails).replace("i", "[iİ]")


def _group_columns(con, rows) -> dict[tuple[str, str], list[tuple[str, str]]]:
    base = {
        (s, t)
        for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE database_name = current_database() AND NOT internal AND NOT temporary"
        ).fetchall()
    }
    grouped: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, data_type in rows:
        if (schema, table) not in base:
            continue
        if data_type in ("VARCHAR", "JSON") or data_type.startswith("VARCHAR"):
            grouped.setdefault((schema, table), []).append((f'"{column}"', data_type))
    return grouped


# (schema, table) -> its text columns, (quoted name, type): what an erasure searches.
TextColumns = dict[tuple[str, str], list[tuple[str, str]]]


def _text_columns(con: duckdb.DuckDBPyConnection) -> TextColumns:
    rows = con.execute(
        "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND NOT internal "
        "AND schema_name NOT IN (?, 'information_schema', 'pg_catalog') "
        "ORDER BY schema_name, table_name, column_index",
        [SUPPRESSION_SCHEMA],
    ).fetchall()
    return _group_columns(con, rows)


def _row_condition(
    columns: list[tuple[str, str]], needles: _Needles, exact_ids: bool = False
) -> str | None:
    """SQL true when any of a row's text `columns` carries a needle (`_match_condition` of
    each column, OR-ed).

    Ids and emails are matched by one regular expression once per row, against its text
    columns joined by a control character (which the id boundary matches and no needle
    holds), rather than once per column: a match in the joined text is a match in one
    column, and DuckDB compiles each expression's pattern (~0.3 ms for a day's ids) per
    column and statement, the bulk of an erasure's cost at small scale. Emails match case-
    insensitively by RE2's `(?i:...)`, which saves lower-casing every row's text."""
    if not columns:
        return None
    # plain-number ids of known kind are looked for apart (`_typed_conditions`)
    ids = {i for i in needles.ids if len(i) >= MIN_ID_CHARS} - set(needles.kinds)
    joined = bool(needles.emails) or (bool(ids) and not exact_ids)
    parts = []
    if joined:
        text = (
            "concat_ws(chr(1), "
            + ", ".join(f"CAST({name} AS VARCHAR)" for name, _ in columns)
            + ")"
        )
        # One expression, so the joined text is built and searched once: ids as whole
        # tokens in their case, emails (lower-case needles) in any letter case.
        alternatives = []
        if ids and not exact_ids:
            alternatives += _id_alternatives(ids)
        if needles.emails:
            alternatives.append(f"(?i:{_email_regex(needles.emails)})")
        parts.append(f"regexp_matches({text}, '{'|'.join(alternatives)}')")
    rest = _Needles(ids=ids if exact_ids else set(), phones=needles.phones)
    parts += [c for name, kind in columns if (c := _match_condition(name, kind, rest, exact_ids))]
    parts += _typed_conditions(columns, needles, exact_ids)
    if not parts:
        return None
    return f"coalesce({' OR '.join(parts)}, false)"


def _customers_of_records(
    con: duckdb.DuckDBPyConnection,
    text_columns: TextColumns,
    needles: _Needles,
    scrub: _Needles,
    scope: _Scope | None = None,
) -> set[str]:
    """Golden customers owning an identity record the erasure is about to delete."""
    columns = text_columns.get(("identity", "identity_records"))
    if not columns:
        return set()
    condition = _row_condition(columns, needles, exact_ids=bool(scrub))
    if scrub:
        extra = _row_condition(columns, scrub)
        condition = " OR ".join(c for c in (condition, extra) if c)
    if not condition:
        return set()
    relation = (
        "identity.identity_records"
        if scope is None
        else scope.relation("identity", "identity_records")
    )
    if relation is None:
        return set()
    return {
        c
        for (c,) in con.execute(
            f"SELECT DISTINCT customer_id FROM {relation} WHERE {condition}"
        ).fetchall()
        if c
    }


def _customers_without_records(con: duckdb.DuckDBPyConnection, customers: list[str]) -> list[str]:
    remaining = {
        c
        for (c,) in con.execute(
            "SELECT DISTINCT customer_id FROM identity.identity_records "
            "WHERE list_contains(?, customer_id)",
            [customers],
        ).fetchall()
    }
    return sorted(set(customers) - remaining)


def _user_ids(
    con: duckdb.DuckDBPyConnection, records: list[tuple[str, str, str | None]]
) -> set[str]:
    keys = [f"{system}:{record_id}" for system, record_id, _ in records]
    return {
        u
        for (u,) in con.execute(
            "SELECT user_id FROM identity.identity_records WHERE user_id IS NOT NULL "
            "AND list_contains(?, source_system || ':' || source_record_id)",
            [keys],
        ).fetchall()
    }


def _dependent_ids(
    con: duckdb.DuckDBPyConnection,
    columns: TextColumns,
    needles: _Needles,
    primary_only: bool = False,
    scope: _Scope | None = None,
) -> _Needles:
    """Ids carried by the raw rows that the needles match (two rounds: a contact's events,
    a billing customer's invoices and their subscriptions, a user's anonymous ids), typed
    by the column they were found in. With `primary_only` (a shared identifier), one round
    of the rows' own ids only: links to other records (a user id, a billing customer) may
    lead to a stranger."""
    found = _Needles()
    seen = set(needles.ids)
    current = needles.with_ids(needles.ids)
    current.emails, current.phones = set(needles.emails), set(needles.phones)
    for _ in range(1 if primary_only else 2):
        new = _Needles()
        for table, id_columns in DEPENDENT_IDS.items():
            if primary_only:
                id_columns = id_columns[:1]
            key = ("raw", table)
            if key not in columns:
                continue
            condition = _row_condition(columns[key], current)
            relation = f"raw.{table}" if scope is None else scope.relation("raw", table)
            if not condition or relation is None:
                continue
            selected = ", ".join(id_columns)
            for row in con.execute(
                f"SELECT DISTINCT {selected} FROM {relation} WHERE {condition}"
            ).fetchall():
                for column, value in zip(id_columns, row, strict=True):
                    if value:
                        new.add_id(value, TABLE_SYSTEMS.get(table), column)
        # kinds of ids already known still count: the same number found as another kind
        found.add_kinds(new.kinds)
        fresh = new.ids - seen
        if not fresh:
            break
        found.ids |= fresh
        seen |= fresh
        # The rows the values so far match gave their ids in this round: the next round
        # needs to search for the new ids only (no emails, no phone scans of raw records).
        current = found.with_ids(fresh)
    return found


def _change_rows(
    con: duckdb.DuckDBPyConnection,
    name: str,
    candidate: str | None,
    condition: str,
    change: str = "DELETE FROM {}",
    by_load: Counter | None = None,
) -> int:
    """Apply `change` (`DELETE FROM {}`, or `UPDATE {} SET col = NULL`) to the rows of table
    `name` matching `condition`: all of them, or (with the table's candidate rows) those
    among the candidates, which are changed the same way first. Returns the rows changed.
    With `by_load` (a raw source table's deletion), counts them per loaded file there."""
    returning = " RETURNING _dt, _source_file, _loaded_at" if by_load is not None else ""

    def changed(where: str, params: list | None = None) -> int:
        cursor = con.execute(f"{change.replace('{}', name, 1)} WHERE {where}{returning}", params)
        return cursor.fetchone()[0] if by_load is None else _count_by_load(cursor, by_load)

    if candidate is None:
        return changed(condition)
    rowids = [
        r
        for (r,) in con.execute(
            f"{change.replace('{}', candidate, 1)} WHERE {condition} RETURNING {_ROWID}"
        ).fetchall()
    ]
    if not rowids:  # most of the day's candidate tables hold nothing of this request
        return 0
    return changed("rowid IN (SELECT unnest(?::BIGINT[]))", [rowids])


def _count_by_load(cursor: duckdb.DuckDBPyConnection, by_load: Counter) -> int:
    """Add a deletion's RETURNING rows (`_dt, _source_file, _loaded_at`) to `by_load`."""
    deleted = Counter(cursor.fetchall())
    by_load.update(deleted)
    return sum(deleted.values())


def _delete_everywhere(
    con: duckdb.DuckDBPyConnection,
    text_columns: TextColumns,
    needles: _Needles,
    scrub: _Needles,
    scope: _Scope | None = None,
    by_load: Counter | None = None,
) -> dict[str, int]:
    """Delete every row carrying a needle; rows carrying a `scrub` value are deleted in raw
    (the source records carrying it) and elsewhere lose just that value (set to NULL, or
    the row deleted where the column may not be NULL). `by_load` gets the raw source
    tables' deleted rows per (table, dt, file, load time)."""
    counts: dict[str, int] = {}
    nullable = {
        (s, t, f'"{c}"'): n
        for s, t, c, n in con.execute(
            "SELECT schema_name, table_name, column_name, is_nullable FROM duckdb_columns() "
            "WHERE database_name = current_database()"
        ).fetchall()
    }
    # Shared identifier: outside raw, only the erased records' own rows go; values that
    # merely mention them (a stranger's `email_source_record`) are scrubbed below.
    conditions = {
        (schema, table): _row_condition(columns, needles, exact_ids=bool(scrub) and schema != "raw")
        for (schema, table), columns in text_columns.items()
    }
    for (schema, table), columns in text_columns.items():
        name = f'"{schema}"."{table}"'
        candidate = None if scope is None else scope.relation(schema, table)
        if scope is not None and candidate is None:
            continue  # no row of this table holds any value of the day's requests

        deleted = 0
        # a raw source table's rows carry the load they came from (ingestion lineage)
        loads = (
            Counter() if by_load is not None and schema == "raw" and table in RAW_TABLES else None
        )
        condition = conditions[(schema, table)]
        if condition:
            deleted = _change_rows(con, name, candidate, condition, by_load=loads)
        if scrub:
            if schema == "raw":
                condition = _row_condition(columns, scrub)
                if condition:
                    deleted += _change_rows(con, name, candidate, condition, by_load=loads)
            else:
                mentioned = needles.with_ids(needles.ids)
                mentioned.absorb(scrub)
                for column, kind in columns:
                    condition = _match_condition(column, kind, mentioned)
                    if not condition:
                        continue
                    if nullable.get((schema, table, column), True):
                        deleted += _change_rows(
                            con, name, candidate, condition, f"UPDATE {{}} SET {column} = NULL"
                        )
                    else:
                        deleted += _change_rows(con, name, candidate, condition)
        if deleted:
            counts[f"{schema}.{table}"] = int(deleted)
        if loads:
            by_load.update({(table, *load): n for load, n in loads.items()})
    return counts


def _delete_request_rows(
    con: duckdb.DuckDBPyConnection, request_id: str, outcome: ErasureOutcome
) -> None:
    """The request itself carries the identifier: only its id stays, in the log."""
    if not table_exists(con, REQUESTS_TABLE):
        return
    (deleted,) = con.execute(
        f"DELETE FROM {REQUESTS_TABLE} WHERE request_id = ?", [request_id]
    ).fetchone()
    if deleted:
        outcome.rows_per_table[REQUESTS_TABLE] = outcome.rows_per_table.get(
            REQUESTS_TABLE, 0
        ) + int(deleted)


def _suppress(
    con: duckdb.DuckDBPyConnection,
    columns: TextColumns,
    salt: str,
    request_id: str,
    needles: _Needles,
    email: str | None,
    phone: str | None,
    at: datetime,
    ambiguous: bool,
    scope: _Scope | None = None,
) -> None:
    """Keyed hashes of the identifiers of the rows about to be erased, and of the request's.

    Record ids (contact, customer, ticket, response, anonymous ids) of every such row; an
    email, phone or user id only when it is one of the person's own `needles`, which leave
    out values judged shared (a shop's order inbox on the person's billing record): the
    suppression list drops every later row carrying a value, so a shared one would drop
    the other people's rows too, and a re-run of an already loaded day would lose them.
    For an ambiguous (shared) request identifier, no email or phone of the records but it."""
    hashes: set[tuple[str, str]] = set()
    if email:
        hashes.add(("email", keyed_hash(con, salt, "email", email)))
    if phone:
        hashes.add(("phone", keyed_hash(con, salt, "phone", phone)))
    for table, identifiers in IDENTIFIER_COLUMNS.items():
        if ("raw", table) not in columns:
            continue
        condition = _row_condition(columns[("raw", table)], needles)
        relation = f"raw.{table}" if scope is None else scope.relation("raw", table)
        if not condition or relation is None:
            continue
        kept = [i for i in identifiers if not (ambiguous and i.kind in ("email", "phone"))]
        if not kept:
            continue
        # Every identifier of the table in one statement (the hash of an empty value is NULL).
        selected = ", ".join(_own_value_hash(salt, i, needles) for i in kept)
        for row in con.execute(
            f"SELECT DISTINCT {selected} FROM {relation} WHERE {condition}"
        ).fetchall():
            hashes |= {(i.kind, h) for i, h in zip(kept, row, strict=True) if h is not None}
    existing = {
        h for (h,) in con.execute(f"SELECT identifier_hash FROM {SUPPRESSION_TABLE}").fetchall()
    }
    rows = [(h, kind, request_id, at) for kind, h in sorted(hashes) if h and h not in existing]
    if rows:
        con.executemany(f"INSERT INTO {SUPPRESSION_TABLE} VALUES (?, ?, ?, ?)", rows)


def _own_value_hash(salt: str, identifier: IdentifierColumn, needles: _Needles) -> str:
    """SQL for the keyed hash of a row's identifier; for an email, phone or user id, NULL
    unless the value is one of `needles` (see `_suppress`)."""
    hashed = hash_sql(salt, identifier.kind, identifier.sql)
    own = {
        "email": _Needles(emails=needles.emails),
        "phone": _Needles(phones=needles.phones),
        "user_id": needles.with_ids(needles.ids),
    }.get(identifier.kind)
    if own is None:
        return hashed
    condition = _match_condition(identifier.sql, "VARCHAR", own, exact_ids=True)
    return f"CASE WHEN {condition} THEN {hashed} END" if condition else "NULL"


def _write_log(con: duckdb.DuckDBPyConnection, outcome: ErasureOutcome, at: datetime) -> None:
    con.execute(
        f"INSERT INTO {ERASURE_LOG} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            outcome.request_id,
            at,
            outcome.identifier_kind,
            outcome.identifier_hash,
            outcome.customer_ids,
            outcome.rows_erased,
            json.dumps(dict(sorted(outcome.rows_per_table.items()))),
            outcome.ambiguous,
            outcome.customers_left,
            outcome.note,
        ],
    )
    if outcome.raw_rows_by_load:
        con.executemany(
            f"INSERT INTO {ERASED_RAW_ROWS} VALUES (?, ?, ?, ?, ?, ?)",
            [
                [outcome.request_id, table, dt, source_file, loaded_at, n]
                for (table, dt, source_file, loaded_at), n in sorted(
                    outcome.raw_rows_by_load.items()
                )
            ],
        )
