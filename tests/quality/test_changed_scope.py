"""Nightly checks validate the rows a run rewrote, and keep whole-table guarantees exact.

`run_suite(changed_only=True)` on the identity and mart suites: row-level rules see the
rows rewritten since the suite's last passing validation, every exact whole-table SQL flag
(uniqueness, coverage, consistency) still sees the whole table, a failure stays in scope
until fixed, and a full resolution or a first run validates the whole table.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from quality.gx_context import quality_context
from quality.runner import run_suite
from quality.suites import suite_by_name

NIGHT_1 = "2026-10-01 02:00:00"
NIGHT_2 = "2026-10-02 02:00:00"
CUSTOMERS = 50


@pytest.fixture
def identity_warehouse():
    """A clean resolution of 50 customers (one email + one billing record each), written by
    an incremental run on night 1 (model trained earlier)."""
    con = duckdb.connect(":memory:")
    con.execute("CREATE SCHEMA identity")
    con.execute("CREATE SCHEMA marts")
    con.execute(f"""
        CREATE TABLE identity.identity_records AS
        SELECT s.source_system, s.source_system || '_' || i AS source_record_id,
               'p' || i || '@x.io' AS email_key, NULL::VARCHAR AS phone_e164,
               CASE WHEN s.source_system = 'billing' THEN 'u' || i END AS user_id
        FROM range({CUSTOMERS}) r(i), (VALUES ('email'), ('billing')) s(source_system)
    """)
    con.execute(f"""
        CREATE TABLE identity.customer_map AS
        SELECT source_system, source_record_id,
               'g' || split_part(source_record_id, '_', 2) AS customer_id,
               CASE WHEN source_system = 'email' THEN 'singleton' ELSE 'email_key' END
                   AS match_rule,
               NULL::DOUBLE AS match_weight,
               CASE WHEN source_system = 'billing'
                    THEN 'email:email_' || split_part(source_record_id, '_', 2) END
                   AS matched_record,
               TIMESTAMP '{NIGHT_1}' AS first_assigned_at, TIMESTAMP '{NIGHT_1}' AS updated_at
        FROM identity.identity_records
    """)
    con.execute(f"""
        CREATE TABLE identity.golden_customers AS
        SELECT 'g' || i AS customer_id, 'p' || i || '@x.io' AS email,
               '+4477009' || lpad(i::VARCHAR, 5, '0') AS phone,
               TIMESTAMP '{NIGHT_1}' AS updated_at
        FROM range({CUSTOMERS}) r(i)
    """)
    con.execute("CREATE TABLE marts.dim_customers AS SELECT * FROM identity.golden_customers")
    con.execute(f"""
        CREATE TABLE identity.model_parameters AS
        SELECT TIMESTAMP '2026-09-30 02:00:00' AS trained_at, TIMESTAMP '{NIGHT_1}' AS resolved_at
    """)
    yield con
    con.close()


def _night_2(con: duckdb.DuckDBPyConnection) -> None:
    """An incremental run on night 2 that resolved two new records into a new customer."""
    con.execute(f"UPDATE identity.model_parameters SET resolved_at = TIMESTAMP '{NIGHT_2}'")
    con.execute("""
        INSERT INTO identity.identity_records VALUES
        ('email', 'email_new', 'new@x.io', NULL, NULL),
        ('billing', 'billing_new', 'new@x.io', NULL, 'u_new')
    """)
    con.execute(f"""
        INSERT INTO identity.customer_map VALUES
        ('email', 'email_new', 'g_new', 'singleton', NULL, NULL,
         TIMESTAMP '{NIGHT_2}', TIMESTAMP '{NIGHT_2}'),
        ('billing', 'billing_new', 'g_new', 'email_key', NULL, 'email:email_new',
         TIMESTAMP '{NIGHT_2}', TIMESTAMP '{NIGHT_2}')
    """)
    con.execute(f"""
        INSERT INTO identity.golden_customers VALUES
        ('g_new', 'new@x.io', '+447700900999', TIMESTAMP '{NIGHT_2}')
    """)
    con.execute(
        "INSERT INTO marts.dim_customers SELECT * FROM identity.golden_customers "
        "WHERE customer_id = 'g_new'"
    )


def _failed(verdict):
    return {(r.expectation_type, r.column): r for r in verdict.results if not r.success}


@pytest.fixture
def validated_night_1(identity_warehouse, docs_dir):
    """Night 1's checks passed on the whole tables: they recorded what they covered."""
    for name in (
        "identity_customer_map__coverage",
        "identity_customer_map__links",
        "identity_golden_customers__errors",
        "marts_dim_customers__errors",
    ):
        verdict = run_suite(identity_warehouse, suite_by_name(name), docs_dir, changed_only=True)
        assert verdict.success and verdict.scope == "whole_table", verdict.summary()
    return identity_warehouse


def test_nightly_scope_is_the_rows_the_run_rewrote(validated_night_1, docs_dir):
    con = validated_night_1
    _night_2(con)
    verdict = run_suite(
        con, suite_by_name("identity_customer_map__links"), docs_dir, changed_only=True
    )
    assert verdict.success
    assert verdict.changed_since == datetime.fromisoformat(NIGHT_1)
    assert verdict.scope == "changed_since=20261001T020000.000000"
    assert verdict.rows_evaluated == 2 and verdict.rows_in_scope == 2 * CUSTOMERS + 2
    assert verdict.to_metadata()["changed_since"] == "2026-10-01T02:00:00"
    # The Data Docs say which rows were validated: the index's scope and the page itself.
    index = (docs_dir / "index.html").read_text()
    assert "changed_since=20261001T020000.000000" in index
    page = verdict.docs_path.read_text()
    assert "those rewritten after 2026-10-01T02:00:00" in page


def test_nightly_scope_catches_a_bad_changed_row(validated_night_1, docs_dir):
    con = validated_night_1
    _night_2(con)
    con.execute(
        "UPDATE identity.customer_map SET match_rule = 'guesswork' "
        "WHERE source_record_id = 'billing_new'"
    )
    con.execute(
        "UPDATE identity.golden_customers SET phone = '07700 900999' WHERE customer_id = 'g_new'"
    )
    links = run_suite(
        con, suite_by_name("identity_customer_map__links"), docs_dir, changed_only=True
    )
    assert not links.success and links.changed_since is not None
    rule = _failed(links)[("expect_column_values_to_be_in_set", "match_rule")]
    assert rule.unexpected_count == 1
    assert rule.examples[0]["source_record_id"] == "billing_new"

    golden = run_suite(
        con, suite_by_name("identity_golden_customers__errors"), docs_dir, changed_only=True
    )
    assert not golden.success and golden.rows_evaluated == 1
    assert _failed(golden)[("expect_column_values_to_match_regex", "phone")].unexpected_count == 1

    # The failure is not forgotten: the next night (nothing new rewritten) still sees it,
    # because only a passing validation moves the mark.
    again = run_suite(
        con, suite_by_name("identity_customer_map__links"), docs_dir, changed_only=True
    )
    assert not again.success and again.changed_since == datetime.fromisoformat(NIGHT_1)
    con.execute(
        "UPDATE identity.customer_map SET match_rule = 'email_key' "
        "WHERE source_record_id = 'billing_new'"
    )
    fixed = run_suite(
        con, suite_by_name("identity_customer_map__links"), docs_dir, changed_only=True
    )
    assert fixed.success
    assert quality_context(docs_dir).validated_version(
        "identity_customer_map__links"
    ) == datetime.fromisoformat(NIGHT_2)
    # A night that rewrote nothing and breaks nothing validates no row, and passes.
    quiet = run_suite(
        con, suite_by_name("identity_customer_map__links"), docs_dir, changed_only=True
    )
    assert quiet.success and quiet.rows_evaluated == 0
    assert quiet.changed_since == datetime.fromisoformat(NIGHT_2)


def test_table_level_violations_among_unchanged_rows_are_still_caught(validated_night_1, docs_dir):
    con = validated_night_1
    _night_2(con)
    # Rows no run rewrote tonight (night-1 times) that break whole-table guarantees: a
    # duplicated map key, a record no longer mapped, a duplicated golden id, a golden
    # customer missing from the mart.
    con.execute(f"""
        INSERT INTO identity.customer_map VALUES
        ('email', 'email_7', 'g8', 'singleton', NULL, NULL,
         TIMESTAMP '{NIGHT_1}', TIMESTAMP '{NIGHT_1}')
    """)
    con.execute("DELETE FROM identity.customer_map WHERE source_record_id = 'billing_3'")
    con.execute(f"""
        INSERT INTO identity.golden_customers VALUES
        ('g5', 'p5@x.io', '+447700900005', TIMESTAMP '{NIGHT_1}')
    """)
    con.execute("DELETE FROM marts.dim_customers WHERE customer_id = 'g9'")

    links = run_suite(
        con, suite_by_name("identity_customer_map__links"), docs_dir, changed_only=True
    )
    assert not links.success and links.changed_since is not None
    unique = _failed(links)[("expect_compound_columns_to_be_unique", None)]
    assert unique.unexpected_count == 2  # both rows of the duplicated key

    coverage = run_suite(
        con, suite_by_name("identity_customer_map__coverage"), docs_dir, changed_only=True
    )
    assert not coverage.success and coverage.changed_since is not None
    times = _failed(coverage)[("expect_column_values_to_be_between", "_times_mapped")]
    assert {e["source_record_id"] for e in times.examples} == {"billing_3", "email_7"}

    golden = run_suite(
        con, suite_by_name("identity_golden_customers__errors"), docs_dir, changed_only=True
    )
    assert not golden.success and golden.changed_since is not None
    assert ("expect_column_values_to_be_unique", "customer_id") in _failed(golden)

    dim = run_suite(con, suite_by_name("marts_dim_customers__errors"), docs_dir, changed_only=True)
    assert not dim.success and dim.changed_since is not None
    missing = _failed(dim)[("expect_column_values_to_be_in_set", "_in_mart")]
    assert missing.unexpected_count == 1 and missing.examples[0]["customer_id"] == "g9"


def test_a_full_resolution_or_a_first_check_validates_the_whole_table(identity_warehouse, docs_dir):
    con = identity_warehouse
    spec = suite_by_name("identity_customer_map__links")
    first = run_suite(con, spec, docs_dir, changed_only=True)
    assert first.success and first.changed_since is None
    assert first.rows_evaluated == 2 * CUSTOMERS  # nothing recorded yet: whole table
    _night_2(con)
    con.execute("UPDATE identity.model_parameters SET trained_at = resolved_at")
    full = run_suite(con, spec, docs_dir, changed_only=True)
    assert full.scope == "whole_table" and full.rows_evaluated == 2 * CUSTOMERS + 2
    # Without changed_only (a backfill, --full-identity, --full-refresh) always whole.
    whole = run_suite(con, spec, docs_dir)
    assert whole.scope == "whole_table" and whole.rows_evaluated == 2 * CUSTOMERS + 2
