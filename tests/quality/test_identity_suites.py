"""Identity suites: exactly-once mapping, junk values as links, cardinality limits."""

from __future__ import annotations

import duckdb
import pytest

from quality.runner import run_suite
from quality.suites import suite_by_name


@pytest.fixture
def identity_warehouse():
    con = duckdb.connect(":memory:")
    con.execute("CREATE SCHEMA identity")
    con.execute(
        "CREATE TABLE identity.identity_records (source_system VARCHAR, source_record_id VARCHAR, "
        "email VARCHAR, email_key VARCHAR, phone_e164 VARCHAR, user_id VARCHAR)"
    )
    con.execute(
        "CREATE TABLE identity.customer_map (source_system VARCHAR, source_record_id VARCHAR, "
        "customer_id VARCHAR, match_rule VARCHAR, match_weight DOUBLE, matched_record VARCHAR)"
    )
    con.execute(
        "CREATE TABLE identity.golden_customers (customer_id VARCHAR, email VARCHAR, phone VARCHAR)"
    )
    con.execute(
        """INSERT INTO identity.identity_records VALUES
        ('email', 'c1', 'ada@x.io', 'ada@x.io', '+447700900001', NULL),
        ('billing', 'cus_1', 'ada@x.io', 'ada@x.io', NULL, 'u1'),
        ('web', 'anon_1', NULL, NULL, NULL, 'u2'),
        ('web', 'anon_2', NULL, NULL, NULL, 'u3'),
        ('email', 'c2', 'test@test.com', 'test@test.com', NULL, NULL),
        ('email', 'c3', 'test@test.com', 'test@test.com', NULL, NULL),
        ('email', 'c_unmapped', 'bob@x.io', 'bob@x.io', NULL, NULL),
        ('email', 'c_twice', 'eve@x.io', 'eve@x.io', NULL, NULL)"""
    )
    con.execute(
        """INSERT INTO identity.customer_map VALUES
        ('email', 'c1', 'g1', 'singleton', NULL, NULL),
        ('billing', 'cus_1', 'g1', 'email_key', NULL, 'email:c1'),
        ('web', 'anon_1', 'g1', 'probabilistic', 12.5, 'billing:cus_1'),
        ('web', 'anon_2', 'g1', 'probabilistic', 11.0, 'web:anon_1'),
        ('email', 'c2', 'g2', 'singleton', NULL, NULL),
        ('email', 'c3', 'g2', 'email_key', NULL, 'email:c2'),
        ('email', 'c_twice', 'g3', 'singleton', NULL, NULL),
        ('email', 'c_twice', 'g4', 'singleton', NULL, NULL)"""
    )
    con.execute(
        """INSERT INTO identity.golden_customers VALUES
        ('g1', 'ada@x.io', '+447700900001'), ('g2', 'test@test.com', NULL),
        ('g3', 'eve@x.io', NULL), ('g4', 'eve@x.io', '07700 900001')"""
    )
    # When the identity step last rewrote each row (docs/data-model.md).
    for table in ("customer_map", "golden_customers"):
        con.execute(
            f"ALTER TABLE identity.{table} ADD COLUMN updated_at TIMESTAMP "
            "DEFAULT TIMESTAMP '2026-10-01 02:00:00'"
        )
    yield con
    con.close()


def failed(verdict):
    return {(r.expectation_type, r.column): r for r in verdict.results if not r.success}


def test_every_identity_record_is_mapped_exactly_once(identity_warehouse, docs_dir):
    verdict = run_suite(
        identity_warehouse, suite_by_name("identity_customer_map__coverage"), docs_dir
    )
    assert not verdict.success and verdict.partition_dt is None
    times = failed(verdict)[("expect_column_values_to_be_between", "_times_mapped")]
    assert times.unexpected_count == 2
    assert {(e["source_record_id"], e["_times_mapped"]) for e in times.examples} == {
        ("c_unmapped", 0),
        ("c_twice", 2),
    }


def test_junk_value_used_as_link_is_an_error(identity_warehouse, docs_dir):
    verdict = run_suite(identity_warehouse, suite_by_name("identity_customer_map__links"), docs_dir)
    problems = failed(verdict)
    blocked = problems[("expect_column_values_to_be_null", "_blocked_link_value")]
    assert blocked.unexpected_count == 1
    # Shown masked (quality/masking.py): the shape of the junk value, not the value.
    assert blocked.examples[0]["_blocked_link_value"] == "email:t***@t***.com"
    assert blocked.examples[0]["source_record_id"] == "c3"
    assert ("expect_compound_columns_to_be_unique", None) in problems  # c_twice twice


def test_cardinality_limits_per_golden_customer(identity_warehouse, docs_dir):
    # g1 holds three product user ids (u1, u2, u3): two would be a duplicate signup, three
    # a shared or junk identifier.
    verdict = run_suite(
        identity_warehouse, suite_by_name("identity_golden_customers__errors"), docs_dir
    )
    problems = failed(verdict)
    user_ids = problems[("expect_column_values_to_be_between", "_distinct_user_ids")]
    assert user_ids.unexpected_count == 1 and user_ids.examples[0]["customer_id"] == "g1"
    phone = problems[("expect_column_values_to_match_regex", "phone")]
    assert phone.examples[0]["phone"] == "*** *** 00 01"  # 07700 900001, masked
    assert set(problems) == {
        ("expect_column_values_to_be_between", "_distinct_user_ids"),
        ("expect_column_values_to_match_regex", "phone"),
    }
