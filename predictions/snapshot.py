"""Point-in-time feature snapshots of golden customers, computed by the warehouse engine.

`build_snapshot(con, as_of)` runs `snapshot.sql`: one row per golden customer known by the
end of `as_of`, built only from rows delivered AND dated by then. The outcomes a model
learns (did they churn, pay for the first time, spend, buy a new product) are the
difference between the snapshot at T and the one at T + horizon, so labels obey the same
point-in-time rule as features.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

SNAPSHOT_SQL = Path(__file__).with_name("snapshot.sql")
# The web events' CTEs and features the snapshot places at `{web_features}`.
WEB_SESSIONS_SQL = Path(__file__).with_name("web_sessions.sql")
WEB_FEATURES_SQL = Path(__file__).with_name("web_features.sql")
# The CTEs every point-in-time query starts from: invoices as they stood at the cutoff.
INVOICE_CTES_SQL = Path(__file__).with_name("point_in_time_invoices.sql")
DEFAULT_FX_RATES = (
    Path(__file__).resolve().parents[1] / "dbt_project" / "seeds" / "fx_rates_to_usd.csv"
)
REQUIRED_TABLES = (
    "raw.billing_invoices",
    "raw.billing_subscriptions",
    "raw.billing_customers",
    "raw.email_contacts",
    "raw.email_events",
    "raw.web_events",
    "raw.support_tickets",
    "raw.survey_responses",
    "identity.customer_map",
)
# Tables whose landing days bound the history a snapshot can be taken over.
DELIVERY_TABLES = ("raw.billing_invoices", "raw.email_events", "raw.web_events")


class MissingWarehouseTables(RuntimeError):
    """The warehouse lacks a table the snapshot reads (ingestion or identity has not run)."""


@dataclass(frozen=True)
class History:
    """The landing days loaded: the first and the last delivery day."""

    first_day: date
    last_day: date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


def _existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "select table_schema || '.' || table_name from information_schema.tables"
    ).fetchall()
    return {r[0] for r in rows}


def check_inputs(con: duckdb.DuckDBPyConnection) -> None:
    missing = [t for t in REQUIRED_TABLES if t not in _existing_tables(con)]
    if missing:
        raise MissingWarehouseTables(
            "Feature snapshots read " + ", ".join(missing) + ", which the warehouse does not "
            "have yet: run ingestion and identity resolution first (`cdp run`)."
        )


def loaded_history(con: duckdb.DuckDBPyConnection) -> History | None:
    """First and last landing day with any event or invoice loaded; None when nothing is."""
    check_inputs(con)
    union = " union all ".join(f"select min(_dt), max(_dt) from {t}" for t in DELIVERY_TABLES)
    first, last = con.execute(f"select min(f), max(l) from ({union}) as days(f, l)").fetchone()
    if first is None:
        return None
    return History(first_day=first, last_day=last)


def rows_known_at_cutoff(table: str, key: str, happened_at: str | None = None) -> str:
    """A raw table as it was known at the cutoff, one row per `key`, as a subquery.

    Rows count when delivered by the as-of day and dated before the cutoff. Without
    `happened_at` the table is an entity export (a row per change): the latest version
    by `updated_at` wins. With it, an at-least-once event stream dated by `happened_at`:
    the first delivery wins.

    Most keys have one row known, and ranking every row of the history is most of what a
    snapshot costs (the web events' ranking was a fifth of a nightly scoring snapshot's
    CPU): only the keys known more than once, and NULL keys (one partition, as a window
    over all rows would rank them), are ranked; the others pass as they are.

    `known_rows` is read twice; DuckDB would materialise it, every column of every row
    (at 1,000,000 customers the web events' copy was a sixth of the snapshot's operator
    time), where two scans read only the columns each side needs.
    """
    if happened_at is None:
        dated = "updated_at"
        order = (
            "known.updated_at desc, known._dt desc, known._source_file desc, "
            "known._line_number desc"
        )
    else:
        dated, order = happened_at, "known._dt, known._source_file, known._line_number"
    return f"""(
        with known_rows as not materialized (
            select rows.*
            from {table} as rows, params
            where rows._dt <= params.as_of_date and rows.{dated} < params.cutoff
        ),
        repeated_keys as (
            select {key} from known_rows group by {key} having count(*) > 1
        )
        select known.*
        from known_rows as known
        where known.{key} is not null
            and known.{key} not in (
                select {key} from repeated_keys where {key} is not null
            )
        union all
        select ranked.* exclude (known_rank)
        from (
            select known.*, row_number() over (partition by known.{key} order by {order})
                as known_rank
            from known_rows as known
            where known.{key} is null or known.{key} in (select {key} from repeated_keys)
        ) as ranked
        where ranked.known_rank = 1
    )"""


# The point-in-time views of raw tables the templates read, by placeholder name.
AS_OF_TABLES = {
    "billing_invoices_by_t": rows_known_at_cutoff("raw.billing_invoices", "invoice_id"),
    "support_tickets_by_t": rows_known_at_cutoff("raw.support_tickets", "ticket_id"),
    "email_events_by_t": rows_known_at_cutoff("raw.email_events", "event_id", "occurred_at"),
    "web_events_by_t": rows_known_at_cutoff("raw.web_events", "message_id", "event_timestamp"),
    "survey_responses_by_t": rows_known_at_cutoff(
        "raw.survey_responses", "response_id", "submitted_at"
    ),
}


def point_in_time_sql(
    template: str, as_of: date, fx_rates: Path = DEFAULT_FX_RATES, **extra: str
) -> str:
    """`template` with `{invoice_ctes}`, the AS_OF_TABLES, `{as_of}` and `{fx_rates}` (and
    `extra`'s placeholders, as given) filled in."""
    if not isinstance(as_of, date):
        raise TypeError(f"as_of must be a date, got {as_of!r}")
    values = {
        "as_of": as_of.isoformat(),
        "fx_rates": str(fx_rates).replace("'", "''"),
        **AS_OF_TABLES,
    }
    ctes = INVOICE_CTES_SQL.read_text().format(**values)
    return template.format(invoice_ctes=ctes, **values, **extra)


def web_sessions_ctes(known_web_events: str) -> str:
    """The web_sessions CTE and those it reads, over `known_web_events` (a subquery)."""
    return WEB_SESSIONS_SQL.read_text().format(known_web_events=known_web_events)


def snapshot_sql(
    as_of: date, fx_rates: Path = DEFAULT_FX_RATES, web_features: str | None = None
) -> str:
    """The snapshot query. `web_features` replaces the web_features CTE computed from every
    web event (predictions/web_state.py passes one that reads the sums it keeps)."""
    if web_features is None:
        web_features = (
            web_sessions_ctes(AS_OF_TABLES["web_events_by_t"])
            + ",\n\n"
            + WEB_FEATURES_SQL.read_text()
        )
    return point_in_time_sql(SNAPSHOT_SQL.read_text(), as_of, fx_rates, web_features=web_features)


def _stays_null(column: str) -> bool:
    """Columns where NULL means "never" (no payment, no visit, no NPS answer), not zero."""
    return (
        column.startswith(("days_since_", "nps_"))
        and column != "nps_responses"
        or (column.endswith("_age_days"))
    )


def build_snapshot(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    fx_rates: Path = DEFAULT_FX_RATES,
    web_features: str | None = None,
) -> pd.DataFrame:
    """Features of every golden customer known by the end of `as_of` (UTC); `web_features`
    as in `snapshot_sql`."""
    check_inputs(con)
    snapshot = con.execute(snapshot_sql(as_of, fx_rates, web_features)).df()
    for column in snapshot.columns:
        if column in ("customer_id", "as_of_date", "tenure_days") or _stays_null(column):
            continue
        if snapshot[column].dtype == object or str(snapshot[column].dtype) == "boolean":
            snapshot[column] = snapshot[column].astype("boolean").fillna(False).astype(bool)
        else:
            snapshot[column] = snapshot[column].fillna(0)
    return snapshot


PRODUCTS_SQL = """
with {invoice_ctes}
select customer_id, product, min(paid_at) as first_bought_at
from invoices
where status = 'paid' and product is not null
group by 1, 2
order by 1, 2
"""


def products_owned(con: duckdb.DuckDBPyConnection, as_of: date) -> pd.DataFrame:
    """(customer_id, product, first_bought_at) for every product paid for by the end of `as_of`."""
    check_inputs(con)
    return con.execute(point_in_time_sql(PRODUCTS_SQL, as_of)).df()


def days_before(day: date, n: int) -> date:
    return day - timedelta(days=n)


__all__ = [
    "History",
    "MissingWarehouseTables",
    "build_snapshot",
    "check_inputs",
    "loaded_history",
    "point_in_time_sql",
    "products_owned",
    "snapshot_sql",
]
