"""`dbt build` of the whole project on a small messy warehouse: every model, contract,
data test and unit test passes, and the marts say what the fixture data implies."""

from __future__ import annotations

import csv
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import pytest

from warehouse_engine.dbt_cli import DBT_PROJECT_DIR

MARTS = [
    "dim_customers",
    "customer_identity_map",
    "customer_360",
    "fct_invoices",
    "fct_mrr_movements",
    "fct_email_events",
    "fct_campaign_performance",
    "fct_web_sessions",
    "customer_segments",
    "customer_lifetime_value",
    "segment_summary",
    "retention_cohorts",
]


def test_build_runs_models_data_tests_and_unit_tests(built_warehouse):
    output = built_warehouse.build.output
    assert "ERROR=0" in output and "WARN=0" in output
    assert "unit_test" in output or "::" in output, "dbt build ran no unit tests"


@pytest.mark.parametrize("mart", MARTS)
def test_every_mart_has_rows(built_warehouse, mart):
    assert built_warehouse.scalar(f"select count(*) from marts.{mart}") > 0


def test_dim_customers_customer_id_is_unique_and_complete(built_warehouse):
    rows, distinct_ids = built_warehouse.query(
        "select count(*), count(distinct customer_id) from marts.dim_customers"
    )[0]
    assert (
        rows
        == distinct_ids
        == built_warehouse.scalar("select count(*) from identity.golden_customers")
    )


def test_revenue_reconciles_to_the_cent_with_raw_invoices_per_currency(built_warehouse):
    """Recomputed here from raw (latest version per invoice), independently of the dbt SQL."""
    latest_paid = """
        with latest as (
            select *, row_number() over (
                partition by invoice_id order by updated_at desc, _dt desc, _source_file desc, _line_number desc
            ) as version_rank
            from raw.billing_invoices
        )
        select * from latest where version_rank = 1 and lower(status) = 'paid'
    """
    expected = dict(
        built_warehouse.query(
            f"select lower(currency), sum(amount_paid_cents - amount_refunded_cents) "
            f"from ({latest_paid}) group by 1"
        )
    )
    # usd: in_ada_1 2000 + in_ada_2 (3000 - 500) + in_ada_3 3000 + cy 3000 + dee 2200 + ghost 700 + bulk
    assert expected["eur"] == 5000 and expected["usd"] > 16_400
    assert (
        dict(
            built_warehouse.query(
                "select currency, sum(net_revenue_cents) from marts.fct_invoices group by 1"
            )
        )
        == expected
    )


def test_revenue_reconciliation_names_the_billing_customers_that_differ(
    built_warehouse, copy_of_built_warehouse
):
    """The project's one revenue reconciliation (a dbt singular test) fails on a tampered
    mart with a row per billing customer and currency that differs. Runs the SQL the session
    build compiled, on a copy, so no second dbt invocation is needed."""
    compiled = next(
        (built_warehouse.path.parent / "target" / "compiled").rglob(
            "assert_revenue_reconciles_with_staging.sql"
        )
    ).read_text()
    warehouse = copy_of_built_warehouse("tampered")
    con = duckdb.connect(str(warehouse))
    try:
        assert con.execute(compiled).fetchall() == []
        (customer, currency) = con.execute(
            "select billing_customer_id, currency from marts.fct_invoices "
            "where net_revenue_cents > 0 order by invoice_id limit 1"
        ).fetchone()
        con.execute(
            "update marts.fct_invoices set net_revenue_cents = net_revenue_cents + 1 "
            "where billing_customer_id = ? and currency = ?",
            [customer, currency],
        )
        differences = con.execute(compiled).fetchall()
    finally:
        con.close()
    figures = {row[0] for row in differences}
    assert f"fct_invoices, {customer}, {currency}" in figures
    assert all(row[1] != row[2] or row[3] != row[4] for row in differences)


def test_cross_currency_totals_are_in_usd_cents(built_warehouse):
    rates = {
        row["currency"]: (Decimal(row["usd_per_unit"]), int(row["minor_unit_decimals"]))
        for row in csv.DictReader((DBT_PROJECT_DIR / "seeds" / "fx_rates_to_usd.csv").open())
    }
    invoices = built_warehouse.query(
        "select customer_id, currency, net_revenue_cents from marts.fct_invoices"
    )
    usd_per_customer: dict[str | None, int] = {}
    for customer_id, currency, cents in invoices:
        usd_per_unit, decimals = rates[currency]
        exact = cents * usd_per_unit * 100 / 10**decimals
        usd_cents = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        usd_per_customer[customer_id] = usd_per_customer.get(customer_id, 0) + usd_cents
    # Dee: 1000 + 1200 usd, and 5000 eur cents = 50 EUR at 1.0713 = 5356.5 -> 5357 US cents
    assert usd_per_customer["gc_dee"] == 2200 + 5357
    customer_360 = dict(
        built_warehouse.query(
            "select customer_id, lifetime_revenue_usd_cents from marts.customer_360 "
            "where lifetime_revenue_usd_cents <> 0"
        )
    )
    assert customer_360 == {c: v for c, v in usd_per_customer.items() if c is not None and v != 0}
    assert usd_per_customer[None] == 700  # in_ghost: a billing customer identity never saw
    assert built_warehouse.scalar(
        "select sum(revenue_usd_cents) from marts.segment_summary where segment_type = 'rfm_segment'"
    ) == sum(customer_360.values())


def test_anonymous_sessions_are_stitched_to_the_customer(built_warehouse):
    sessions = built_warehouse.query(
        """
        select visitor_id, session_number, customer_id, n_events
        from marts.fct_web_sessions where customer_id = 'gc_ada' order by visitor_id, session_number
        """
    )
    # 09:00, 09:10, 09:40 (exactly 30 min later: same session) | 31 min gap | 10:11 identify, 10:15
    assert sessions == [
        ("a_ada", 1, "gc_ada", 3),
        ("a_ada", 2, "gc_ada", 2),
        ("a_ada_phone", 1, "gc_ada", 1),
    ]
    assert (
        built_warehouse.scalar(
            "select customer_id from marts.fct_web_sessions where visitor_id = 'a_anon'"
        )
        is None
    )


def test_mrr_movements_classify_every_kind(built_warehouse):
    movements = built_warehouse.query(
        """
        select customer_id, strftime(month_start, '%Y-%m'), movement_type, mrr_change_usd_cents
        from marts.fct_mrr_movements where customer_id in ('gc_ada', 'gc_cy', 'gc_dee')
        order by customer_id, month_start
        """
    )
    assert movements == [
        ("gc_ada", "2026-08", "new", 2000),
        ("gc_ada", "2026-09", "expansion", 1000),
        ("gc_ada", "2026-10", "contraction", -500),
        ("gc_cy", "2026-08", "new", 1500),
        ("gc_cy", "2026-09", "churned", -1500),
        ("gc_dee", "2026-07", "new", 1000),
        ("gc_dee", "2026-08", "churned", -1000),
        ("gc_dee", "2026-10", "reactivation", 1200),
    ]


def test_segments_lifecycle_and_marketability(built_warehouse):
    by_customer = {
        row[0]: row[1:]
        for row in built_warehouse.query(
            "select customer_id, lifecycle_stage, churn_risk, is_email_marketable, rfm_segment "
            "from marts.customer_segments where customer_id in ('gc_ada', 'gc_bob', 'gc_cy', 'gc_eve')"
        )
    }
    assert by_customer["gc_ada"][:3] == ("active customer", "low", True)
    assert by_customer["gc_bob"] == (
        "subscriber",
        "not a customer",
        False,
        "No Purchases",
    )  # unsubscribed
    assert by_customer["gc_cy"][:2] == ("churned", "churned")  # canceled, bought nothing since
    assert by_customer["gc_eve"][0] == "lead"  # signed up on the web, never paid
    assert by_customer["gc_eve"][2] is False  # her last delivery attempt bounced


def test_as_of_date_is_the_latest_event_date_not_today(built_warehouse):
    assert (
        str(built_warehouse.scalar("select distinct as_of_date from marts.customer_segments"))
        == "2026-10-14"
    )


def test_marts_are_readable_by_name_with_their_contract_types(built_warehouse):
    con = duckdb.connect(str(built_warehouse.path), read_only=True)
    try:
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'marts' and table_name = 'fct_invoices'"
            ).fetchall()
        )
    finally:
        con.close()
    assert types["net_revenue_cents"] == "BIGINT" and types["revenue_month"] == "DATE"
    assert types["net_revenue_usd_cents"] == "BIGINT" and types["currency"] == "VARCHAR"
