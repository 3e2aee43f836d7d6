"""Quality suites of the customer-experience tables (issue 12) on hand-built rows: the raw
ERROR and WARN suites of tickets and responses, and the marts reconciliation that holds
nps_by_segment's 'all' row to staging."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from ingestion.contract import SUPPORT_TICKETS, SURVEY_RESPONSES, create_table_sql
from quality.runner import run_suite
from quality.suites import suite_by_name, suites_for_table
from tests.quality.conftest import _insert_raw  # the same helper as the insert_raw fixture

DAY = date(2026, 10, 1)


@pytest.fixture
def warehouse():
    con = duckdb.connect(":memory:")
    con.execute("CREATE SCHEMA raw")
    for spec in (SUPPORT_TICKETS, SURVEY_RESPONSES):
        con.execute(create_table_sql(spec))
    yield con
    con.close()


def ticket(ticket_id, status="open", priority="normal", channel="email", satisfaction=None):
    created = "2026-09-30 10:00:00"
    return (
        ticket_id,
        "ada@example.com",
        "Ada",
        None,
        "Refund",
        status,
        priority,
        channel,
        created,
        "2026-09-30 11:00:00",
        None,
        None,
        satisfaction,
    )


def response(response_id, score=9, email="ada@example.com"):
    return (response_id, "nps-q4", email, score, "fine, thanks", "2026-09-30 10:00:00")


def result_for(verdict, column, expectation_type=None):
    (match,) = [
        r
        for r in verdict.results
        if r.column == column and expectation_type in (None, r.expectation_type)
    ]
    return match


def test_both_tables_have_error_and_warn_suites():
    for table in ("raw.support_tickets", "raw.survey_responses"):
        severities = [s.severity for s in suites_for_table(table)]
        assert severities[0] == "ERROR" and "WARN" in severities, table


def test_clean_days_pass(warehouse, docs_dir):
    _insert_raw(warehouse, "raw.support_tickets", DAY, [ticket("1"), ticket("2", "solved")])
    _insert_raw(warehouse, "raw.survey_responses", DAY, [response("r1"), response("r2", 0)])
    for name in (
        "raw_support_tickets__errors",
        "raw_support_tickets__warnings",
        "raw_survey_responses__errors",
        "raw_survey_responses__warnings",
    ):
        verdict = run_suite(warehouse, suite_by_name(name), docs_dir, DAY)
        assert verdict.success, (name, verdict.markdown_table())


def test_a_score_outside_0_to_10_in_raw_fails_the_error_suite(warehouse, docs_dir):
    """Defence in depth: ingestion rejects it, but a raw table written another way is caught."""
    _insert_raw(warehouse, "raw.survey_responses", DAY, [response("r1"), response("r2", 11)])
    verdict = run_suite(warehouse, suite_by_name("raw_survey_responses__errors"), docs_dir, DAY)
    assert not verdict.success
    score = result_for(verdict, "score", "expect_column_values_to_be_between")
    assert score.unexpected_count == 1 and score.examples[0]["response_id"] == "r2"


def test_a_redelivered_response_with_another_score_is_a_conflict(warehouse, docs_dir):
    _insert_raw(warehouse, "raw.survey_responses", DAY, [response("r1", 9), response("r1", 3)])
    verdict = run_suite(warehouse, suite_by_name("raw_survey_responses__errors"), docs_dir, DAY)
    assert not verdict.success
    assert result_for(verdict, "_conflicting_key").unexpected_count == 2


def test_a_helpdesks_own_values_are_a_warning_not_an_error(warehouse, docs_dir):
    _insert_raw(
        warehouse,
        "raw.support_tickets",
        DAY,
        [ticket("1", priority="P1", channel="Twitter", satisfaction="offered"), ticket("2")],
    )
    errors = run_suite(warehouse, suite_by_name("raw_support_tickets__errors"), docs_dir, DAY)
    assert errors.success, errors.markdown_table()
    warnings = run_suite(warehouse, suite_by_name("raw_support_tickets__warnings"), docs_dir, DAY)
    assert not warnings.success and warnings.severity == "WARN"
    for column in ("_priority", "_channel", "_satisfaction"):
        assert result_for(warnings, column).unexpected_count == 1, column


def _marts(con, all_row, staged_scores):
    con.execute("CREATE SCHEMA IF NOT EXISTS staging; CREATE SCHEMA IF NOT EXISTS marts")
    con.execute("CREATE TABLE staging.stg_surveys__responses (response_id VARCHAR, score INTEGER)")
    for i, score in enumerate(staged_scores):
        con.execute("INSERT INTO staging.stg_surveys__responses VALUES (?, ?)", [f"r{i}", score])
    con.execute(
        "CREATE TABLE marts.nps_by_segment (segment_type VARCHAR, segment_name VARCHAR, "
        "responses BIGINT, promoters BIGINT, passives BIGINT, detractors BIGINT, nps DOUBLE)"
    )
    con.execute("INSERT INTO marts.nps_by_segment VALUES ('all', 'all', ?, ?, ?, ?, 0)", all_row)


def test_the_nps_all_row_must_recount_staging(warehouse, docs_dir):
    suite = suite_by_name("marts_nps_by_segment__reconciliation")
    _marts(warehouse, [4, 2, 1, 1], [10, 9, 7, 0])
    assert run_suite(warehouse, suite, docs_dir).success

    con = duckdb.connect(":memory:")
    _marts(con, [3, 2, 0, 1], [10, 9, 7, 0])  # one response lost (say, an anonymous one)
    verdict = run_suite(con, suite, docs_dir)
    assert not verdict.success
    assert result_for(verdict, "_all_row_difference").unexpected_count == 1
