"""Raw-table suites on hand-built partitions: verdicts, unexpected counts, example values."""

from __future__ import annotations

import json
from datetime import date

import pytest

from quality.runner import run_suite
from quality.suites import SUITES, suite_by_name, suites_for_table

DAY = date(2026, 10, 1)
NEXT_DAY = date(2026, 10, 2)
INVOICES_ERRORS = suite_by_name("raw_billing_invoices__errors")
INVOICES_WARNINGS = suite_by_name("raw_billing_invoices__warnings")


def invoice(
    invoice_id,
    *,
    status="paid",
    currency="eur",
    due=1000,
    paid=1000,
    refunded=0,
    created="2026-09-30 10:00:00",
    updated="2026-09-30 10:00:00",
    product="pro",
):
    return (
        invoice_id,
        "cus_1",
        "sub_1",
        status,
        currency,
        due,
        paid,
        refunded,
        product,
        created,
        updated,
        None,
    )


def result_for(verdict, expectation_type, column):
    matches = [
        r for r in verdict.results if r.expectation_type == expectation_type and r.column == column
    ]
    assert len(matches) == 1, f"expected one {expectation_type} on {column}, got {matches}"
    return matches[0]


def test_catalogue_covers_every_raw_table_with_an_error_suite():
    raw_tables = {
        "raw.email_contacts",
        "raw.email_events",
        "raw.billing_customers",
        "raw.billing_invoices",
        "raw.billing_subscriptions",
        "raw.web_events",
    }
    for table in raw_tables:
        specs = suites_for_table(table)
        assert specs and specs[0].severity == "ERROR" and all(s.partitioned for s in specs)
    assert all(spec.description and "\n" not in spec.description for spec in SUITES)
    assert {s.severity for s in SUITES} == {"ERROR", "WARN"}


def test_clean_partition_passes(warehouse, insert_raw, docs_dir):
    insert_raw(
        warehouse,
        "raw.billing_invoices",
        DAY,
        [invoice("in_1"), invoice("in_2", status="open", paid=0)],
    )
    verdict = run_suite(warehouse, INVOICES_ERRORS, docs_dir, DAY)
    assert verdict.success, verdict.markdown_table()
    assert verdict.rows_evaluated == 2 and verdict.error is None and not verdict.sampled
    assert run_suite(warehouse, INVOICES_WARNINGS, docs_dir, DAY).success


def test_bad_invoices_fail_the_error_suite_with_counts_and_examples(
    warehouse, insert_raw, docs_dir
):
    insert_raw(
        warehouse,
        "raw.billing_invoices",
        DAY,
        [
            invoice("in_ok"),
            invoice("in_negative", due=-500, paid=0),
            invoice("in_enum", status="refunded"),
            invoice("in_currency", currency="EUR"),
            invoice("in_future", created="2026-10-05 09:00:00", updated="2026-10-05 09:00:00"),
            invoice("in_ancient", created="1999-12-31 23:00:00"),
            # Late but plausible: the end of the day after the delivery day is allowed.
            invoice("in_late_ok", created="2026-10-02 23:59:00", updated="2026-10-02 23:59:00"),
        ],
    )
    verdict = run_suite(warehouse, INVOICES_ERRORS, docs_dir, DAY)

    assert not verdict.success and verdict.severity == "ERROR" and verdict.rows_evaluated == 7
    negative = result_for(verdict, "expect_column_values_to_be_between", "amount_due_cents")
    assert negative.unexpected_count == 1
    assert negative.examples[0]["amount_due_cents"] == -500
    assert negative.examples[0]["invoice_id"] == "in_negative"
    assert negative.examples[0]["_line_number"] == 3

    status = result_for(verdict, "expect_column_values_to_be_in_set", "status")
    assert (status.unexpected_count, status.examples[0]["status"]) == (1, "refunded")
    currency = result_for(verdict, "expect_column_values_to_match_regex", "currency")
    assert (currency.unexpected_count, currency.examples[0]["currency"]) == (1, "EUR")

    timestamps = result_for(verdict, "expect_column_values_to_be_null", "_implausible_timestamp")
    assert timestamps.unexpected_count == 2
    assert {(e["invoice_id"], e["_implausible_timestamp"]) for e in timestamps.examples} == {
        ("in_future", "created_at=2026-10-05 09:00:00"),
        ("in_ancient", "created_at=1999-12-31 23:00:00"),
    }
    assert timestamps.unexpected_percent == pytest.approx(100 * 2 / 7)

    metadata = verdict.to_metadata()
    json.dumps(metadata)  # must be plain JSON for Dagster metadata
    assert metadata["rows_evaluated"] == 7
    assert metadata["expectations_failed"] == len(verdict.failed) == 4
    assert "refunded" in metadata["results_markdown"]


def test_key_is_unique_after_latest_wins_dedup(warehouse, insert_raw, docs_dir):
    insert_raw(
        warehouse,
        "raw.billing_invoices",
        DAY,
        [
            # Re-sent with a new status and a later updated_at: a normal change, not a conflict.
            invoice("in_changed", status="open", paid=0, updated="2026-09-30 10:00:00"),
            invoice("in_changed", status="paid", updated="2026-09-30 12:00:00"),
            # Delivered twice, identical: at-least-once delivery, not a conflict.
            invoice("in_twice"),
            invoice("in_twice"),
            # Two different versions tie for the latest updated_at: dedup cannot choose.
            invoice("in_tie", status="paid", updated="2026-09-30 12:00:00"),
            invoice("in_tie", status="void", paid=0, updated="2026-09-30 12:00:00"),
        ],
    )
    verdict = run_suite(warehouse, INVOICES_ERRORS, docs_dir, DAY)
    conflict = result_for(verdict, "expect_column_values_to_be_null", "_conflicting_key")
    assert not conflict.success and conflict.unexpected_count == 2
    assert {e["invoice_id"] for e in conflict.examples} == {"in_tie"}
    assert [r.column for r in verdict.failed] == ["_conflicting_key"]


def test_conflict_with_an_earlier_day_is_caught_and_other_days_stay_clean(
    warehouse, insert_raw, docs_dir
):
    insert_raw(warehouse, "raw.billing_invoices", DAY, [invoice("in_x", status="paid")])
    insert_raw(
        warehouse,
        "raw.billing_invoices",
        NEXT_DAY,
        [invoice("in_x", status="void", paid=0), invoice("in_bad", due=-1)],
    )
    next_day = run_suite(warehouse, INVOICES_ERRORS, docs_dir, NEXT_DAY)
    conflict = result_for(next_day, "expect_column_values_to_be_null", "_conflicting_key")
    assert conflict.unexpected_count == 1 and conflict.examples[0]["invoice_id"] == "in_x"
    assert next_day.partition_dt == NEXT_DAY and next_day.rows_evaluated == 2

    # DAY's own row is also one of the tied versions, but the negative amount of NEXT_DAY
    # does not leak into DAY's verdict.
    first_day = run_suite(warehouse, INVOICES_ERRORS, docs_dir, DAY)
    assert [r.column for r in first_day.failed] == ["_conflicting_key"]


def test_email_format_is_a_warning_not_an_error(warehouse, insert_raw, docs_dir):
    def contact(cid, email):
        return (
            cid,
            email,
            "Ada",
            "Lovelace",
            None,
            "London",
            "GB",
            True,
            "2026-09-01 00:00:00",
            "2026-09-30 00:00:00",
        )

    insert_raw(
        warehouse,
        "raw.email_contacts",
        DAY,
        [contact("c1", "  Ada@Example.COM "), contact("c2", "not-an-email"), contact("c3", "a@b")],
    )
    suites = {s.name: s for s in suites_for_table("raw.email_contacts")}
    assert run_suite(warehouse, suites["raw_email_contacts__errors"], docs_dir, DAY).success
    warning = run_suite(warehouse, suites["raw_email_contacts__warnings"], docs_dir, DAY)
    assert warning.severity == "WARN" and not warning.success
    email = result_for(warning, "expect_column_values_to_match_regex", "email")
    assert email.unexpected_count == 2
    # Masked wherever they are shown: not-an-email and a@b
    assert {e["email"] for e in email.examples} == {"n***", "a***@b***"}


def test_email_events_enum_and_redelivery(warehouse, insert_raw, docs_dir):
    event = lambda eid, etype: (eid, "c1", "cmp1", "Launch", etype, "2026-09-30 08:00:00", None)  # noqa: E731
    insert_raw(warehouse, "raw.email_events", DAY, [event("e1", "open"), event("e2", "opened")])
    insert_raw(warehouse, "raw.email_events", NEXT_DAY, [event("e1", "open"), event("e2", "click")])
    spec = suite_by_name("raw_email_events__errors")

    first = run_suite(warehouse, spec, docs_dir, DAY)
    enum = result_for(first, "expect_column_values_to_be_in_set", "event_type")
    assert (enum.unexpected_count, enum.examples[0]["event_type"]) == (1, "opened")
    # e2 was re-delivered with another event type: an at-least-once duplicate must repeat
    # the same record. e1 arrived twice identically, which is fine.
    conflict = result_for(first, "expect_column_values_to_be_null", "_conflicting_key")
    assert conflict.unexpected_count == 1 and conflict.examples[0]["event_id"] == "e2"


def test_missing_table_gives_a_failed_verdict_not_an_exception(warehouse, insert_raw, docs_dir):
    verdict = run_suite(warehouse, suite_by_name("raw_web_events__errors"), docs_dir, DAY)
    assert not verdict.success and verdict.results == [] and verdict.rows_evaluated == 0
    assert "raw.web_events" in verdict.error and "materialise" in verdict.error
    assert "could not validate" in verdict.summary()


def test_missing_contract_column_fails(warehouse, insert_raw, docs_dir):
    warehouse.execute("ALTER TABLE raw.billing_invoices DROP COLUMN product")
    verdict = run_suite(warehouse, INVOICES_WARNINGS, docs_dir, DAY)  # plain frame, no join on it
    assert verdict.success  # the WARN suite does not look at `product`
    errors = run_suite(warehouse, INVOICES_ERRORS, docs_dir, DAY)
    assert not errors.success and "product" in (errors.error or "")


def test_big_partition_is_sampled_but_conflicts_stay_exact(warehouse, insert_raw, docs_dir):
    rows = [invoice(f"in_{i:04d}") for i in range(600)]
    rows.append(invoice("in_0007", status="void", paid=0))  # ties with in_0007 above
    rows.append(invoice("in_neg", due=-3))
    insert_raw(warehouse, "raw.billing_invoices", DAY, rows)
    verdict = run_suite(warehouse, INVOICES_ERRORS, docs_dir, DAY, sample_limit=100)
    assert verdict.sampled and verdict.rows_in_scope == 602
    assert verdict.rows_evaluated == 102  # 100 sampled + the 2 conflicting rows kept
    conflict = result_for(verdict, "expect_column_values_to_be_null", "_conflicting_key")
    assert conflict.unexpected_count == 2
    assert verdict.to_metadata()["sampled"] is True
