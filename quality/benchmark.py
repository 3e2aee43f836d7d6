"""Time quality suite runs: `python -m quality.benchmark [--calls 5] [--big-rows 100000]`.

Builds raw.billing_invoices in an in-memory DuckDB, one delivery per day, each day
re-sending a quarter of the previous day's invoices (so the latest-wins conflict join
has work to do), then reports for the ERROR and WARN suites:

* the one-time cost: importing GX, then the first call (context, suite registration);
* the steady-state per-call median over `--calls` calls, on a small (500-row) partition
  and on a big (`--big-rows`) one;
* a 14-day backfill on small partitions: 14 one-day calls against one range call.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

FIRST_DAY = date(2026, 10, 1)
SMALL_ROWS = 500
BACKFILL_DAYS = 14

INVOICES_DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE OR REPLACE TABLE raw.billing_invoices (
    invoice_id VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, subscription_id VARCHAR,
    status VARCHAR, currency VARCHAR, amount_due_cents BIGINT, amount_paid_cents BIGINT,
    amount_refunded_cents BIGINT, product VARCHAR, created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL, paid_at TIMESTAMP,
    _dt DATE, _source_file VARCHAR, _line_number BIGINT, _loaded_at TIMESTAMP
);
"""


def build_invoices(con: duckdb.DuckDBPyConnection, rows_per_day: int, days: int) -> list[date]:
    """Fill raw.billing_invoices with `days` deliveries of `rows_per_day` healthy rows each."""
    con.execute(INVOICES_DDL)
    delivered = [FIRST_DAY + timedelta(days=i) for i in range(days)]
    for number, day in enumerate(delivered):
        offset = number * (rows_per_day * 3 // 4)
        con.execute(
            f"""
            INSERT INTO raw.billing_invoices
            SELECT 'in_' || (i + {offset}), 'cus_' || ((i + {offset}) % 50000), 'sub_' || (i % 9000),
                   ['draft', 'open', 'paid', 'void', 'uncollectible'][1 + ((i + {number}) % 5)::INT],
                   'eur', 1000 + i % 700, CASE WHEN (i + {number}) % 5 = 2 THEN 1000 + i % 700 ELSE 0 END,
                   0, 'pro',
                   TIMESTAMP '2026-09-01' + INTERVAL (i % 2000000) SECOND,
                   TIMESTAMP '{day}' + INTERVAL (i % 80000) SECOND, NULL,
                   DATE '{day}', 'billing/invoices/dt={day}/part-0.csv', i + 2, now()
            FROM range({rows_per_day}) AS t(i)
            """
        )
    return delivered


def _timed(function, *args, **kwargs) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def _cpu_timed(function, *args, **kwargs) -> tuple[float, float]:
    """Wall and CPU seconds: on a shared machine CPU time is the steadier of the two."""
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    function(*args, **kwargs)
    return time.perf_counter() - started_wall, time.process_time() - started_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5, help="warm calls per measurement")
    parser.add_argument("--big-rows", type=int, default=100_000)
    args = parser.parse_args()

    import_seconds, _ = _timed(importlib.import_module, "quality.runner")
    from quality.runner import run_suite
    from quality.suites import suites_for_table

    specs = suites_for_table("raw.billing_invoices")
    print(f"import quality.runner (GX, once per process): {import_seconds:.2f}s")

    with tempfile.TemporaryDirectory() as tmp:
        docs_dir = Path(tmp) / "quality_docs"
        for label, rows in (("small", SMALL_ROWS), ("big", args.big_rows)):
            con = duckdb.connect(":memory:")
            day = build_invoices(con, rows, 2)[-1]
            for spec in specs:
                first, verdict = _timed(run_suite, con, spec, docs_dir, day)
                warm = [_cpu_timed(run_suite, con, spec, docs_dir, day) for _ in range(args.calls)]
                wall = [w for w, _ in warm]
                print(
                    f"{label:5s} {spec.name:32s} rows={verdict.rows_evaluated:>7} "
                    f"expectations={len(verdict.results):>2} success={verdict.success} "
                    f"first={first:.2f}s median={statistics.median(wall):.3f}s "
                    f"(min {min(wall):.3f}, max {max(wall):.3f}; "
                    f"cpu median {statistics.median(c for _, c in warm):.3f}s; {args.calls} calls)"
                )
            con.close()

        con = duckdb.connect(":memory:")
        days = build_invoices(con, SMALL_ROWS, BACKFILL_DAYS)
        for spec in specs:
            per_day = sum(_timed(run_suite, con, spec, docs_dir, d)[0] for d in days)
            ranged, verdict = _timed(
                run_suite, con, spec, docs_dir, partition_range=(days[0], days[-1])
            )
            print(
                f"backfill {BACKFILL_DAYS} days x {SMALL_ROWS} rows {spec.name:32s} "
                f"{BACKFILL_DAYS} one-day calls={per_day:.2f}s one range call={ranged:.2f}s "
                f"(rows={verdict.rows_evaluated}, success={verdict.success})"
            )
        con.close()


if __name__ == "__main__":
    main()
