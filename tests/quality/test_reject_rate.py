"""The reject-rate ERROR suite: a mostly rejected delivery day is a broken export."""

from __future__ import annotations

from datetime import date

import duckdb

from quality.runner import run_suite
from quality.suites import suite_by_name


def _audit(con, rows):
    con.execute("create schema if not exists raw")
    con.execute(
        "create or replace table raw.load_audit (source_table varchar, dt date, source_file varchar, "
        "rows_read bigint, rows_loaded bigint, rows_rejected bigint, loaded_at timestamp)"
    )
    con.executemany(
        "insert into raw.load_audit values (?, ?, ?, ?, ?, ?, now())",
        [(t, d, f, read, read - rejected, rejected) for t, d, f, read, rejected in rows],
    )


def test_reject_rate_fails_only_the_broken_day(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    _audit(
        con,
        [
            ("billing_invoices", date(2026, 10, 1), "a.csv", 1000, 3),  # a few bad rows: fine
            ("billing_invoices", date(2026, 10, 2), "b.csv", 400, 400),  # every row rejected
            ("billing_invoices", date(2026, 10, 2), "c.csv", 100, 0),
            ("billing_invoices", date(2026, 10, 3), "d.csv", 12, 4),  # tiny day: noise
            ("email_events", date(2026, 10, 2), "e.csv", 10, 10),  # another table
        ],
    )
    spec = suite_by_name("raw_billing_invoices__reject_rate")
    assert spec.severity == "ERROR"

    verdict = run_suite(
        con, spec, tmp_path / "docs", partition_range=(date(2026, 10, 1), date(2026, 10, 3))
    )
    assert not verdict.success
    assert verdict.failed_partitions == [date(2026, 10, 2)]

    healthy = run_suite(con, spec, tmp_path / "docs", partition_dt=date(2026, 10, 1))
    assert healthy.success
