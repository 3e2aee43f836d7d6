"""Marts suites: revenue reconciliation with staging, keys and allowed values."""

from __future__ import annotations

import duckdb
import pytest

from quality.runner import run_suite
from quality.suites import suite_by_name


@pytest.fixture
def marts_warehouse():
    con = duckdb.connect(":memory:")
    con.execute("CREATE SCHEMA staging; CREATE SCHEMA marts")
    con.execute(
        """CREATE TABLE staging.stg_billing__invoices AS SELECT * FROM (VALUES
        ('in_1', 'cus_1', 'paid', 1000, 1000, 200),
        ('in_2', 'cus_1', 'open', 500, 0, 0),
        ('in_3', 'cus_2', 'paid', 700, 700, 0),
        ('in_4', 'cus_3', 'paid', 300, 300, 0))
        AS t(invoice_id, customer_id, status, amount_due_cents, amount_paid_cents, amount_refunded_cents)"""
    )
    con.execute(
        """CREATE TABLE marts.fct_invoices AS SELECT * FROM (VALUES
        ('in_1', 'cus_1', 'g1', 'paid', 800),
        ('in_2', 'cus_1', 'g1', 'open', 0),
        ('in_3', 'cus_2', 'g2', 'paid', 600))
        AS t(invoice_id, billing_customer_id, customer_id, status, net_revenue_cents)"""
    )
    con.execute(
        """CREATE TABLE marts.customer_segments AS SELECT * FROM (VALUES
        ('g1', 'active customer', 'Champions', 'low'),
        ('g2', 'dormant', 'No Purchases', 'not a customer'))
        AS t(customer_id, lifecycle_stage, rfm_segment, churn_risk)"""
    )
    yield con
    con.close()


def test_revenue_reconciliation_names_the_customers_that_differ(marts_warehouse, docs_dir):
    spec = suite_by_name("marts_fct_invoices__revenue_reconciliation")
    verdict = run_suite(marts_warehouse, spec, docs_dir)
    assert not verdict.success
    failed = {r.column: r for r in verdict.failed}
    revenue = failed["_net_revenue_difference_cents"]
    assert revenue.unexpected_count == 2
    assert {
        (e["billing_customer_id"], e["_net_revenue_difference_cents"]) for e in revenue.examples
    } == {("cus_2", -100), ("cus_3", -300)}
    count = failed["_invoice_count_difference"]
    assert count.unexpected_count == 1 and count.examples[0]["billing_customer_id"] == "cus_3"


def test_segment_and_stage_values_must_be_known(marts_warehouse, docs_dir):
    verdict = run_suite(marts_warehouse, suite_by_name("marts_customer_segments__errors"), docs_dir)
    assert [(r.column, r.unexpected_count) for r in verdict.failed] == [("lifecycle_stage", 1)]
    assert verdict.failed[0].examples[0] == {"lifecycle_stage": "dormant", "customer_id": "g2"}


def test_invoice_of_an_unknown_billing_customer_is_a_warning_not_an_error(
    marts_warehouse, docs_dir
):
    # fct_invoices documents customer_id NULL when identity does not know the billing
    # customer yet (e.g. the invoice arrived before its customer): reported, not blocking.
    marts_warehouse.execute(
        "INSERT INTO marts.fct_invoices VALUES ('in_9', 'cus_new', NULL, 'paid', 100)"
    )
    assert run_suite(marts_warehouse, suite_by_name("marts_fct_invoices__errors"), docs_dir).success
    warning = run_suite(marts_warehouse, suite_by_name("marts_fct_invoices__warnings"), docs_dir)
    assert warning.severity == "WARN" and not warning.success
    (unknown,) = warning.failed
    assert unknown.examples[0] == {
        "customer_id": None,
        "invoice_id": "in_9",
        "billing_customer_id": "cus_new",
    }
