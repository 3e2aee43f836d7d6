"""Time one suite run on a generated 100k-row raw partition: `python -m quality.benchmark`.

Builds raw.billing_invoices in an in-memory DuckDB (ROWS rows in one `_dt`, plus a day of
history sharing half of the keys, so the latest-wins conflict join has work to do), then
runs the ERROR and WARN suites twice: the first run pays for the GX context and suite
registration, the second is the steady state of a long-lived Dagster step process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

from quality.runner import run_suite
from quality.suites import suites_for_table

DAY = date(2026, 10, 1)

INVOICES_DDL = """
CREATE SCHEMA raw;
CREATE TABLE raw.billing_invoices (
    invoice_id VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, subscription_id VARCHAR,
    status VARCHAR, currency VARCHAR, amount_due_cents BIGINT, amount_paid_cents BIGINT,
    amount_refunded_cents BIGINT, product VARCHAR, created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL, paid_at TIMESTAMP,
    _dt DATE, _source_file VARCHAR, _line_number BIGINT, _loaded_at TIMESTAMP
);
"""


def build_invoices(con: duckdb.DuckDBPyConnection, rows: int) -> None:
    con.execute(INVOICES_DDL)
    for day, offset, count in ((date(2026, 9, 30), 0, rows // 2), (DAY, rows // 4, rows)):
        con.execute(
            f"""
            INSERT INTO raw.billing_invoices
            SELECT 'in_' || (i + {offset}), 'cus_' || ((i + {offset}) % 50000), 'sub_' || (i % 9000),
                   ['draft', 'open', 'paid', 'void', 'uncollectible'][1 + (i % 5)::INT], 'eur',
                   1000 + i % 700, CASE WHEN i % 5 = 2 THEN 1000 + i % 700 ELSE 0 END, 0, 'pro',
                   TIMESTAMP '2026-09-01' + INTERVAL (i % 2000000) SECOND,
                   TIMESTAMP '{day}' + INTERVAL (i % 80000) SECOND, NULL,
                   DATE '{day}', 'billing/invoices/dt={day}/part-0.csv', i + 2, now()
            FROM range({count}) AS t(i)
            """
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    con = duckdb.connect(":memory:")
    build_invoices(con, args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        docs_dir = Path(tmp) / "quality_docs"
        for attempt in ("first run (cold context)", "second run (warm context)"):
            for spec in suites_for_table("raw.billing_invoices"):
                started = time.perf_counter()
                verdict = run_suite(con, spec, docs_dir, DAY)
                elapsed = time.perf_counter() - started
                print(
                    f"{attempt:27s} {spec.name:32s} rows={verdict.rows_evaluated:>7} "
                    f"expectations={len(verdict.results):>2} success={verdict.success} "
                    f"seconds={elapsed:.2f}"
                )


if __name__ == "__main__":
    main()
