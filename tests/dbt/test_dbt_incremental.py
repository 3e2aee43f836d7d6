"""Late, re-delivered, reloaded and changed data, identity merges and splits: an incremental
run gives exactly what a full rebuild gives, every column of every staging, intermediate and
mart table (the incremental models: macros/incremental_delivery.sql and their SQL)."""

from __future__ import annotations

import duckdb

from tests.dbt.dbt_harness import assert_dbt_succeeded, execute_fixture, run_dbt

SCHEMAS = ("staging", "intermediate", "marts")
# the visitors int_web__events_sessionised replaced since fct_web_sessions last grouped them
# (macros/incremental_delivery.sql, keys_to_regroup)
REGROUP_RECORD = "dbt_incremental.web_sessions_visitors_to_regroup"
# the mappings the sessionised model last stitched with (macros/web_stitching.sql)
STITCHING_SNAPSHOTS = (
    "dbt_incremental.web_stitching_user_customers",
    "dbt_incremental.web_stitching_identities",
)
# the web events stg_web__events replaced since int_web__events_sessionised last checked them
WEB_EVENTS_TO_RESESSIONISE = ("dbt_incremental.web_events_to_resessionise", "message_id")
# the email events stg_email__events replaced since fct_email_events last re-joined them,
# and the customers whose rows fct_email_events replaced since int_customer__email_metrics
# last re-aggregated them; the email mapping fct_email_events last joined with
# (macros/email_events.sql)
EVENTS_TO_REJOIN = ("dbt_incremental.email_events_to_rejoin", "event_id")
EMAIL_CUSTOMERS_TO_REGROUP = ("dbt_incremental.email_metrics_customers_to_regroup", "customer_id")
EMAIL_IDENTITIES_SNAPSHOT = "dbt_incremental.email_events_identities"
# the invoices stg_billing__invoices replaced since int_billing__invoices last re-joined
# them, and those int_billing__invoices replaced since fct_invoices last re-read them
# (macros/billing_invoices.sql)
INVOICES_TO_REJOIN = ("dbt_incremental.invoices_to_rejoin", "invoice_id")
INVOICES_TO_REGROUP = ("dbt_incremental.fct_invoices_to_regroup", "invoice_id")


def _table_contents_differences(incremental, full_rebuild) -> dict[str, tuple[int, int]]:
    """Per table, (rows only in the incremental result, rows only in the full rebuild).

    Multiset comparison (EXCEPT ALL both ways) of every column; doubles are rounded to 9
    decimals since parallel aggregation may order float additions differently.
    """
    con = duckdb.connect()
    con.execute(f"attach '{incremental}' as incremental (read_only)")
    con.execute(f"attach '{full_rebuild}' as full_rebuild (read_only)")
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables "
        f"where table_catalog = 'full_rebuild' and table_schema in {SCHEMAS} order by 1, 2"
    ).fetchall()
    differences = {}
    for schema, table in tables:
        columns = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_catalog = 'full_rebuild' and table_schema = ? and table_name = ? "
            "order by ordinal_position",
            [schema, table],
        ).fetchall()
        select_list = ", ".join(
            f'round("{name}", 9) as "{name}"' if data_type in ("DOUBLE", "FLOAT") else f'"{name}"'
            for name, data_type in columns
        )
        counts = []
        for left, right in (("incremental", "full_rebuild"), ("full_rebuild", "incremental")):
            counts.append(
                con.execute(
                    f"select count(*) from (select {select_list} from {left}.{schema}.{table} "
                    f"except all select {select_list} from {right}.{schema}.{table})"
                ).fetchone()[0]
            )
        if counts != [0, 0]:
            differences[f"{schema}.{table}"] = tuple(counts)
    con.close()
    assert len(tables) > 25, f"expected every model to be compared, found {len(tables)} tables"
    return differences


def _incremental_and_full_rebuild(copy_of_built_warehouse, full_rebuild_after, *fixtures: str):
    """Two copies of the built warehouse after `fixtures` changed raw (and identity.*): one
    updated by an incremental `dbt run`, one rebuilt with `--full-refresh` (a private copy
    of the session's rebuild after the same fixtures: conftest.full_rebuild_after)."""
    incremental = copy_of_built_warehouse("incremental")
    execute_fixture(incremental, *fixtures)
    assert_dbt_succeeded(run_dbt(incremental, incremental.parent, "run"))
    full_rebuild = full_rebuild_after(*fixtures)
    # fct_web_sessions consumed what int_web__events_sessionised recorded, in both; so did
    # fct_email_events and int_customer__email_metrics
    assert _visitors_to_regroup(incremental) == _visitors_to_regroup(full_rebuild) == []
    for record in (
        WEB_EVENTS_TO_RESESSIONISE,
        EVENTS_TO_REJOIN,
        EMAIL_CUSTOMERS_TO_REGROUP,
        INVOICES_TO_REJOIN,
        INVOICES_TO_REGROUP,
    ):
        assert _recorded(incremental, record) == _recorded(full_rebuild, record) == []
    # ... and the incremental run was one: the email and invoice models compiled their
    # incremental SQL
    assert _compiled_incrementally(incremental)
    return incremental, full_rebuild


def _compiled_incrementally(warehouse) -> bool:
    """Whether the last dbt run in `warehouse`'s folder ran the email and invoice models
    incrementally."""
    compiled = warehouse.parent / "target" / "compiled" / "cdp" / "models"
    fct = (compiled / "marts" / "fct_email_events.sql").read_text()
    metrics = (compiled / "intermediate" / "int_customer__email_metrics.sql").read_text()
    invoices = (compiled / "intermediate" / "int_billing__invoices.sql").read_text()
    fct_invoices = (compiled / "marts" / "fct_invoices.sql").read_text()
    return (
        "changed_events as" in fct
        and "changed_customers as" in metrics
        and "changed_invoices as" in invoices
        and "changed_invoices as" in fct_invoices
    )


def _recorded(warehouse, record: tuple[str, str]) -> list[str | None]:
    """A replaced-keys record's distinct keys, sorted (NULL, "every key", first): a key can
    be recorded twice (fct_email_events records the customer of the row it deletes and of
    the one it inserts)."""
    table, key = record
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(f"select distinct {key} from {table}").fetchall()
    finally:
        con.close()
    return sorted((row[0] for row in rows), key=lambda v: (v is not None, v or ""))


def _visitors_to_regroup(warehouse) -> list[str | None]:
    """The record fct_web_sessions re-groups from, sorted (NULL, "every visitor", first)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(f"select visitor_id from {REGROUP_RECORD}").fetchall()
    finally:
        con.close()
    return sorted((row[0] for row in rows), key=lambda v: (v is not None, v or ""))


def _drop_run_state(warehouse, *tables: str) -> None:
    """Drop run-state tables (`dbt_incremental.*`), as in a warehouse built before them."""
    con = duckdb.connect(str(warehouse))
    try:
        for table in tables:
            con.execute(f"drop table {table}")
    finally:
        con.close()


def _query_results(warehouse, queries: dict[str, str]) -> dict[str, object]:
    """The first value of each query's first row, by name."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {name: con.execute(query).fetchone()[0] for name, query in queries.items()}
    finally:
        con.close()


def test_incremental_run_after_late_data_equals_full_rebuild(
    copy_of_built_warehouse, full_rebuild_after
):
    incremental, full_rebuild = _incremental_and_full_rebuild(
        copy_of_built_warehouse, full_rebuild_after, "late_data"
    )

    assert _table_contents_differences(incremental, full_rebuild) == {}

    # ... and the late data really changed the marts (the comparison above is not vacuous)
    assert _query_results(
        incremental,
        {
            "ada_sessions": "select count(*) from marts.fct_web_sessions where visitor_id = 'a_ada'",
            "ada_events": "select sum(n_events) from marts.fct_web_sessions where visitor_id = 'a_ada'",
            "ee_8_delivered": "select strftime(delivered_dt, '%Y-%m-%d') from staging.stg_email__events where event_id = 'ee_8'",
            "in_ada_3_net": "select net_revenue_cents from marts.fct_invoices where invoice_id = 'in_ada_3'",
            "w_1_copies": "select count(*) from staging.stg_web__events where message_id = 'w_1'",
            "eve_opened": "select campaigns_opened from intermediate.int_customer__email_metrics where customer_id = 'gc_eve'",
            "late_open_customer": "select customer_id from marts.fct_email_events where event_id = 'ee_late_1'",
        },
    ) == {
        # the late 09:55 page view bridges her two sessions
        "ada_sessions": 1,
        "ada_events": 6,
        # the backfilled (older) partition's delivery wins
        "ee_8_delivered": "2026-09-11",
        # re-sent with a 1000 refund
        "in_ada_3_net": 2000,
        # the re-delivery did not duplicate the event
        "w_1_copies": 1,
        # Eve's late open reached her email metrics (her consent did not change)
        "eve_opened": 1,
        "late_open_customer": "gc_eve",
    }


def test_incremental_run_after_reloaded_partitions_and_changed_people_equals_full_rebuild(
    copy_of_built_warehouse,
    full_rebuild_after,
):
    """Re-running a day must give the same result as running it once, also when the day
    comes back with fewer rows, changed rows or none, however old it is; and in the same
    night contacts and billing customers change and identity merges two customers and
    splits a browser off a third (one dbt run for both keeps the suite's time)."""
    incremental, full_rebuild = _incremental_and_full_rebuild(
        copy_of_built_warehouse, full_rebuild_after, "reloaded_partitions", "people_changed"
    )

    assert _table_contents_differences(incremental, full_rebuild) == {}

    # ... and the reloads really changed the result (the comparison above is not vacuous)
    assert _query_results(
        incremental,
        {
            "ee_4_campaign": "select campaign_name from staging.stg_email__events where event_id = 'ee_4'",
            "ee_5_delivered": "select strftime(delivered_dt, '%Y-%m-%d') from staging.stg_email__events where event_id = 'ee_5'",
            "ee_8_copies": "select count(*) from staging.stg_email__events where event_id = 'ee_8'",
            "w_5_delivered": "select strftime(delivered_dt, '%Y-%m-%d') from staging.stg_web__events where message_id = 'w_5'",
            "w_2_path": "select page_path from staging.stg_web__events where message_id = 'w_2'",
            "w_6_copies": "select count(*) from staging.stg_web__events where message_id = 'w_6'",
            "phone_sessions": "select count(*) from marts.fct_web_sessions where visitor_id = 'a_ada_phone'",
            "in_ada_3_status": "select status from marts.fct_invoices where invoice_id = 'in_ada_3'",
            "ada_city": "select city from staging.stg_email__contacts where contact_id = 'ec_ada'",
            "bob_subscribed": "select is_subscribed from staging.stg_email__contacts where contact_id = 'ec_bob'",
            "dee_city": "select address_city from staging.stg_billing__customers where customer_id = 'cus_dee'",
            "eve_session_customers": "select string_agg(distinct customer_id) from marts.fct_web_sessions where visitor_id = 'a_eve'",
            "eve_email_customers": "select string_agg(distinct customer_id) from marts.fct_email_events where contact_id = 'ec_eve'",
            "bob_web_sessions": "select n_web_sessions from marts.customer_360 where customer_id = 'gc_bob'",
            "eve_in_360": "select count(*) from marts.customer_360 where customer_id = 'gc_eve'",
            "ada_browser_sessions": "select string_agg(customer_id, ',' order by started_at) from marts.fct_web_sessions where visitor_id = 'a_ada'",
            "eve_email_metrics": "select count(*) from intermediate.int_customer__email_metrics where customer_id = 'gc_eve'",
            "bob_email_contacts": "select n_email_contacts from intermediate.int_customer__email_metrics where customer_id = 'gc_bob'",
            "bob_bounces": "select n_bounces from intermediate.int_customer__email_metrics where customer_id = 'gc_bob'",
            "b_3_opened": "select campaigns_opened from intermediate.int_customer__email_metrics where customer_id = 'gc_b_3'",
            "b_4_email_events": "select string_agg(distinct customer_id) from marts.fct_email_events where contact_id = 'ec_b_4'",
            "b_4_email_metrics": "select count(*) from intermediate.int_customer__email_metrics where customer_id = 'gc_b_4'",
            "b_4_mail_clicked": "select campaigns_clicked from intermediate.int_customer__email_metrics where customer_id = 'gc_b_4_mail'",
            "b_7_subscribed": "select is_email_subscribed from intermediate.int_customer__email_metrics where customer_id = 'gc_b_7'",
        },
    ) == {
        # a changed row of a reloaded partition replaces the old one
        "ee_4_campaign": "September newsletter",
        # gone from its first delivery: its re-delivery wins
        "ee_5_delivered": "2026-09-13",
        # its only partition came back empty
        "ee_8_copies": 0,
        "w_5_delivered": "2026-10-12",
        "w_2_path": "/plans",
        "w_6_copies": 0,
        "phone_sessions": 0,
        # its paid version's partition came back empty: the open version is the latest
        "in_ada_3_status": "open",
        # her latest version's partition came back empty: the July version wins again
        "ada_city": "London",
        "bob_subscribed": False,
        "dee_city": "Dallas",
        # the merge: Eve's browser, email events and sessions belong to gc_bob, gc_eve is gone
        "eve_session_customers": "gc_bob",
        "eve_email_customers": "gc_bob",
        "bob_web_sessions": 1,
        "eve_in_360": 0,
        # the split: her anonymous views follow the browser, her signed-in session stays hers
        "ada_browser_sessions": "gc_ada_web,gc_ada",
        # the merge in the email metrics: gc_eve's row is gone, her contact and bounce are Bob's
        "eve_email_metrics": 0,
        "bob_email_contacts": 2,
        "bob_bounces": 1,
        # its one open vanished with its day, re-delivered empty
        "b_3_opened": 0,
        # the email split: the contact's events and metrics follow it to the new customer
        "b_4_email_events": "gc_b_4_mail",
        "b_4_email_metrics": 0,
        "b_4_mail_clicked": 1,
        # unsubscribed, with no email event changed
        "b_7_subscribed": False,
    }


def test_sessions_regroup_what_the_sessionised_model_replaced_over_several_runs(
    copy_of_built_warehouse,
    full_rebuild_after,
):
    """fct_web_sessions re-groups only the visitors int_web__events_sessionised replaced
    since it last ran, however many runs that spans: a run that stops after the
    sessionised model (here one that selects it alone) leaves its visitors recorded, the
    next run adds its own and the sessions mart catches up on all of them."""
    incremental = copy_of_built_warehouse("incremental")
    assert _visitors_to_regroup(incremental) == []  # the build consumed the first record

    execute_fixture(incremental, "late_data")
    assert_dbt_succeeded(
        run_dbt(incremental, incremental.parent, "run", "--select", "+int_web__events_sessionised")
    )
    # the three browsers with late or re-delivered events, and only they, are recorded
    assert _visitors_to_regroup(incremental) == ["a_ada", "a_anon", "a_eve"]
    execute_fixture(incremental, "people_changed")
    assert_dbt_succeeded(run_dbt(incremental, incremental.parent, "run"))
    assert _visitors_to_regroup(incremental) == []

    full_rebuild = full_rebuild_after("late_data", "people_changed")
    assert _table_contents_differences(incremental, full_rebuild) == {}
    # both nights reached the sessions: the late 09:55 view bridges Ada's two sessions on
    # her browser, which the split then gives to gc_ada_web; Eve's browser joins gc_bob
    sessions = {
        "ada_browser": "select string_agg(customer_id || ':' || n_events, ',' order by started_at) from marts.fct_web_sessions where visitor_id = 'a_ada'",
        "eve_customers": "select string_agg(distinct customer_id) from marts.fct_web_sessions where visitor_id = 'a_eve'",
    }
    assert _query_results(incremental, sessions) == _query_results(full_rebuild, sessions)


def test_sessionised_events_check_only_what_staging_replaced(
    copy_of_built_warehouse, full_rebuild_after
):
    """int_web__events_sessionised checks only the events stg_web__events replaced since it
    last ran (a run that stops after staging leaves them recorded), and re-sessionises only
    the visitors among them with a real change: staging also re-keeps its newest day's
    events, unchanged, every night. A warehouse without the record yet (built before it)
    records "every event" once, which finds no change where there is none."""
    incremental = copy_of_built_warehouse("incremental")
    _drop_run_state(incremental, WEB_EVENTS_TO_RESESSIONISE[0])
    assert_dbt_succeeded(
        run_dbt(incremental, incremental.parent, "run", "--select", "stg_web__events")
    )
    # one NULL, "every event" (with the events this run replaced: its newest day's)
    assert _recorded(incremental, WEB_EVENTS_TO_RESESSIONISE)[0] is None
    sessionised_alone = ("run", "--select", "int_web__events_sessionised")
    assert_dbt_succeeded(run_dbt(incremental, incremental.parent, *sessionised_alone))
    assert _recorded(incremental, WEB_EVENTS_TO_RESESSIONISE) == []
    assert _visitors_to_regroup(incremental) == []  # every event checked, none changed

    execute_fixture(incremental, "late_data")
    assert_dbt_succeeded(
        run_dbt(incremental, incremental.parent, "run", "--select", "stg_web__events")
    )
    recorded = _recorded(incremental, WEB_EVENTS_TO_RESESSIONISE)
    assert {"w_late_1", "w_late_2", "w_late_3", "w_1"} <= set(recorded)
    assert None not in recorded
    assert_dbt_succeeded(run_dbt(incremental, incremental.parent, *sessionised_alone))
    assert _recorded(incremental, WEB_EVENTS_TO_RESESSIONISE) == []
    # the three browsers with late or re-delivered events, and only they
    assert _visitors_to_regroup(incremental) == ["a_ada", "a_anon", "a_eve"]

    execute_fixture(incremental, "people_changed")
    assert_dbt_succeeded(run_dbt(incremental, incremental.parent, "run"))
    full_rebuild = full_rebuild_after("late_data", "people_changed")
    assert _table_contents_differences(incremental, full_rebuild) == {}


def test_sessions_regroup_every_visitor_after_the_sessionised_model_was_rebuilt_whole(
    copy_of_built_warehouse,
    full_rebuild_after,
):
    """A full rebuild of int_web__events_sessionised alone (here after late data) records
    "every visitor": the next incremental run re-groups all sessions, also those of a
    browser (a_anon) nothing else touches that night. That night the stitching snapshots
    are missing (a warehouse built before them): the sessionised model falls back to
    comparing every stitched event and still finds the merged and split browsers."""
    incremental = copy_of_built_warehouse("incremental")
    execute_fixture(incremental, "late_data")
    assert_dbt_succeeded(
        run_dbt(
            incremental,
            incremental.parent,
            "run",
            "--select",
            "+int_web__events_sessionised",
            "--full-refresh",
        )
    )
    assert _visitors_to_regroup(incremental) == [None]
    _drop_run_state(incremental, *STITCHING_SNAPSHOTS)
    execute_fixture(incremental, "people_changed")
    assert_dbt_succeeded(run_dbt(incremental, incremental.parent, "run"))
    assert _visitors_to_regroup(incremental) == []
    compiled = (
        incremental.parent / "target" / "compiled" / "cdp" / "models" / "intermediate"
    ) / "int_web__events_sessionised.sql"
    assert "changed_events as" in compiled.read_text()  # the fallback comparison ran

    full_rebuild = full_rebuild_after("late_data", "people_changed")
    assert _table_contents_differences(incremental, full_rebuild) == {}
    assert _query_results(
        incremental,
        {
            "anon_sessions": "select count(*) from marts.fct_web_sessions where visitor_id = 'a_anon'",
            "eve_customers": "select string_agg(distinct customer_id) from marts.fct_web_sessions where visitor_id = 'a_eve'",
            "snapshots": "select count(*) from information_schema.tables where table_schema = 'dbt_incremental' and table_name like 'web_stitching_%'",
        },
    ) == {"anon_sessions": 2, "eve_customers": "gc_bob", "snapshots": 2}


def _mrr(warehouse, customer_id: str, month: str) -> int | None:
    """A customer's MRR (US cents) at the end of `month` (YYYY-MM-01), None without a row."""
    return _query_results(
        warehouse,
        {
            "mrr": "select max(mrr_usd_cents) from intermediate.int_billing__customer_mrr_monthly "
            f"where customer_id = '{customer_id}' and month_start = date '{month}'"
        },
    )["mrr"]


def test_monthly_mrr_follows_changed_subscriptions_merges_and_the_as_of_date(
    copy_of_built_warehouse,
    full_rebuild_after,
):
    """int_billing__customer_mrr_monthly recomputes only the customers whose inputs moved:
    versions gone with a reloaded day, new and changed versions, a billing customer merged
    into another golden customer; then the as-of date moving within its month (a scheduled
    cancellation it passes, with no version changing), back, and into the next month. After
    each run the whole warehouse equals a full rebuild with the same as-of date."""
    incremental, full_rebuild = _incremental_and_full_rebuild(
        copy_of_built_warehouse, full_rebuild_after, "subscriptions_changed"
    )
    assert _table_contents_differences(incremental, full_rebuild) == {}
    # ... and the night really changed the MRR (the comparison above is not vacuous)
    assert _query_results(
        incremental,
        {
            # her 2500 downgrade vanished with its day
            "ada": "select mrr_usd_cents from intermediate.int_billing__customer_mrr_monthly where customer_id = 'gc_ada' and month_start = date '2026-10-01'",
            # canceled on 2026-10-13
            "dee": "select mrr_usd_cents from intermediate.int_billing__customer_mrr_monthly where customer_id = 'gc_dee' and month_start = date '2026-10-01'",
            # 2500 usd + 2000 eur at 1.0713
            "b_3": "select mrr_usd_cents from intermediate.int_billing__customer_mrr_monthly where customer_id = 'gc_b_3' and month_start = date '2026-10-01'",
            # cus_b_9's 1500 joined gc_b_12's past_due 1000; gc_b_9 has no row left
            "b_12": "select mrr_usd_cents from intermediate.int_billing__customer_mrr_monthly where customer_id = 'gc_b_12' and month_start = date '2026-10-01'",
            # the merge moved cus_b_9's invoices too
            "b_9_invoices": "select string_agg(distinct customer_id) from marts.fct_invoices where billing_customer_id = 'cus_b_9'",
            "b_9_rows": "select count(*) from intermediate.int_billing__customer_mrr_monthly where customer_id = 'gc_b_9'",
        },
    ) == {
        "ada": 3000,
        "dee": 0,
        "b_3": 4643,
        "b_12": 2500,
        "b_9_rows": 0,
        "b_9_invoices": "gc_b_12",
    }

    # only the as-of date and the MRR are rebuilt from here on, on both sides (the rest of
    # the two warehouses is equal, as just compared): the suite's time
    mrr = ("--select", "int_as_of_date", "int_billing__customer_mrr_monthly")
    for as_of_date, b_6_october in (("2026-10-25", 0), ("2026-10-18", 2000), ("2026-11-03", 0)):
        as_of = f"{{as_of_date: '{as_of_date}'}}"
        assert_dbt_succeeded(run_dbt(incremental, incremental.parent, "run", *mrr, "--vars", as_of))
        assert_dbt_succeeded(
            run_dbt(
                full_rebuild, full_rebuild.parent, "run", *mrr, "--full-refresh", "--vars", as_of
            )
        )
        assert _table_contents_differences(incremental, full_rebuild) == {}, as_of_date
        # the scheduled cancellation counts from 2026-10-20 on
        assert _mrr(incremental, "gc_b_6", "2026-10-01") == b_6_october, as_of_date
    assert _mrr(incremental, "gc_b_6", "2026-11-01") == 0
    assert _mrr(incremental, "gc_b_12", "2026-11-01") == 2500


def test_email_marts_catch_up_on_what_was_recorded_over_several_runs(
    copy_of_built_warehouse, full_rebuild_after
):
    """fct_email_events re-joins only the events stg_email__events replaced since it last
    ran, and int_customer__email_metrics re-aggregates only the customers whose rows
    fct_email_events replaced since it last ran, however many runs that spans: runs that
    stop after staging, then after fct_email_events, leave their keys recorded and the next
    night catches up. That night the email mapping snapshot is missing (a warehouse built
    before it): fct_email_events re-joins every event once, and still finds the merge."""
    incremental = copy_of_built_warehouse("incremental")
    assert _recorded(incremental, EVENTS_TO_REJOIN) == []
    execute_fixture(incremental, "late_data")
    assert_dbt_succeeded(
        run_dbt(incremental, incremental.parent, "run", "--select", "stg_email__events")
    )
    # the events of the reprocessed deliveries (new 10-15, backfilled 09-11, newest 10-08)
    assert _recorded(incremental, EVENTS_TO_REJOIN) == [
        "ee_10", "ee_11", "ee_12", "ee_4", "ee_5", "ee_8", "ee_9", "ee_late_1",
    ]  # fmt: skip
    assert_dbt_succeeded(
        run_dbt(incremental, incremental.parent, "run", "--select", "fct_email_events")
    )
    assert _recorded(incremental, EVENTS_TO_REJOIN) == []
    assert _recorded(incremental, EMAIL_CUSTOMERS_TO_REGROUP) == ["gc_ada", "gc_bob", "gc_eve"]

    _drop_run_state(incremental, EMAIL_IDENTITIES_SNAPSHOT)
    execute_fixture(incremental, "people_changed")
    assert_dbt_succeeded(run_dbt(incremental, incremental.parent, "run"))
    for record in (EVENTS_TO_REJOIN, EMAIL_CUSTOMERS_TO_REGROUP):
        assert _recorded(incremental, record) == []
    compiled = incremental.parent / "target" / "compiled" / "cdp" / "models" / "marts"
    fct = (compiled / "fct_email_events.sql").read_text()
    assert "changed_events as" in fct and EMAIL_IDENTITIES_SNAPSHOT not in fct

    full_rebuild = full_rebuild_after("late_data", "people_changed")
    assert _table_contents_differences(incremental, full_rebuild) == {}
    assert _query_results(
        incremental,
        {
            "eve_events": "select string_agg(distinct customer_id) from marts.fct_email_events where contact_id = 'ec_eve'",
            "eve_opened": "select campaigns_opened from intermediate.int_customer__email_metrics where customer_id = 'gc_bob'",
            "snapshot": f"select count(*) from {EMAIL_IDENTITIES_SNAPSHOT} where contact_id = 'ec_eve' and customer_id = 'gc_bob'",
        },
    ) == {"eve_events": "gc_bob", "eve_opened": 1, "snapshot": 1}


def test_email_marts_redo_everything_after_a_whole_rebuild_upstream(
    copy_of_built_warehouse, full_rebuild_after
):
    """A whole rebuild of stg_email__events alone records "every event": the next
    fct_email_events run re-joins them all; a whole rebuild of fct_email_events alone
    records "every customer": the next int_customer__email_metrics run re-aggregates them
    all. Either way the night after equals a full rebuild."""
    incremental = copy_of_built_warehouse("incremental")
    execute_fixture(incremental, "late_data")
    for selection in (("stg_email__events", "--full-refresh"), ("fct_email_events",)):
        assert_dbt_succeeded(
            run_dbt(incremental, incremental.parent, "run", "--select", *selection)
        )
        if selection[-1] == "--full-refresh":
            assert _recorded(incremental, EVENTS_TO_REJOIN) == [None]
    assert _recorded(incremental, EVENTS_TO_REJOIN) == []
    # every customer with an email event was replaced
    assert len(_recorded(incremental, EMAIL_CUSTOMERS_TO_REGROUP)) == 43
    assert_dbt_succeeded(
        run_dbt(
            incremental, incremental.parent, "run", "--select", "fct_email_events", "--full-refresh"
        )
    )
    assert _recorded(incremental, EMAIL_CUSTOMERS_TO_REGROUP) == [None]
    execute_fixture(incremental, "people_changed")
    assert_dbt_succeeded(run_dbt(incremental, incremental.parent, "run"))
    for record in (EVENTS_TO_REJOIN, EMAIL_CUSTOMERS_TO_REGROUP):
        assert _recorded(incremental, record) == []
    assert _compiled_incrementally(incremental)

    full_rebuild = full_rebuild_after("late_data", "people_changed")
    assert _table_contents_differences(incremental, full_rebuild) == {}


def test_invoices_follow_recorded_invoices_and_changed_fx_rates(
    copy_of_built_warehouse, full_rebuild_after
):
    """int_billing__invoices re-joins the invoices stg_billing__invoices replaced since it
    last ran (over several runs), and the invoices of a currency whose rate changed with no
    invoice changing; fct_invoices re-reads what int_billing__invoices replaced. After the
    night the whole warehouse equals a full rebuild."""
    incremental = copy_of_built_warehouse("incremental")
    execute_fixture(incremental, "late_data")
    assert_dbt_succeeded(
        run_dbt(incremental, incremental.parent, "run", "--select", "stg_billing__invoices")
    )
    rejoin = _recorded(incremental, INVOICES_TO_REJOIN)
    # the re-sent refund and the new invoice (and the newest delivery's invoices)
    assert {"in_ada_3", "in_bob_1"} <= set(rejoin)
    assert_dbt_succeeded(
        run_dbt(incremental, incremental.parent, "run", "--select", "int_billing__invoices")
    )
    assert _recorded(incremental, INVOICES_TO_REJOIN) == []
    assert _recorded(incremental, INVOICES_TO_REGROUP) == rejoin
    execute_fixture(incremental, "fx_rate_changed")
    assert_dbt_succeeded(run_dbt(incremental, incremental.parent, "run"))
    for record in (INVOICES_TO_REJOIN, INVOICES_TO_REGROUP):
        assert _recorded(incremental, record) == []
    assert _compiled_incrementally(incremental)

    full_rebuild = full_rebuild_after("late_data", "fx_rate_changed")
    assert _table_contents_differences(incremental, full_rebuild) == {}
    assert _query_results(
        incremental,
        {
            "in_bob_1": "select customer_id from marts.fct_invoices where invoice_id = 'in_bob_1'",
            "eur_usd_cents": "select net_revenue_usd_cents from marts.fct_invoices where invoice_id = 'in_dee_eur'",
        },
    ) == {"in_bob_1": "gc_dee", "eur_usd_cents": 5500}
