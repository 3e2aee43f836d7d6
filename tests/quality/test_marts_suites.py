"""Marts suites: the cross-layer checks dbt cannot express (keys, values and revenue are dbt tests)."""

from __future__ import annotations

import duckdb
import pytest

from quality.runner import run_suite
from quality.suites import suite_by_name


@pytest.fixture
def marts_warehouse():
    con = duckdb.connect(":memory:")
    con.execute("CREATE SCHEMA marts")
    con.execute(
        """CREATE TABLE marts.fct_invoices AS SELECT * FROM (VALUES
        ('in_1', 'cus_1', 'g1', 'paid', 800),
        ('in_2', 'cus_1', 'g1', 'open', 0),
        ('in_3', 'cus_2', 'g2', 'paid', 600))
        AS t(invoice_id, billing_customer_id, customer_id, status, net_revenue_cents)"""
    )
    yield con
    con.close()


def test_invoice_of_an_unknown_billing_customer_is_a_warning_not_an_error(
    marts_warehouse, docs_dir
):
    # fct_invoices documents customer_id NULL when identity does not know the billing
    # customer yet (e.g. the invoice arrived before its customer): reported, not blocking.
    marts_warehouse.execute(
        "INSERT INTO marts.fct_invoices VALUES ('in_9', 'cus_new', NULL, 'paid', 100)"
    )
    warning = run_suite(marts_warehouse, suite_by_name("marts_fct_invoices__warnings"), docs_dir)
    assert warning.severity == "WARN" and not warning.success
    (unknown,) = warning.failed
    assert unknown.examples[0] == {
        "customer_id": None,
        "invoice_id": "in_9",
        "billing_customer_id": "cus_new",
    }
