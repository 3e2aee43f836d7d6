"""Suites for the `raw.*` tables, validated per landing day (`_dt` partition) or day range.

Ingestion quarantines rows that break the contract's types or domains into `raw.rejects`
(docs/data-model.md); these suites check what reached raw — contract columns, enum
values, non-negative amounts, plausible timestamps, conflicting re-deliveries (defence in
depth for the rules ingestion enforces, and the only guard for the rest) — and how much
of each delivery day was rejected: a day that is mostly rejects is a broken export, not
a few bad rows, and must not flow downstream. Each table gets ERROR suites (block
downstream) and a WARN suite (reported only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from ingestion.contract import (
    CSAT_RATINGS,
    EMAIL_EVENT_TYPES,
    INVOICE_STATUSES,
    SUBSCRIPTION_STATUSES,
    TICKET_CHANNELS,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
    WEB_EVENT_TYPES,
)
from quality.gx_import import lazy_gx_module
from quality.spec import (
    EARLIEST_PLAUSIBLE_TIMESTAMP,
    FUTURE_TIMESTAMP_DAYS_AFTER_DELIVERY,
    RAW_LINEAGE_COLUMNS,
    SuiteSpec,
)

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

gxe = lazy_gx_module("great_expectations.expectations")

#: pandas dtypes DuckDB hands back for each warehouse type (nullable variants included).
PANDAS_DTYPES_BY_KIND: dict[str, list[str]] = {
    "string": ["object", "str", "string"],
    "integer": ["int64", "Int64"],
    "boolean": ["bool", "boolean"],
    "timestamp": ["datetime64[us]", "datetime64[ns]"],
    "date": ["datetime64[us]", "datetime64[ns]"],
}

EMAIL_REGEX = r"^\s*[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\s*$"
CURRENCY_REGEX = r"^[a-z]{3}$"
COUNTRY_REGEX = r"^\s*[A-Za-z]{2}\s*$"


#: Derived column holding the key of a row whose latest-wins version is ambiguous.
CONFLICT_COLUMN = "_conflicting_key"
#: Derived column naming the first timestamp of a row that is implausible for its delivery.
IMPLAUSIBLE_TIMESTAMP_COLUMN = "_implausible_timestamp"


@dataclass(frozen=True)
class RawTableRules:
    """The contract of one raw table, as data the suite builders read."""

    table: str
    key: str
    columns: dict[str, str]
    required: tuple[str, ...]
    # Column deciding which delivery of a key wins (latest wins); None for event tables,
    # where every delivery of a key must carry the same payload.
    version_column: str | None
    allowed_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    amounts: tuple[str, ...] = ()
    currencies: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    # Columns that may legitimately differ between two deliveries of the same record.
    volatile: tuple[str, ...] = ()
    # Pairs (a, b) where a must be >= b; checked as a warning.
    ordered_pairs: tuple[tuple[str, str], ...] = ()
    # Extra derived columns: name -> SQL expression over the table's columns.
    derived: dict[str, str] = field(default_factory=dict)
    # Integer columns with an inclusive range the contract fixes (checked as an error).
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Optional descriptive columns the contract lists values for but ingestion loads as
    # delivered: values outside the list are reported (a warning), not rejected.
    expected_values: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def suite_prefix(self) -> str:
        return self.table.replace(".", "_")

    @property
    def timestamps(self) -> tuple[str, ...]:
        return tuple(c for c, kind in self.columns.items() if kind == "timestamp")

    @property
    def payload(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.volatile)


RAW_TABLES: tuple[RawTableRules, ...] = (
    RawTableRules(
        table="raw.email_contacts",
        key="contact_id",
        version_column="updated_at",
        columns={
            "contact_id": "string",
            "email": "string",
            "first_name": "string",
            "last_name": "string",
            "phone": "string",
            "city": "string",
            "country": "string",
            "subscribed": "boolean",
            "created_at": "timestamp",
            "updated_at": "timestamp",
        },
        required=("contact_id", "email", "created_at", "updated_at"),
        emails=("email",),
        countries=("country",),
        ordered_pairs=(("updated_at", "created_at"),),
    ),
    RawTableRules(
        table="raw.email_events",
        key="event_id",
        version_column=None,
        columns={
            "event_id": "string",
            "contact_id": "string",
            "campaign_id": "string",
            "campaign_name": "string",
            "event_type": "string",
            "occurred_at": "timestamp",
            "url": "string",
        },
        required=("event_id", "contact_id", "event_type", "occurred_at"),
        allowed_values={"event_type": EMAIL_EVENT_TYPES},
    ),
    RawTableRules(
        table="raw.billing_customers",
        key="customer_id",
        version_column="updated_at",
        columns={
            "customer_id": "string",
            "user_id": "string",
            "email": "string",
            "name": "string",
            "phone": "string",
            "address_line1": "string",
            "address_city": "string",
            "address_postal_code": "string",
            "address_country": "string",
            "created_at": "timestamp",
            "updated_at": "timestamp",
            "deleted": "boolean",
        },
        required=("customer_id", "created_at", "updated_at"),
        emails=("email",),
        countries=("address_country",),
        ordered_pairs=(("updated_at", "created_at"),),
    ),
    RawTableRules(
        table="raw.billing_invoices",
        key="invoice_id",
        version_column="updated_at",
        columns={
            "invoice_id": "string",
            "customer_id": "string",
            "subscription_id": "string",
            "status": "string",
            "currency": "string",
            "amount_due_cents": "integer",
            "amount_paid_cents": "integer",
            "amount_refunded_cents": "integer",
            "product": "string",
            "created_at": "timestamp",
            "updated_at": "timestamp",
            "paid_at": "timestamp",
        },
        required=("invoice_id", "customer_id", "status", "currency", "created_at", "updated_at"),
        allowed_values={"status": INVOICE_STATUSES},
        amounts=("amount_due_cents", "amount_paid_cents", "amount_refunded_cents"),
        currencies=("currency",),
        ordered_pairs=(
            ("updated_at", "created_at"),
            ("amount_paid_cents", "amount_refunded_cents"),
        ),
    ),
    RawTableRules(
        table="raw.billing_subscriptions",
        key="subscription_id",
        version_column="updated_at",
        columns={
            "subscription_id": "string",
            "customer_id": "string",
            "plan": "string",
            "status": "string",
            "mrr_cents": "integer",
            "currency": "string",
            "started_at": "timestamp",
            "updated_at": "timestamp",
            "canceled_at": "timestamp",
        },
        required=(
            "subscription_id",
            "customer_id",
            "status",
            "currency",
            "started_at",
            "updated_at",
        ),
        allowed_values={"status": SUBSCRIPTION_STATUSES},
        amounts=("mrr_cents",),
        currencies=("currency",),
        ordered_pairs=(("canceled_at", "started_at"),),
    ),
    RawTableRules(
        table="raw.web_events",
        key="message_id",
        version_column=None,
        columns={
            "message_id": "string",
            "type": "string",
            "anonymous_id": "string",
            "user_id": "string",
            "event": "string",
            "name": "string",
            "properties": "string",
            "traits": "string",
            "page_url": "string",
            "page_path": "string",
            "page_referrer": "string",
            "page_title": "string",
            "campaign_source": "string",
            "campaign_medium": "string",
            "campaign_name": "string",
            "user_agent": "string",
            "ip": "string",
            "event_timestamp": "timestamp",
            "received_at": "timestamp",
        },
        required=("message_id", "type", "event_timestamp"),
        allowed_values={"type": WEB_EVENT_TYPES},
        # A re-delivered Segment message keeps its messageId but may be received again.
        volatile=("received_at",),
        derived={"_trait_email": "json_extract_string(traits, '$.email')"},
        emails=("_trait_email",),
    ),
    RawTableRules(
        table="raw.support_tickets",
        key="ticket_id",
        version_column="updated_at",
        columns={
            "ticket_id": "string",
            "requester_email": "string",
            "requester_name": "string",
            "requester_phone": "string",
            "subject": "string",
            "status": "string",
            "priority": "string",
            "channel": "string",
            "created_at": "timestamp",
            "updated_at": "timestamp",
            "first_responded_at": "timestamp",
            "solved_at": "timestamp",
            "satisfaction": "string",
        },
        required=("ticket_id", "status", "created_at", "updated_at"),
        allowed_values={"status": TICKET_STATUSES},
        emails=("requester_email",),
        ordered_pairs=(
            ("updated_at", "created_at"),
            ("first_responded_at", "created_at"),
            ("solved_at", "created_at"),
        ),
        derived={
            "_priority": "lower(trim(priority))",
            "_channel": "lower(trim(channel))",
            "_satisfaction": "lower(trim(satisfaction))",
        },
        expected_values={
            "_priority": TICKET_PRIORITIES,
            "_channel": TICKET_CHANNELS,
            "_satisfaction": CSAT_RATINGS,
        },
    ),
    RawTableRules(
        table="raw.survey_responses",
        key="response_id",
        version_column=None,
        columns={
            "response_id": "string",
            "survey_id": "string",
            "respondent_email": "string",
            "score": "integer",
            "comment": "string",
            "submitted_at": "timestamp",
        },
        required=("response_id", "survey_id", "score", "submitted_at"),
        ranges={"score": (0, 10)},
        emails=("respondent_email",),
    ),
    RawTableRules(
        table="raw.privacy_requests",
        key="request_id",
        version_column=None,
        columns={
            "request_id": "string",
            "request_type": "string",
            "email": "string",
            "phone": "string",
            "received_at": "timestamp",
        },
        required=("request_id", "request_type", "received_at"),
        allowed_values={"request_type": ("erase",)},
    ),
)


def _implausible_timestamp_sql(rules: RawTableRules) -> str:
    """`column=value` of the row's first timestamp before 2000-01-01 or on/after its own
    `_dt` + 2 days (a delivery cannot hold events from after the day following it), else NULL.

    Per row rather than one bound for the whole scope: a range of days validated in one
    pass must judge a day-1 row against day 1, not against the last day of the range. In
    SQL rather than as GX between-expectations: exact under sampling, and GX compares
    datetime64[us] columns value by value in Python (seconds per 100k rows).
    """
    earliest = f"TIMESTAMP '{EARLIEST_PLAUSIBLE_TIMESTAMP:%Y-%m-%d %H:%M:%S}'"
    deadline = f"(_dt + INTERVAL {FUTURE_TIMESTAMP_DAYS_AFTER_DELIVERY} DAY)"
    # TRY_CAST: a column of the wrong type is the type expectation's to report, not a crash.
    cases = []
    for column in rules.timestamps:
        value = f"TRY_CAST({column} AS TIMESTAMP)"
        cases.append(
            f"CASE WHEN {value} < {earliest} OR {value} >= {deadline} "
            f"THEN '{column}=' || strftime({value}, '%Y-%m-%d %H:%M:%S') END"
        )
    return "coalesce(\n        " + ",\n        ".join(cases) + "\n    )"


def _conflict_frame_sql(rules: RawTableRules) -> str:
    """Partition rows plus `_conflicting_key`: set when the row is one of several *different*
    deliveries tied for the win (same key and same latest version for entity tables; any
    differing re-delivery for event tables). Looks at every day's deliveries of the
    partition's keys, so a clash with an earlier day is caught too. Also adds
    `_implausible_timestamp` (see `_implausible_timestamp_sql`).
    """
    key = rules.key
    version = rules.version_column or "0"
    same_version = (
        f" AND conflicting._version = scoped.{rules.version_column}" if rules.version_column else ""
    )
    payload = ", ".join(rules.payload)
    derived = "".join(f",\n    {expr} AS {name}" for name, expr in rules.derived.items())
    return f"""
WITH scoped AS (
    SELECT * FROM {{table}} WHERE {{scope}}
),
deliveries AS (
    SELECT {key}, {version} AS _version, hash({payload}) AS _payload_hash
    FROM {{table}}
    WHERE {key} IN (SELECT {key} FROM scoped)
),
winning AS (
    SELECT {key}, _version, _payload_hash FROM deliveries
    QUALIFY _version = max(_version) OVER (PARTITION BY {key})
),
conflicting AS (
    SELECT {key}, any_value(_version) AS _version FROM winning
    GROUP BY {key} HAVING count(DISTINCT _payload_hash) > 1
)
SELECT
    scoped.*,
    CASE WHEN conflicting.{key} IS NOT NULL THEN scoped.{key} END AS {CONFLICT_COLUMN},
    {_implausible_timestamp_sql(rules)} AS {IMPLAUSIBLE_TIMESTAMP_COLUMN}{derived}
FROM scoped
LEFT JOIN conflicting
    ON conflicting.{key} = scoped.{key}{same_version}
"""


def _error_expectations(rules: RawTableRules) -> Sequence[Expectation]:
    from quality.expectations import ExpectTableColumnsToHaveDtypes  # a GX class: GX loads

    expectations: list[Expectation] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[*rules.columns, *RAW_LINEAGE_COLUMNS],
            exact_match=False,
            description=f"Every contract column of {rules.table} is present (extra columns are allowed).",
        )
    ]
    for column in rules.required:
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=column))
    expectations.append(
        ExpectTableColumnsToHaveDtypes(
            column_dtypes={
                column: PANDAS_DTYPES_BY_KIND[kind] for column, kind in rules.columns.items()
            },
            description=f"Every contract column of {rules.table} has its contract type.",
        )
    )
    for column, values in rules.allowed_values.items():
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(values)))
    for column in rules.currencies:
        expectations.append(
            gxe.ExpectColumnValuesToMatchRegex(
                column=column,
                regex=CURRENCY_REGEX,
                description=f"`{column}` is an ISO-4217 code in lower case (e.g. `eur`).",
            )
        )
    for column in rules.amounts:
        expectations.append(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0))
    for column, (low, high) in rules.ranges.items():
        expectations.append(
            gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high)
        )
    expectations.append(
        gxe.ExpectColumnValuesToBeNull(
            column=IMPLAUSIBLE_TIMESTAMP_COLUMN,
            description=(
                f"Every timestamp ({', '.join(f'`{c}`' for c in rules.timestamps)}) lies between "
                "2000-01-01 and the end of the day after the row's own delivery day `_dt` "
                "(no future timestamps)."
            ),
        )
    )
    expectations.append(
        gxe.ExpectColumnValuesToBeNull(
            column=CONFLICT_COLUMN,
            description=(
                f"`{rules.key}` is unique after deduplication: no two different deliveries tie "
                + (
                    f"for the latest `{rules.version_column}`."
                    if rules.version_column
                    else "(an at-least-once re-delivery must repeat the same record)."
                )
            ),
        )
    )
    return expectations


def _has_warnings(rules: RawTableRules) -> bool:
    """Whether `_warn_expectations` has anything to check (decided without building GX
    objects, so that declaring the suites does not import GX)."""
    return bool(rules.emails or rules.countries or rules.expected_values or rules.ordered_pairs)


def _warn_expectations(rules: RawTableRules) -> Sequence[Expectation]:
    expectations: list[Expectation] = []
    for column in rules.emails:
        expectations.append(
            gxe.ExpectColumnValuesToMatchRegex(
                column=column,
                regex=EMAIL_REGEX,
                description=f"`{column}` looks like an email address (`name@domain.tld`).",
            )
        )
    for column in rules.countries:
        expectations.append(
            gxe.ExpectColumnValuesToMatchRegex(
                column=column,
                regex=COUNTRY_REGEX,
                description=f"`{column}` is an ISO-3166 alpha-2 country code.",
            )
        )
    for column, values in rules.expected_values.items():
        expectations.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=column,
                value_set=list(values),
                description=(
                    f"`{column.lstrip('_')}` is one of {', '.join(values)} (any letter case) when "
                    "set; other values load but read as unknown downstream."
                ),
            )
        )
    for column_a, column_b in rules.ordered_pairs:
        expectations.append(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=column_a,
                column_B=column_b,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            )
        )
    return expectations


def _plain_frame_sql(rules: RawTableRules) -> str:
    derived = "".join(f", {expr} AS {name}" for name, expr in rules.derived.items())
    return f"SELECT *{derived} FROM {{table}} WHERE {{scope}}"


#: A delivery day is broken when more than this share of its rows was rejected...
MAX_REJECTED_SHARE = 0.2
#: ...and at least this many rows: a demo day of 12 rows with 3 rejects is noise.
MIN_REJECTED_ROWS_TO_FAIL = 5
TOO_MANY_REJECTS_COLUMN = "_too_many_rejects"


def _reject_rate_frame_sql(rules: RawTableRules) -> str:
    source_table = rules.table.split(".", 1)[1]
    return f"""
        SELECT * FROM (
            SELECT dt AS _dt,
                   -- BIGINT, not DuckDB's HUGEINT sum: the same int64 on both engines
                   CAST(sum(rows_read) AS BIGINT) AS rows_read,
                   CAST(sum(rows_rejected) AS BIGINT) AS rows_rejected,
                   round(sum(rows_rejected) / greatest(sum(rows_read), 1), 4) AS rejected_share,
                   (sum(rows_rejected) > {MAX_REJECTED_SHARE} * sum(rows_read)
                    AND sum(rows_rejected) >= {MIN_REJECTED_ROWS_TO_FAIL}) AS {TOO_MANY_REJECTS_COLUMN}
            FROM raw.load_audit
            WHERE source_table = '{source_table}'
            GROUP BY dt
        ) WHERE {{scope}}
    """


def _reject_rate_expectations() -> Sequence[Expectation]:
    return [
        gxe.ExpectColumnValuesToBeInSet(
            column=TOO_MANY_REJECTS_COLUMN,
            value_set=[False],
            meta={
                "notes": (
                    f"More than {MAX_REJECTED_SHARE:.0%} of the day's rows (and at least "
                    f"{MIN_REJECTED_ROWS_TO_FAIL}) were rejected: the export is broken. See raw.rejects "
                    "for the reasons, fix the export and re-deliver the day."
                )
            },
        )
    ]


def _suites_for(rules: RawTableRules) -> list[SuiteSpec]:
    key_columns = (rules.key, "_source_file", "_line_number")
    suites = [
        SuiteSpec(
            name=f"{rules.suite_prefix}__reject_rate",
            severity="ERROR",
            description=(
                f"{rules.table} (per delivery day): at most {MAX_REJECTED_SHARE:.0%} of the day's rows "
                "rejected at ingestion; a mostly rejected day is a broken export."
            ),
            expectations=_reject_rate_expectations,
            table=rules.table,
            partitioned=True,
            frame_sql=_reject_rate_frame_sql(rules),
            key_columns=("_dt", "rows_read", "rows_rejected", "rejected_share"),
        ),
        SuiteSpec(
            name=f"{rules.suite_prefix}__errors",
            severity="ERROR",
            description=(
                f"{rules.table} (per delivery day): contract columns, required values, types, allowed "
                "values, non-negative amounts, plausible timestamps, unique key after dedup."
            ),
            expectations=partial(_error_expectations, rules),
            table=rules.table,
            partitioned=True,
            frame_sql=_conflict_frame_sql(rules),
            key_columns=key_columns,
            exact_columns=(CONFLICT_COLUMN, IMPLAUSIBLE_TIMESTAMP_COLUMN),
        ),
    ]
    if _has_warnings(rules):
        suites.append(
            SuiteSpec(
                name=f"{rules.suite_prefix}__warnings",
                severity="WARN",
                description=(
                    f"{rules.table} (per delivery day): email/country formats, values of optional "
                    "descriptive columns, and field ordering."
                ),
                expectations=partial(_warn_expectations, rules),
                table=rules.table,
                partitioned=True,
                frame_sql=_plain_frame_sql(rules),
                key_columns=key_columns,
            )
        )
    return suites


RAW_SUITES: list[SuiteSpec] = [spec for rules in RAW_TABLES for spec in _suites_for(rules)]
