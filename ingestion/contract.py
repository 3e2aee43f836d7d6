"""The typed schema of every raw table, exactly as fixed in docs/data-model.md.

This module is the single place the loader, the tests and the orchestration layer
learn what a landing file must contain and what `raw.<table>` looks like. Change the
contract here (and in the docs) first; the loader derives all its SQL from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DuckDBType = Literal["VARCHAR", "TIMESTAMP", "BOOLEAN", "BIGINT", "JSON"]
FileFormat = Literal["csv", "jsonl"]

RAW_SCHEMA = "raw"


@dataclass(frozen=True)
class Column:
    """One contract column.

    `required` means the value may not be empty (the raw column is NOT NULL and a row
    without it is rejected). For CSV tables every contract column must be present in the
    header, required or not: a column that disappears from an export is a schema change
    and fails the partition instead of silently loading NULLs.
    `source` is the field name in the landing file: the CSV header name, or for JSON lines
    a dotted path into the object (e.g. `context.page.url`).
    """

    name: str
    type: DuckDBType
    required: bool = False
    source: str | None = None

    @property
    def source_name(self) -> str:
        return self.source or self.name


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


def _c(name: str, type_: DuckDBType = "VARCHAR", required: bool = False, source: str | None = None):
    return Column(name=name, type=type_, required=required, source=source)


EMAIL_CONTACTS = RawTable(
    name="email_contacts",
    landing_path="email/contacts",
    file_format="csv",
    columns=(
        _c("contact_id", required=True),
        _c("email", required=True),
        _c("first_name"),
        _c("last_name"),
        _c("phone"),
        _c("city"),
        _c("country"),
        _c("subscribed", "BOOLEAN"),
        _c("created_at", "TIMESTAMP", required=True),
        _c("updated_at", "TIMESTAMP", required=True),
    ),
)

EMAIL_EVENTS = RawTable(
    name="email_events",
    landing_path="email/events",
    file_format="csv",
    columns=(
        _c("event_id", required=True),
        _c("contact_id", required=True),
        _c("campaign_id"),
        _c("campaign_name"),
        _c("event_type"),
        _c("occurred_at", "TIMESTAMP", required=True),
        _c("url"),
    ),
)

BILLING_CUSTOMERS = RawTable(
    name="billing_customers",
    landing_path="billing/customers",
    file_format="csv",
    columns=(
        _c("customer_id", required=True),
        _c("user_id"),
        _c("email"),
        _c("name"),
        _c("phone"),
        _c("address_line1"),
        _c("address_city"),
        _c("address_postal_code"),
        _c("address_country"),
        _c("created_at", "TIMESTAMP", required=True),
        _c("updated_at", "TIMESTAMP", required=True),
        _c("deleted", "BOOLEAN"),
    ),
)

BILLING_INVOICES = RawTable(
    name="billing_invoices",
    landing_path="billing/invoices",
    file_format="csv",
    columns=(
        _c("invoice_id", required=True),
        _c("customer_id", required=True),
        _c("subscription_id"),
        _c("status"),
        _c("currency"),
        _c("amount_due_cents", "BIGINT"),
        _c("amount_paid_cents", "BIGINT"),
        _c("amount_refunded_cents", "BIGINT"),
        _c("product"),
        _c("created_at", "TIMESTAMP", required=True),
        _c("updated_at", "TIMESTAMP", required=True),
        _c("paid_at", "TIMESTAMP"),
    ),
)

BILLING_SUBSCRIPTIONS = RawTable(
    name="billing_subscriptions",
    landing_path="billing/subscriptions",
    file_format="csv",
    columns=(
        _c("subscription_id", required=True),
        _c("customer_id", required=True),
        _c("plan"),
        _c("status"),
        _c("mrr_cents", "BIGINT"),
        _c("currency"),
        _c("started_at", "TIMESTAMP", required=True),
        _c("updated_at", "TIMESTAMP", required=True),
        _c("canceled_at", "TIMESTAMP"),
    ),
)

WEB_EVENTS = RawTable(
    name="web_events",
    landing_path="web/events",
    file_format="jsonl",
    columns=(
        _c("message_id", required=True, source="messageId"),
        _c("type", required=True, source="type"),
        _c("anonymous_id", source="anonymousId"),
        _c("user_id", source="userId"),
        _c("event", source="event"),
        _c("name", source="name"),
        _c("properties", "JSON", source="properties"),
        _c("traits", "JSON", source="traits"),
        _c("page_url", source="context.page.url"),
        _c("page_path", source="context.page.path"),
        _c("page_referrer", source="context.page.referrer"),
        _c("page_title", source="context.page.title"),
        _c("campaign_source", source="context.campaign.source"),
        _c("campaign_medium", source="context.campaign.medium"),
        _c("campaign_name", source="context.campaign.name"),
        _c("user_agent", source="context.userAgent"),
        _c("ip", source="context.ip"),
        _c("event_timestamp", "TIMESTAMP", required=True, source="timestamp"),
        _c("received_at", "TIMESTAMP", source="receivedAt"),
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
)


def create_table_sql(table: RawTable) -> str:
    """`CREATE TABLE IF NOT EXISTS raw.<table>` with the contract columns and lineage."""
    columns = [f"{c.name} {c.type}{' NOT NULL' if c.required else ''}" for c in table.columns] + [
        f"{name} {ddl}" for name, ddl in LINEAGE_COLUMNS
    ]
    body = ",\n    ".join(columns)
    return f"CREATE TABLE IF NOT EXISTS {table.qualified_name} (\n    {body}\n)"
