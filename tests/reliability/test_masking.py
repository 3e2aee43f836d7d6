"""Personal values are masked wherever the pipeline shows them, and the GX store is bounded.

Real GX validations (quality.runner.run_suite) on a real DuckDB raw table holding bad
emails: the check metadata Dagster gets, the stored validation results and the Data Docs
pages hold the masked examples, never the values. `cdp run` end to end is covered in
test_deliveries.py (the planted emails are searched for in Dagster's storage too).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from ingestion.load import ensure_raw_schema
from quality.masking import mask_value
from quality.runner import run_suite
from quality.suites import suite_by_name

DAY = date(2026, 10, 1)
BAD_EMAILS = ["ada.private@@example.com", "grace.private at example.org"]
SUITE = "raw_email_contacts__warnings"


@pytest.mark.parametrize(
    ("value", "column", "shown"),
    [
        ("jane.doe@gmail.com", "email", "j***@g***.com"),
        ("  Jane.Doe@Example.CO.UK ", "requester_email", "J***@E***.UK"),
        ("not-an-email", "email", "n***"),
        ("+1 415 555 1234", "phone", "+1 *** *** 12 34"),
        ("07700 900123", "requester_phone", "*** *** 01 23"),
        ("Ada Lovelace", "name", "A. L."),
        ("LOVELACE, ADA", "requester_name", "L. A."),
        ("12 Main Street", "address_line1", "*** (14 chars)"),
        ("cus_0012345678", "customer_id", "cus_0012345678"),
        ("2026-10-01T09:30:00Z", "created_at", "2026-10-01T09:30:00Z"),
        ("write to ada@example.com", "subject", "write to a***@e***.com"),
        (1234567, "amount_due_cents", 1234567),
        (
            {"contact_id": "c1", "email": "ada@example.com", "_dt": "2026-10-01"},
            "email",
            {"contact_id": "c1", "email": "a***@e***.com", "_dt": "2026-10-01"},
        ),
        ({"value": "ada@example.com", "count": 2}, "email", {"value": "a***@e***.com", "count": 2}),
    ],
)
def test_one_masking_function_for_every_kind_of_value(value, column, shown):
    assert mask_value(value, column) == shown


@pytest.fixture
def warehouse(tmp_path: Path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_raw_schema(con)
    for i, email in enumerate([*BAD_EMAILS, "fine@example.com"]):
        con.execute(
            "INSERT INTO raw.email_contacts VALUES (?, ?, 'Ada', 'Private', '+44 20 7946 0958', "
            "'London', 'GB', true, TIMESTAMP '2026-09-01', TIMESTAMP '2026-09-30', ?, "
            "'email/contacts/dt=2026-10-01/part-0.csv', ?, TIMESTAMP '2026-10-02')",
            [f"c{i}", email, DAY, i + 2],
        )
    yield con
    con.close()


def test_failing_emails_are_masked_in_check_metadata_the_gx_store_and_data_docs(
    warehouse, tmp_path
):
    docs = tmp_path / "quality_docs"
    verdict = run_suite(warehouse, suite_by_name(SUITE), docs, DAY)

    (email,) = [r for r in verdict.failed if r.column == "email"]
    assert email.unexpected_count == 2
    assert sorted(e["email"] for e in email.examples) == ["a***@e***.com", "g***"]
    assert {e["contact_id"] for e in email.examples} == {"c0", "c1"}  # ids stay
    metadata = json.dumps(verdict.to_metadata(), default=str)
    written = [p for p in docs.rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" for p in written) and any(p.suffix == ".html" for p in written)
    for text in [metadata, *(p.read_text(errors="replace") for p in written)]:
        for value in BAD_EMAILS:
            assert value not in text
    assert "a***@e***.com" in metadata


def test_the_gx_store_keeps_the_newest_results_per_suite(warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("CDP_GX_STORE_KEEP", "2")
    docs = tmp_path / "quality_docs"
    suite = suite_by_name(SUITE)
    for _ in range(4):
        run_suite(warehouse, suite, docs, DAY)
    other = suite_by_name("raw_email_contacts__errors")
    run_suite(warehouse, other, docs, DAY)

    store = docs / "_gx_store" / "validations"
    assert len(list((store / SUITE).rglob("*.json"))) == 2
    assert len(list((store / other.name).rglob("*.json"))) == 1
    # Emptied run folders go with their results.
    assert all(any(d.iterdir()) for d in (store / SUITE).rglob("*") if d.is_dir())
