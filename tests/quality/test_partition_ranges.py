"""Validating a range of `_dt` partitions in one pass: same verdict per row as day by day,
and the verdict names the days that failed."""

from __future__ import annotations

from datetime import date

import pytest

from quality.runner import PARTIAL_UNEXPECTED_COUNT, run_suite
from quality.suites import suite_by_name

DAY_1, DAY_2, DAY_3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
INVOICES_ERRORS = suite_by_name("raw_billing_invoices__errors")


def invoice(invoice_id, *, due=1000, created="2026-09-30 10:00:00", updated="2026-09-30 10:00:00"):
    return (
        invoice_id,
        "cus_1",
        "sub_1",
        "paid",
        "eur",
        due,
        due,
        0,
        "pro",
        created,
        updated,
        None,
    )


def failed_columns(verdict):
    return sorted(r.column for r in verdict.failed)


def test_range_with_one_bad_day_fails_and_names_that_day(warehouse, insert_raw, docs_dir):
    insert_raw(warehouse, "raw.billing_invoices", DAY_1, [invoice("in_1"), invoice("in_2")])
    insert_raw(
        warehouse, "raw.billing_invoices", DAY_2, [invoice("in_3"), invoice("in_bad", due=-5)]
    )
    insert_raw(warehouse, "raw.billing_invoices", DAY_3, [invoice("in_4")])

    verdict = run_suite(warehouse, INVOICES_ERRORS, docs_dir, partition_range=(DAY_1, DAY_3))

    assert not verdict.success and verdict.rows_evaluated == 5
    assert verdict.failed_partitions == [DAY_2]
    assert failed_columns(verdict) == ["amount_due_cents", "amount_paid_cents"]
    assert verdict.failed[0].examples[0]["invoice_id"] == "in_bad"
    assert verdict.partition_range == (DAY_1, DAY_3) and verdict.partition_dt is None
    assert "dt=2026-10-01..2026-10-03" in verdict.summary()
    assert "partitions 2026-10-02" in verdict.summary()
    metadata = verdict.to_metadata()
    assert metadata["partition_dt"] == "2026-10-01..2026-10-03"
    assert metadata["failed_partitions"] == ["2026-10-02"]
    assert metadata["partitions_in_scope"] == 3
    assert "dt=2026-10-01..2026-10-03" in str(verdict.docs_path)

    # The clean days pass on their own; the single-day call is a range of one.
    assert run_suite(warehouse, INVOICES_ERRORS, docs_dir, DAY_1).success
    day_2 = run_suite(warehouse, INVOICES_ERRORS, docs_dir, DAY_2)
    assert day_2.failed_partitions == [DAY_2] and day_2.partition_dt == DAY_2
    assert failed_columns(day_2) == failed_columns(verdict)


def test_future_timestamps_are_judged_against_each_rows_own_day(warehouse, insert_raw, docs_dir):
    # Two days after DAY_1 is in DAY_1's future, but plausible for a DAY_3 delivery.
    two_days_later = "2026-10-03 01:00:00"
    insert_raw(
        warehouse,
        "raw.billing_invoices",
        DAY_1,
        [invoice("in_early", created=two_days_later, updated=two_days_later)],
    )
    insert_raw(
        warehouse,
        "raw.billing_invoices",
        DAY_3,
        [invoice("in_late", created=two_days_later, updated=two_days_later)],
    )

    verdict = run_suite(warehouse, INVOICES_ERRORS, docs_dir, partition_range=(DAY_1, DAY_3))

    (timestamps,) = verdict.failed
    assert timestamps.column == "_implausible_timestamp" and timestamps.unexpected_count == 1
    assert timestamps.examples[0]["invoice_id"] == "in_early"
    assert verdict.failed_partitions == [DAY_1]


def test_failed_partitions_are_complete_beyond_the_examples_kept(warehouse, insert_raw, docs_dir):
    many_bad = [invoice(f"in_bad_{i:02d}", due=-1) for i in range(PARTIAL_UNEXPECTED_COUNT + 5)]
    insert_raw(warehouse, "raw.billing_invoices", DAY_1, many_bad)
    insert_raw(warehouse, "raw.billing_invoices", DAY_2, [invoice("in_ok")])
    insert_raw(warehouse, "raw.billing_invoices", DAY_3, [invoice("in_bad_late", due=-1)])

    verdict = run_suite(warehouse, INVOICES_ERRORS, docs_dir, partition_range=(DAY_1, DAY_3))

    due = next(r for r in verdict.failed if r.column == "amount_due_cents")
    assert due.unexpected_count == PARTIAL_UNEXPECTED_COUNT + 6
    assert verdict.failed_partitions == [DAY_1, DAY_3]


def test_a_wrong_column_type_fails_every_day_in_the_range(warehouse, insert_raw, docs_dir):
    insert_raw(warehouse, "raw.billing_invoices", DAY_1, [invoice("in_1")])
    insert_raw(warehouse, "raw.billing_invoices", DAY_2, [invoice("in_2")])
    warehouse.execute("ALTER TABLE raw.billing_invoices ALTER amount_due_cents TYPE VARCHAR")

    verdict = run_suite(warehouse, INVOICES_ERRORS, docs_dir, partition_range=(DAY_1, DAY_2))

    types = next(
        r for r in verdict.failed if r.expectation_type == "expect_table_columns_to_have_dtypes"
    )
    assert types.observed_value == "amount_due_cents is object (expected int64 or Int64)"
    assert verdict.failed_partitions == [DAY_1, DAY_2]


def test_range_and_day_are_exclusive_and_ordered(warehouse, docs_dir):
    with pytest.raises(ValueError, match="not both"):
        run_suite(warehouse, INVOICES_ERRORS, docs_dir, DAY_1, partition_range=(DAY_1, DAY_2))
    with pytest.raises(ValueError, match="ends before it starts"):
        run_suite(warehouse, INVOICES_ERRORS, docs_dir, partition_range=(DAY_2, DAY_1))


def test_whole_table_suites_ignore_the_range(docs_dir):
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute("CREATE SCHEMA marts")
    con.execute(
        "CREATE TABLE marts.fct_invoices AS SELECT 'in_1' AS invoice_id, "
        "'cus_1' AS billing_customer_id, 'g1' AS customer_id"
    )
    spec = suite_by_name("marts_fct_invoices__warnings")
    verdict = run_suite(con, spec, docs_dir, partition_range=(DAY_1, DAY_3))
    assert verdict.success and verdict.partition_range is None and verdict.scope == "whole_table"
