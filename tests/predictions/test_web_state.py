"""The web state (predictions/web_state.py) gives the snapshot the very web features it
computes from every event: night after night, after identity merges and splits, a day
reloaded or erased, an as-of date moved back, events dated in the future and messages
delivered twice by different visitors. On a really loaded warehouse (tests/predictions)."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from demo_data.loaded_zone import landing_days
from predictions.snapshot import build_snapshot
from predictions.web_state import (
    STATE,
    WEB_FEATURE_COLUMNS,
    WEB_FEATURES_FROM_STATE,
    refresh,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def warehouse(full_warehouse, tmp_path) -> Path:
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(full_warehouse, copy)
    return copy


def assert_state_gives_the_snapshot(con: duckdb.DuckDBPyConnection, as_of: date) -> pd.DataFrame:
    """The snapshot with the state's web features equals the one from every event: every
    column and dtype, the web columns exactly (the others are computed alike either way;
    DuckDB adds doubles in parallel in no fixed order, so money may move in its last bit
    between two runs of one query). The web columns are not all zero: not vacuous."""
    from_events = build_snapshot(con, as_of)
    from_state = build_snapshot(con, as_of, web_features=WEB_FEATURES_FROM_STATE)
    pd.testing.assert_frame_equal(from_state, from_events, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(
        from_state[["customer_id", *WEB_FEATURE_COLUMNS]],
        from_events[["customer_id", *WEB_FEATURE_COLUMNS]],
        check_exact=True,
    )
    assert from_events["web_sessions"].sum() > 0
    assert from_events["web_sessions_30d"].sum() > 0
    return from_events


def test_night_after_night_the_state_gives_the_snapshot_from_every_event(signal_zone, warehouse):
    days = landing_days(signal_zone)
    with duckdb.connect(str(warehouse)) as con:
        first = refresh(con, days[39])
        assert (first.mode, first.reason) == ("full", "no state yet")
        assert_state_gives_the_snapshot(con, days[39])
        # one night, several nights at once, the last day; then the same day again
        touched = {}
        for as_of in (days[40], days[41], days[47], days[-1]):
            night = refresh(con, as_of)
            assert night.mode == "incremental", night
            assert 0 < night.visitors
            touched[as_of] = night.visitors
            assert_state_gives_the_snapshot(con, as_of)
        again = refresh(con, days[-1])
        assert (again.mode, again.visitors) == ("unchanged", 0)
        # one night recomputes a part of the visitors, not all of them
        (visitors_by_then,) = con.execute(
            "select count(distinct coalesce(anonymous_id, 'user:' || user_id)) "
            "from raw.web_events where _dt <= ?",
            [days[41]],
        ).fetchone()
        assert touched[days[41]] < visitors_by_then / 2


def test_identity_merges_splits_and_remapped_user_ids_reach_the_state(signal_zone, warehouse):
    days = landing_days(signal_zone)
    as_of = days[-1]
    with duckdb.connect(str(warehouse)) as con:
        refresh(con, as_of)
        web_customers = con.execute(
            "select customer_id, count(*) as n from identity.customer_map "
            "where source_system = 'web' group by 1 having n >= 2 order by n desc, 1 limit 3"
        ).fetchall()
        (merged_into, _), (merged_away, _), (split, _) = web_customers
        # a merge: every record of one customer joins another
        con.execute(
            "update identity.customer_map set customer_id = ? where customer_id = ?",
            [merged_into, merged_away],
        )
        # a split: one browser of a customer becomes a customer of its own
        con.execute(
            "update identity.customer_map set customer_id = 'gc_split_off' "
            "where source_system = 'web' and source_record_id = ("
            "  select min(source_record_id) from identity.customer_map "
            "  where source_system = 'web' and customer_id = ?)",
            [split],
        )
        # a billing account (whose userId names web events) moves to another customer
        moved = con.execute(
            "select map.source_record_id from identity.customer_map as map "
            "join raw.billing_customers as accounts on accounts.customer_id = map.source_record_id "
            "join raw.web_events as events on events.user_id = accounts.user_id "
            "where map.source_system = 'billing' order by 1 limit 1"
        ).fetchone()[0]
        con.execute(
            "update identity.customer_map set customer_id = 'gc_moved_account' "
            "where source_system = 'billing' and source_record_id = ?",
            [moved],
        )
        night = refresh(con, as_of)
        assert night.mode == "incremental" and night.visitors > 0, night
        snapshot = assert_state_gives_the_snapshot(con, as_of)
        assert merged_away not in set(snapshot["customer_id"])
        assert {"gc_split_off", "gc_moved_account"} <= set(snapshot["customer_id"])


def test_a_changed_delivered_day_or_an_earlier_as_of_date_rebuilds_the_state(
    signal_zone, warehouse
):
    days = landing_days(signal_zone)
    with duckdb.connect(str(warehouse)) as con:
        refresh(con, days[50])
        # rows of an old day erased (or the day reloaded with fewer rows)
        con.execute(
            "delete from raw.web_events where _dt = ? and message_id in ("
            "  select message_id from raw.web_events where _dt = ? order by 1 limit 25)",
            [days[30], days[30]],
        )
        rebuilt = refresh(con, days[51])
        assert rebuilt.mode == "full"
        assert rebuilt.reason == "a delivered day's web events changed (reloaded or erased)"
        assert_state_gives_the_snapshot(con, days[51])
        back = refresh(con, days[45])
        assert back.mode == "full" and back.reason.startswith(f"as-of date {days[45]} is before")
        assert_state_gives_the_snapshot(con, days[45])
        # and when asked (cdp run --full-refresh), whatever the state
        asked = refresh(con, days[45], rebuild="asked for: cdp run --full-refresh")
        assert (asked.mode, asked.reason) == ("full", "asked for: cdp run --full-refresh")
        assert_state_gives_the_snapshot(con, days[45])


def test_future_dated_events_and_messages_delivered_by_two_visitors(signal_zone, warehouse):
    """An event delivered with a timestamp days ahead counts from the night it happened;
    a message whose later delivery names another browser counts for the first delivery's
    browser, until a delivery that counts earlier arrives."""
    days = landing_days(signal_zone)
    held = days[60]
    with duckdb.connect(str(warehouse)) as con:
        # two events of browsers with a golden customer (so that their events count)
        template = con.execute(
            "select message_id, anonymous_id from raw.web_events where _dt = ? and anonymous_id in ("
            "  select source_record_id from identity.customer_map where source_system = 'web') "
            "order by message_id limit 2",
            [held],
        ).fetchall()
        (ahead, ahead_browser), (twice, twice_browser) = template
        other_browser = con.execute(
            "select anonymous_id from raw.web_events where _dt = ? and anonymous_id in ("
            "  select source_record_id from identity.customer_map where source_system = 'web') "
            "and anonymous_id <> ? order by 1 limit 1",
            [held, twice_browser],
        ).fetchone()[0]
        # delivered on `held`, dated three days later
        con.execute(
            "insert into raw.web_events select * replace ("
            "  'future-' || message_id as message_id,"
            "  cast(? as timestamp) + interval 3 day + interval 1 hour as event_timestamp,"
            "  _line_number + 1000000 as _line_number)"
            "from raw.web_events where message_id = ? and _dt = ?",
            [held, ahead, held],
        )
        # the same message delivered again two days later, naming another browser
        con.execute(
            "insert into raw.web_events select * replace ("
            "  ? as anonymous_id, cast(? as date) as _dt, _line_number + 2000000 as _line_number)"
            "from raw.web_events where message_id = ? and _dt = ?",
            [other_browser, held + timedelta(days=2), twice, held],
        )
        before = con.execute(
            "select count(*) from raw.web_events where message_id = ?", [twice]
        ).fetchone()[0]
        assert before == 2

        assert refresh(con, held).mode == "full"
        assert_state_gives_the_snapshot(con, held)
        ahead_day = held + timedelta(days=3)
        for as_of in (held + timedelta(days=n) for n in (1, 2, 3, 4)):
            night = refresh(con, as_of)
            assert night.mode == "incremental", night
            assert_state_gives_the_snapshot(con, as_of)
            (ahead_events,) = con.execute(
                f"select count(*) from {STATE} where visitor_id = ? and day = ?",
                [ahead_browser, ahead_day],
            ).fetchone()
            # the future-dated event counts from the night its day has come
            assert (ahead_events > 0) == (as_of >= ahead_day), as_of
