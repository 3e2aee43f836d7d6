"""The typed schema of every raw table, exactly as fixed in docs/data-model.md.

This module is the single place the loader, the tests and the orchestration layer
learn what a landing file must contain and what `raw.<table>` looks like. Change the
contract here (and in the docs) first; the loader derives all its SQL from it, including
the domain rules (allowed values, minimums, value formats) that quarantine a row whose
value parses but cannot be true, so that raw holds only rows the marts may be built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DuckDBType = Literal["VARCHAR", "TIMESTAMP", "BOOLEAN", "BIGINT", "JSON"]
FileFormat = Literal["csv", "jsonl"]
FormatCheckName = Literal["email", "currency"]

RAW_SCHEMA = "raw"


@dataclass(frozen=True)
class FormatCheck:
    """A text format a column's value must match (an RE2 pattern, matched in full).

    `lower_case` means the value is compared and *stored* as lower(trim(value)), so an
    upper-case delivery of a valid value loads in its canonical form; otherwise the value
    is matched after trimming and stored exactly as delivered.
    `expected` completes the reject reason "... has value 'x', which is not <expected>".
    """

    pattern: str
    lower_case: bool
    expected: str


FORMAT_CHECKS: dict[str, FormatCheck] = {
    # Plausible, not RFC 5322: one '@', a non-empty local part, a domain with a dot, no
    # whitespace inside. Stored as delivered; staging trims and lower-cases it.
    "email": FormatCheck(
        pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+",
        lower_case=False,
        expected=(
            "an email address (one '@', a non-empty part before it, a domain with a dot "
            "after it, no spaces inside)"
        ),
    ),
    # The shape of an ISO-4217 code; the contract fixes lower case, upper case is accepted.
    "currency": FormatCheck(
        pattern=r"[a-z]{3}",
        lower_case=True,
        expected="a three-letter ISO-4217 currency code such as 'eur' or 'usd'",
    ),
}


@dataclass(frozen=True)
class Column:
    """One contract column.

    `required` means the value may not be empty (the raw column is NOT NULL and a row
    without it is rejected). For CSV tables every contract column must be present in the
    header, required or not: a column that disappears from an export is a schema change
    and fails the partition instead of silently loading NULLs.
    `source` is the field name in the landing file: the CSV header name, or for JSON lines
    a dotted path into the object (e.g. `context.page.url`).

    Domain rules: a row whose value breaks one goes to `raw.rejects`, like an untypeable row.
    `allowed` is the set of valid values, compared case-insensitively after trimming; the
    raw column stores the lower-case form. `min_value` and `max_value` bound an integer
    (inclusive), and `meaning` names what the number is, for the reject reason. `check` names a
    `FORMAT_CHECKS` entry the text must match.
    """

    name: str
    type: DuckDBType = "VARCHAR"
    required: bool = False
    source: str | None = None
    allowed: tuple[str, ...] | None = None
    min_value: int | None = None
    max_value: int | None = None
    meaning: str | None = None
    check: FormatCheckName | None = None

    def __post_init__(self) -> None:
        text_rule = self.allowed is not None or self.check is not None
        if text_rule and self.type != "VARCHAR":
            raise ValueError(f"{self.name}: allowed values and format checks need VARCHAR")
        for bound in ("min_value", "max_value"):
            if getattr(self, bound) is not None and self.type != "BIGINT":
                raise ValueError(f"{self.name}: {bound} needs BIGINT")
        if self.allowed is not None and self.check is not None:
            raise ValueError(f"{self.name}: give allowed values or a format check, not both")
        if self.allowed is not None and any(v != v.strip().lower() for v in self.allowed):
            raise ValueError(f"{self.name}: allowed values are written trimmed and lower-case")

    @property
    def source_name(self) -> str:
        return self.source or self.name

    @property
    def format_check(self) -> FormatCheck | None:
        return FORMAT_CHECKS[self.check] if self.check else None

    @property
    def stored_lower_case(self) -> bool:
        """True when the raw column holds lower(trim(value)) rather than the value as delivered."""
        return self.allowed is not None or bool(self.format_check and self.format_check.lower_case)


@dataclass(frozen=True)
class RawTable:
    """A landing source table and the `raw.<name>` table it is loaded into."""

    name: str
    landing_path: str
    file_format: FileFormat
    columns: tuple[Column, ...]

    @property
    def qualified_name(self) -> str:
        return f"{RAW_SCHEMA}.{self.name}"

    @property
    def file_suffixes(self) -> tuple[str, ...]:
        return (f".{self.file_format}", f".{self.file_format}.gz")

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")


LINEAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_dt", "DATE NOT NULL"),
    ("_source_file", "VARCHAR NOT NULL"),
    ("_line_number", "BIGINT"),
    ("_loaded_at", "TIMESTAMP NOT NULL"),
)

WEB_EVENT_TYPES: tuple[str, ...] = ("page", "track", "identify")
EMAIL_EVENT_TYPES: tuple[str, ...] = (
    "sent",
    "delivered",
    "open",
    "click",
    "bounce",
    "unsubscribe",
    "spam_complaint",
)
INVOICE_STATUSES: tuple[str, ...] = ("draft", "open", "paid", "void", "uncollectible")
SUBSCRIPTION_STATUSES: tuple[str, ...] = ("trialing", "active", "past_due", "canceled", "unpaid")
TICKET_STATUSES: tuple[str, ...] = ("new", "open", "pending", "solved", "closed")
# Descriptive values of optional ticket columns: the contract lists them, but a value outside
# the list loads as delivered (helpdesks add their own); the raw WARN suite reports it.
TICKET_PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
TICKET_CHANNELS: tuple[str, ...] = ("email", "web", "chat", "phone")
CSAT_RATINGS: tuple[str, ...] = ("good", "bad")
AMOUNT_IN_CENTS = "an amount in cents"
NPS_SCORE = "an NPS score (How likely are you to recommend us?)"


def _cents(name: str) -> Column:
    """An optional amount: a whole number of cents, never negative."""
    return Column(name, "BIGINT", min_value=0, meaning=AMOUNT_IN_CENTS)


EMAIL_CONTACTS = RawTable(
    name="email_contacts",
    landing_path="email/contacts",
    file_format="csv",
    columns=(
        Column("contact_id", required=True),
        # The contact's identity: without a usable address the row means nothing.
        Column("email", required=True, check="email"),
        Column("first_name"),
        Column("last_name"),
        Column("phone"),
        Column("city"),
        Column("country"),
        Column("subscribed", "BOOLEAN"),
        Column("created_at", "TIMESTAMP", required=True),
        Column("updated_at", "TIMESTAMP", required=True),
    ),
)

EMAIL_EVENTS = RawTable(
    name="email_events",
    landing_path="email/events",
    file_format="csv",
    columns=(
        Column("event_id", required=True),
        Column("contact_id", required=True),
        Column("campaign_id"),
        Column("campaign_name"),
        Column("event_type", required=True, allowed=EMAIL_EVENT_TYPES),
        Column("occurred_at", "TIMESTAMP", required=True),
        Column("url"),
    ),
)

BILLING_CUSTOMERS = RawTable(
    name="billing_customers",
    landing_path="billing/customers",
    file_format="csv",
    columns=(
        Column("customer_id", required=True),
        Column("user_id"),
        # Optional and not checked here: rejecting the customer for a bad address would
        # orphan their invoices; the raw WARN quality suite reports the address instead.
        Column("email"),
        Column("name"),
        Column("phone"),
        Column("address_line1"),
        Column("address_city"),
        Column("address_postal_code"),
        Column("address_country"),
        Column("created_at", "TIMESTAMP", required=True),
        Column("updated_at", "TIMESTAMP", required=True),
        Column("deleted", "BOOLEAN"),
    ),
)

BILLING_INVOICES = RawTable(
    name="billing_invoices",
    landing_path="billing/invoices",
    file_format="csv",
    columns=(
        Column("invoice_id", required=True),
        Column("customer_id", required=True),
        Column("subscription_id"),
        Column("status", required=True, allowed=INVOICE_STATUSES),
        Column("currency", required=True, check="currency"),
        _cents("amount_due_cents"),
        _cents("amount_paid_cents"),
        _cents("amount_refunded_cents"),
        Column("product"),
        Column("created_at", "TIMESTAMP", required=True),
        Column("updated_at", "TIMESTAMP", required=True),
        Column("paid_at", "TIMESTAMP"),
    ),
)

BILLING_SUBSCRIPTIONS = RawTable(
    name="billing_subscriptions",
    landing_path="billing/subscriptions",
    file_format="csv",
    columns=(
        Column("subscription_id", required=True),
        Column("customer_id", required=True),
        Column("plan"),
        Column("status", required=True, allowed=SUBSCRIPTION_STATUSES),
        _cents("mrr_cents"),
        Column("currency", required=True, check="currency"),
        Column("started_at", "TIMESTAMP", required=True),
        Column("updated_at", "TIMESTAMP", required=True),
        Column("canceled_at", "TIMESTAMP"),
    ),
)

WEB_EVENTS = RawTable(
    name="web_events",
    landing_path="web/events",
    file_format="jsonl",
    columns=(
        Column("message_id", required=True, source="messageId"),
        Column("type", required=True, allowed=WEB_EVENT_TYPES),
        Column("anonymous_id", source="anonymousId"),
        Column("user_id", source="userId"),
        Column("event", source="event"),
        Column("name", source="name"),
        Column("properties", "JSON", source="properties"),
        Column("traits", "JSON", source="traits"),
        Column("page_url", source="context.page.url"),
        Column("page_path", source="context.page.path"),
        Column("page_referrer", source="context.page.referrer"),
        Column("page_title", source="context.page.title"),
        Column("campaign_source", source="context.campaign.source"),
        Column("campaign_medium", source="context.campaign.medium"),
        Column("campaign_name", source="context.campaign.name"),
        Column("user_agent", source="context.userAgent"),
        Column("ip", source="context.ip"),
        Column("event_timestamp", "TIMESTAMP", required=True, source="timestamp"),
        Column("received_at", "TIMESTAMP", source="receivedAt"),
    ),
)

SUPPORT_TICKETS = RawTable(
    name="support_tickets",
    landing_path="support/tickets",
    file_format="csv",
    columns=(
        Column("ticket_id", required=True),
        # Optional and not checked here, like billing emails: a ticket with a mistyped
        # address is still a ticket; the raw WARN suite reports the address instead.
        Column("requester_email"),
        Column("requester_name"),
        Column("requester_phone"),
        Column("subject"),
        # The ticket's state decides open/solved in every mart: an unknown one is rejected.
        Column("status", required=True, allowed=TICKET_STATUSES),
        # Priority, channel and the CSAT rating are descriptive and optional; helpdesks add
        # values of their own (Zendesk's satisfaction 'offered', a 'social' channel), so an
        # unknown value loads as delivered, staging reads it as unknown and the raw WARN
        # suite reports it, rather than quarantining the whole ticket.
        Column("priority"),
        Column("channel"),
        Column("created_at", "TIMESTAMP", required=True),
        Column("updated_at", "TIMESTAMP", required=True),
        Column("first_responded_at", "TIMESTAMP"),
        Column("solved_at", "TIMESTAMP"),
        Column("satisfaction"),
    ),
)

SURVEY_RESPONSES = RawTable(
    name="survey_responses",
    landing_path="surveys/responses",
    file_format="csv",
    columns=(
        Column("response_id", required=True),
        Column("survey_id", required=True),
        Column("respondent_email"),
        Column("score", "BIGINT", required=True, min_value=0, max_value=10, meaning=NPS_SCORE),
        # Free text, kept byte for byte (commas, quotes and line breaks included).
        Column("comment"),
        Column("submitted_at", "TIMESTAMP", required=True),
    ),
)

PRIVACY_REQUESTS = RawTable(
    name="privacy_requests",
    landing_path="privacy/requests",
    file_format="csv",
    columns=(
        Column("request_id", required=True),
        Column("request_type", required=True, allowed=("erase",)),
        # At least one of the two; a request naming nobody is refused by the erasure step
        # (logged with its request id) rather than here, so it is still accounted for.
        Column("email"),
        Column("phone"),
        Column("received_at", "TIMESTAMP", required=True),
    ),
)

RAW_TABLES: dict[str, RawTable] = {
    table.name: table
    for table in (
        EMAIL_CONTACTS,
        EMAIL_EVENTS,
        BILLING_CUSTOMERS,
        BILLING_INVOICES,
        BILLING_SUBSCRIPTIONS,
        WEB_EVENTS,
        SUPPORT_TICKETS,
        SURVEY_RESPONSES,
        PRIVACY_REQUESTS,
    )
}

REJECTS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("source_table", "VARCHAR NOT NULL"),
    ("dt", "DATE NOT NULL"),
    ("source_file", "VARCHAR NOT NULL"),
    ("line_number", "BIGINT"),
    ("column_name", "VARCHAR"),
    ("raw_record", "VARCHAR"),
    ("reason", "VARCHAR NOT NULL"),
    ("rejected_at", "TIMESTAMP NOT NULL"),
)

LOAD_AUDIT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("source_table", "VARCHAR NOT NULL"),
    ("dt", "DATE NOT NULL"),
    ("source_file", "VARCHAR NOT NULL"),
    ("rows_read", "BIGINT NOT NULL"),
    ("rows_loaded", "BIGINT NOT NULL"),
    ("rows_rejected", "BIGINT NOT NULL"),
    ("loaded_at", "TIMESTAMP NOT NULL"),
    # From the file's bytes; lines_in_file = header + blank + continuation + rows_read.
    # NULL for a skipped entry, whose `note` says why it was not read.
    ("lines_in_file", "BIGINT"),
    ("header_lines", "BIGINT"),
    ("blank_lines", "BIGINT"),
    ("continuation_lines", "BIGINT"),
    ("note", "VARCHAR"),
    # Rows about erased people, dropped at ingestion (ingestion/suppression.py):
    # rows_read = rows_loaded + rows_rejected + rows_suppressed.
    ("rows_suppressed", "BIGINT"),
)


def create_table_sql(table: RawTable) -> str:
    """`CREATE TABLE IF NOT EXISTS raw.<table>` with the contract columns and lineage."""
    columns = [f"{c.name} {c.type}{' NOT NULL' if c.required else ''}" for c in table.columns] + [
        f"{name} {ddl}" for name, ddl in LINEAGE_COLUMNS
    ]
    body = ",\n    ".join(columns)
    return f"CREATE TABLE IF NOT EXISTS {table.qualified_name} (\n    {body}\n)"
