"""The nightly identity run's per-customer bookkeeping in pandas: the way before, and now.

    nice .venv/bin/python bench/identity_bookkeeping.py <workdir>/warehouse/warehouse.duckdb

WAREHOUSE is a warehouse with identity.* tables (e.g. the one `bench/nightly.py --workdir`
leaves). On its tables, times (CPU seconds, best of `--repeat`) three steps of
`resolve_identities` that cost the number of customers or records, not the day's change,
as identity/ does them now and as it did before (the previous code, kept here):

- `read_created`: customer id -> creation time from id_registry and golden_customers
  (before: pandas Timestamps boxed one by one into the dict; now: datetime64 -> datetime);
- `created_table`: that dict as the `_identity_customer_created` frame (pd.to_datetime of
  the dict's values, before of Timestamps, now of datetimes);
- `untouched_refusals`: last run's refused merges between records a night leaves alone
  (before: a set of every untouched record key, two `isin`; now: the refusals' keys looked
  up in the record index). A night's untouched records are all but every 11th here.
Checks that both ways give the same result. Writes bench/results/identity_bookkeeping.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from identity.persistence import _created_at_by_id  # noqa: E402
from identity.provenance import rows_between  # noqa: E402


def _best(run, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        cpu = time.process_time()
        result = run()
        best = min(best, time.process_time() - cpu)
    return round(best, 3), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    con = duckdb.connect(str(args.warehouse), read_only=True)
    registry = con.sql(
        "select customer_id, min(customer_created_at) as created_at from identity.id_registry "
        "where customer_id is not null group by customer_id "
        "having min(customer_created_at) is not null"
    ).df()
    golden = con.sql(
        "select customer_id, created_at from identity.golden_customers "
        "where customer_id is not null and created_at is not null"
    ).df()
    keys = con.sql("select record_key from identity.identity_records order by record_key").df()[
        "record_key"
    ]
    refused = con.sql("select * from identity.refused_merges").df()
    con.close()
    untouched = np.ones(len(keys), dtype=bool)
    untouched[::11] = False

    def created_before():
        created = dict(zip(registry["customer_id"], registry["created_at"], strict=True))
        created.update(zip(golden["customer_id"], golden["created_at"], strict=True))
        return created

    def created_now():
        created = _created_at_by_id(registry)
        created.update(_created_at_by_id(golden))
        return created

    def untouched_before():
        chosen = set(keys[untouched])
        return refused[refused["record_a"].isin(chosen) & refused["record_b"].isin(chosen)]

    report: dict = {
        "warehouse": str(args.warehouse),
        "customers": len(golden),
        "records": len(keys),
        "refused_merges": len(refused),
        "load_average_before": round(os.getloadavg()[0], 2),
        "cpu_seconds_best_of": args.repeat,
    }
    steps = {}
    before, created_a = _best(created_before, args.repeat)
    now, created_b = _best(created_now, args.repeat)
    assert created_a.keys() == created_b.keys()
    assert all(pd.Timestamp(created_a[k]) == pd.Timestamp(created_b[k]) for k in created_a)
    steps["read_created"] = {"before": before, "now": now}
    before, frame_a = _best(lambda: pd.to_datetime(list(created_a.values())), args.repeat)
    now, frame_b = _best(lambda: pd.to_datetime(list(created_b.values())), args.repeat)
    assert (
        np.asarray(frame_a, dtype="datetime64[us]") == np.asarray(frame_b, dtype="datetime64[us]")
    ).all()
    steps["created_table"] = {"before": before, "now": now}
    before, rows_a = _best(untouched_before, args.repeat)
    now, rows_b = _best(lambda: rows_between(refused, keys, untouched), args.repeat)
    assert rows_a.equals(rows_b)
    steps["untouched_refusals"] = {"before": before, "now": now, "rows": len(rows_b)}
    report["cpu_seconds"] = steps
    report["total_cpu_seconds"] = {
        "before": round(sum(s["before"] for s in steps.values()), 3),
        "now": round(sum(s["now"] for s in steps.values()), 3),
    }
    report["load_average_after"] = round(os.getloadavg()[0], 2)
    out = REPO / "bench" / "results" / "identity_bookkeeping.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
