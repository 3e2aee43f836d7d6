"""Measure what a steward's unlink disturbs: A and B apart, every other record where it was.

    nice .venv/bin/python bench/steward_unlink.py --warehouse /tmp/cdp-nightly/warehouse/warehouse.duckdb

On a copy of a warehouse built by `cdp run` (e.g. the one bench/nightly.py keeps with
--workdir): picks the largest customer, unlinks its oldest record (A) and its newest (B)
through the same path as `cdp identity unlink` (identity.overrides.record_override),
re-resolves identity on the unchanged staging tables (what the next run does), and counts
records whose customer changed. Target (issue 11): A and B in different customers, < 0.1 %
of the other records moved. Writes bench/results/steward_unlink.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from identity.overrides import new_override, record_override  # noqa: E402
from identity.pipeline import resolve_identities  # noqa: E402

MAP = (
    "select source_system || ':' || source_record_id as record, customer_id "
    "from identity.customer_map"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cdp-unlink-") as tmp:
        copy = Path(tmp) / "warehouse.duckdb"
        shutil.copy(args.warehouse, copy)
        con = duckdb.connect(str(copy))
        before = dict(con.execute(MAP).fetchall())
        customer, size = con.execute(
            "select customer_id, count(*) from identity.customer_map group by 1 "
            "order by 2 desc, 1 limit 1"
        ).fetchall()[0]
        a, b = con.execute(
            "select arg_min(k, (first_assigned_at, k)), arg_max(k, (first_assigned_at, k)) from "
            "(select source_system || ':' || source_record_id as k, first_assigned_at "
            " from identity.customer_map where customer_id = ?)",
            [customer],
        ).fetchall()[0]
        overrides = Path(tmp) / "identity_overrides.csv"
        record_override(
            con, overrides, new_override("unlink", "bench", "bench: largest customer", a, b)
        )
        started = time.perf_counter()
        summary = resolve_identities(con, overrides_file=overrides)
        seconds = time.perf_counter() - started
        after = dict(con.execute(MAP).fetchall())
        con.close()
    members = {r for r, c in before.items() if c == customer}
    others = [r for r in before if r not in members]
    moved_others = sum(1 for r in others if after.get(r) != before[r])
    moved_members = sorted(r for r in members if after.get(r) != customer)
    report = {
        "warehouse": str(args.warehouse),
        "records": len(before),
        "customer": customer,
        "customer_records": size,
        "record_a": a,
        "record_b": b,
        "a_and_b_apart": after[a] != after[b],
        "a_keeps_the_customer_id": after[a] == customer,
        "records_split_off": len(moved_members),
        "other_records_moved": moved_others,
        "other_records_moved_share": round(moved_others / max(len(others), 1), 6),
        "target_share": 0.001,
        "split_customers_logged": summary.split_customers,
        "resolve_seconds": round(seconds, 1),
    }
    results = REPO / "bench" / "results" / "steward_unlink.json"
    results.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
