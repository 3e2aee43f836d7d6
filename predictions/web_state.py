"""The scoring snapshot's web features at the cost of the day, not of the history.

A snapshot's web features (predictions/web_features.sql) are sums over every web event
known at the cutoff: sessions, page views, shopping and cart events, in all and in the
last 30 and 31-90 days. Read from raw every night, they cost a scan, a ranking and a sort
of the whole event history. They are also sums over visitors and days: whether an event
starts a session depends only on its visitor's other events (and which of them have a
golden customer), and the windows end at midnight. So `predictions.web_visitor_days`
keeps, per visitor, customer and day of the events, the sums the features need, as of
one day; the next night recomputes only the visitors whose sums can have moved:

- a web event delivered since (any day's: a late one too);
- an event delivered before whose own timestamp has now passed (dated after the old
  cutoff, so not counted then);
- an event sharing a messageId with one of those (the first delivery of a message counts,
  whichever visitor it names);
- an event whose anonymousId or userId maps to another golden customer than it did (the
  identity map, or a billing account's userId as delivered by then): its customer, and
  which of its visitor's events count for a session, change.

Anything else that can change a visitor's events rebuilds the whole state from raw, the
cost of a snapshot, once: a delivered day whose rows changed (reloaded, or rows erased), an
as-of date before the state's, events without a messageId (the snapshot keeps one of those
in all), or no state yet. `refresh` says which it did and why. The features read from the
state (WEB_FEATURES_FROM_STATE) equal those read from raw, column for column
(tests/predictions/test_web_state.py, and `bench/web_state.py` on a built warehouse).

The state holds visitor ids (browser ids, `user:<userId>`) and golden customer ids next to
the warehouse's other derived tables: an erasure deletes the rows carrying the erased
person's values like any other table's, and removes their raw events, after which the
next refresh rebuilds the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from predictions.snapshot import (
    AS_OF_TABLES,
    DEFAULT_FX_RATES,
    point_in_time_sql,
    web_sessions_ctes,
)
from warehouse_engine.catalog import table_exists

SCHEMA = "predictions"
# (visitor_id, customer_id, day) -> the sums of that visitor's events of that day with that
# customer, as of STATE_AS_OF's date.
STATE = f"{SCHEMA}.web_visitor_days"
# What the state was computed from: the as-of date, each delivered day's row count and
# load time, and the customer each web key mapped to.
STATE_AS_OF = f"{SCHEMA}.web_visitor_days_as_of"
STATE_DAYS = f"{SCHEMA}.web_visitor_days_deliveries"
STATE_KEYS = f"{SCHEMA}.web_visitor_days_keys"
STATE_TABLES = (STATE, STATE_AS_OF, STATE_DAYS, STATE_KEYS)

# The snapshot's columns that come from the web features (the ones the state must match).
WEB_FEATURE_COLUMNS = (
    "web_sessions",
    "web_sessions_30d",
    "web_sessions_31_90d",
    "web_page_views",
    "web_page_views_30d",
    "web_shopping_events",
    "web_cart_events_30d",
    "has_signed_up",
    "days_since_web_visit",
)

TRACKED_NAMES = "('Product Viewed', 'Added to Cart', 'Checkout Started')"
CART_NAMES = "('Added to Cart', 'Checkout Started')"

# Per visitor, customer and day: what the web features sum (after the web_sessions CTE).
_VISITOR_DAYS_SELECT = f"""
select
    visitor_id,
    customer_id,
    cast(occurred_at as date) as day,
    cast(sum(starts_session) as bigint) as session_starts,
    count(*) filter (where type = 'page') as page_views,
    count(*) filter (where type = 'track' and event in {TRACKED_NAMES}) as shopping_events,
    count(*) filter (where type = 'track' and event in {CART_NAMES}) as cart_events,
    bool_or(type = 'track' and event = 'Signed Up') as signed_up,
    min(occurred_at) as first_at,
    max(occurred_at) as last_at
from web_sessions
group by visitor_id, customer_id, cast(occurred_at as date)
"""

# The web_features CTE of predictions/web_features.sql, from the state. A window "since
# cutoff - 30 days" starts at a midnight (the cutoff is one), so it is a range of days.
WEB_FEATURES_FROM_STATE = f"""web_features as (

    select
        state.customer_id,
        sum(state.session_starts) as web_sessions,
        sum(state.session_starts) filter (
            where state.day >= cast(params.cutoff - interval 30 day as date)
        ) as web_sessions_30d,
        sum(state.session_starts) filter (
            where state.day >= cast(params.cutoff - interval 90 day as date)
                and state.day < cast(params.cutoff - interval 30 day as date)
        ) as web_sessions_31_90d,
        cast(sum(state.page_views) as bigint) as web_page_views,
        coalesce(cast(sum(state.page_views) filter (
            where state.day >= cast(params.cutoff - interval 30 day as date)
        ) as bigint), 0) as web_page_views_30d,
        cast(sum(state.shopping_events) as bigint) as web_shopping_events,
        coalesce(cast(sum(state.cart_events) filter (
            where state.day >= cast(params.cutoff - interval 30 day as date)
        ) as bigint), 0) as web_cart_events_30d,
        bool_or(state.signed_up) as has_signed_up,
        date_diff('day', max(state.last_at), any_value(params.as_of_date)) as days_since_web_visit,
        min(state.first_at) as first_web_seen_at
    from {STATE} as state, params
    group by state.customer_id

)"""

# The web keys and their golden customer as of the cutoff: a browser or userId record's
# (identity map), a userId's billing account's (delivered by then).
_KEYS_SELECT = """
select 'record' as kind, source_record_id as web_key, customer_id from web_identities
union all
select 'user' as kind, user_id as web_key, customer_id from billing_user_ids
"""

# Each delivered day of raw web events as the state saw it.
_DELIVERIES_SELECT = """
select _dt, count(*) as n_rows, max(_loaded_at) as last_loaded_at
from raw.web_events
where _dt <= cast('{as_of}' as date)
group by _dt
"""

# The events known at the cutoff of the visitors in `_affected_visitors` (a temp table):
# theirs among the first deliveries of their messages (any visitor's delivery can be first).
_AFFECTED_KNOWN_EVENTS = """(
    with visitor_rows as (
        select rows.*
        from raw.web_events as rows, params
        where rows._dt <= params.as_of_date and rows.event_timestamp < params.cutoff
            and (
                rows.anonymous_id in (select visitor_id from _affected_visitors)
                or (rows.anonymous_id is null
                    and 'user:' || rows.user_id in (select visitor_id from _affected_visitors))
            )
    ),
    first_deliveries as (
        select message_id, _dt, _source_file, _line_number
        from (
            select rows.message_id, rows._dt, rows._source_file, rows._line_number,
                row_number() over (
                    partition by rows.message_id
                    order by rows._dt, rows._source_file, rows._line_number
                ) as delivery_rank
            from raw.web_events as rows, params
            where rows._dt <= params.as_of_date and rows.event_timestamp < params.cutoff
                and rows.message_id in (select message_id from visitor_rows)
        ) as ranked
        where delivery_rank = 1
    )
    select visitor_rows.*
    from visitor_rows
    semi join first_deliveries
        on first_deliveries.message_id = visitor_rows.message_id
        and first_deliveries._dt = visitor_rows._dt
        and first_deliveries._source_file = visitor_rows._source_file
        and first_deliveries._line_number = visitor_rows._line_number
)"""


@dataclass(frozen=True)
class Refresh:
    """What `refresh` did: `full` (rebuilt from every event; `reason` says why),
    `incremental` (recomputed `visitors` visitors) or `unchanged`."""

    mode: str
    as_of: date
    visitors: int = 0
    reason: str = ""
    state_rows: int = 0

    def describe(self) -> str:
        if self.mode == "full":
            return f"rebuilt from every web event ({self.reason}): {self.state_rows:,} visitor-days"
        if self.mode == "incremental":
            return (
                f"{self.visitors:,} visitors recomputed since the state's last night: "
                f"{self.state_rows:,} visitor-days"
            )
        return f"unchanged since its last refresh: {self.state_rows:,} visitor-days"


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """The one value `sql` returns (fetched whole: DuckDB blocks a connection's next query
    while a result is half read)."""
    return con.execute(sql, params or []).fetchall()[0][0]


def _with_ctes(as_of: date, known_web_events: str, select: str, fx_rates) -> str:
    """`select` after the invoice CTEs and the web_sessions CTEs over `known_web_events`."""
    template = "with {invoice_ctes},\n{web_sessions}\n" + select
    return point_in_time_sql(
        template, as_of, fx_rates, web_sessions=web_sessions_ctes(known_web_events)
    )


def _why_rebuild(con: duckdb.DuckDBPyConnection, as_of: date) -> tuple[str | None, date | None]:
    """(why the state must be rebuilt, or None; the state's as-of date, if any)."""
    if not all(table_exists(con, table) for table in STATE_TABLES):
        return "no state yet", None
    rows = con.execute(f"select as_of_date from {STATE_AS_OF}").fetchall()
    if len(rows) != 1:
        return "no state yet", None
    held = rows[0][0]
    if held > as_of:
        return f"as-of date {as_of} is before the state's {held}", held
    now = _DELIVERIES_SELECT.format(as_of=held.isoformat())
    held_days = f"select _dt, n_rows, last_loaded_at from {STATE_DAYS}"
    changed = _scalar(
        con,
        f"select (select count(*) from (({now}) except ({held_days}))) "
        f"+ (select count(*) from (({held_days}) except ({now})))",
    )
    if changed:
        return "a delivered day's web events changed (reloaded or erased)", held
    without_id = _scalar(
        con,
        "select count(*) from raw.web_events where message_id is null and _dt <= ?",
        [as_of],
    )
    if without_id:
        return "web events without a messageId are loaded", held
    return None, held


def _record(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    """Write what the state now reflects: its date, the deliveries, the keys' customers
    (`_keys_now`, which `refresh` computed)."""
    con.execute(
        f"create or replace table {STATE_DAYS} as "
        + _DELIVERIES_SELECT.format(as_of=as_of.isoformat())
    )
    con.execute(f"create or replace table {STATE_KEYS} as select * from _keys_now")
    con.execute(
        f"create or replace table {STATE_AS_OF} as select cast(? as date) as as_of_date",
        [as_of],
    )


# The visitors whose sums can have moved since the state's night ($held), by the web keys
# mapped today (`_keys_now`) against those the state recorded.
_AFFECTED_SELECT = f"""
-- delivered since the state's night, or now past their timestamp
arrived as (
    select rows.message_id, rows.anonymous_id, rows.user_id
    from raw.web_events as rows, params
    where (rows._dt > $held and rows._dt <= params.as_of_date)
        or (rows._dt <= $held
            and rows.event_timestamp >= cast($held as timestamp) + interval 1 day
            and rows.event_timestamp < params.cutoff)
),
-- every delivery of those messages: which one is first can have changed
same_messages as (
    select rows.anonymous_id, rows.user_id
    from raw.web_events as rows, params
    where rows._dt <= params.as_of_date
        and rows.message_id in (select message_id from arrived)
),
remapped_keys as (
    select coalesce(now.kind, held.kind) as kind, coalesce(now.web_key, held.web_key) as web_key
    from _keys_now as now
    full outer join {STATE_KEYS} as held
        on held.kind = now.kind and held.web_key = now.web_key
    where now.web_key is null or held.web_key is null
        or now.customer_id is distinct from held.customer_id
),
remapped as (
    select rows.anonymous_id, rows.user_id
    from raw.web_events as rows, params
    where rows._dt <= params.as_of_date
        and (
            rows.anonymous_id in (select web_key from remapped_keys where kind = 'record')
            or rows.user_id in (select web_key from remapped_keys)
        )
)
select distinct coalesce(anonymous_id, 'user:' || user_id) as visitor_id
from (
    select anonymous_id, user_id from arrived
    union all
    select * from same_messages
    union all
    select * from remapped
) as touched
where coalesce(anonymous_id, 'user:' || user_id) is not null
"""


def _affected_visitors(con: duckdb.DuckDBPyConnection, held: date, as_of: date, fx_rates) -> int:
    """Fill the temp table `_affected_visitors` (visitor_id); returns how many."""
    query = point_in_time_sql("with {invoice_ctes},\n" + _AFFECTED_SELECT, as_of, fx_rates)
    con.execute("create or replace temp table _affected_visitors as " + query, {"held": held})
    return _scalar(con, "select count(*) from _affected_visitors")


def refresh(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    fx_rates=DEFAULT_FX_RATES,
    rebuild: str | None = None,
) -> Refresh:
    """Bring the state to `as_of` (the scoring date: the last day loaded), in one transaction.

    `rebuild` (a reason, e.g. "cdp run --full-refresh") rebuilds it from every event."""
    con.execute(f"create schema if not exists {SCHEMA}")
    why, held = (rebuild, None) if rebuild else _why_rebuild(con, as_of)
    # the web keys' customers as of `as_of`: what a night compares with the state's, and
    # what the state records
    no_events = "(select * from raw.web_events where false)"
    con.execute(
        "create or replace temp table _keys_now as "
        + _with_ctes(as_of, no_events, _KEYS_SELECT, fx_rates)
    )
    con.execute("begin transaction")
    try:
        if why is not None:
            con.execute(
                f"create or replace table {STATE} as "
                + _with_ctes(as_of, AS_OF_TABLES["web_events_by_t"], _VISITOR_DAYS_SELECT, fx_rates)
            )
            visitors, mode = 0, "full"
        else:
            visitors = _affected_visitors(con, held, as_of, fx_rates)
            mode = "incremental" if visitors or held != as_of else "unchanged"
            if visitors:
                con.execute(
                    f"delete from {STATE} "
                    "where visitor_id in (select visitor_id from _affected_visitors)"
                )
                con.execute(
                    f"insert into {STATE} "
                    + _with_ctes(as_of, _AFFECTED_KNOWN_EVENTS, _VISITOR_DAYS_SELECT, fx_rates)
                )
            con.execute("drop table if exists _affected_visitors")
        _record(con, as_of)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.execute("drop table if exists _keys_now")
    rows = _scalar(con, f"select count(*) from {STATE}")
    return Refresh(mode=mode, as_of=as_of, visitors=visitors, reason=why or "", state_rows=rows)


__all__ = [
    "STATE",
    "STATE_TABLES",
    "WEB_FEATURES_FROM_STATE",
    "WEB_FEATURE_COLUMNS",
    "Refresh",
    "refresh",
]
