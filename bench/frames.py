"""DuckDB results into pandas: `.df()` against `warehouse_engine.frames.to_pandas` (Arrow).

    nice .venv/bin/python bench/frames.py WAREHOUSE.duckdb [--rounds 3]

On a built warehouse (read-only), the frames the identity step fetches for every record
on a nightly run, read from the identity tables a run left: the records' keys and match
columns, last run's customer and first-assignment time per record, last run's links.
Each query is fetched `--rounds` times both ways, alternating; prints the best wall
seconds of each and checks the two frames are equal (it stops if not). Writes bench/results/frames.json (or
--out).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402
import pandas as pd  # noqa: E402

from warehouse_engine.frames import to_pandas  # noqa: E402

QUERIES = {
    "records": "select record_key, source_system, source_record_id, user_id, email_key, "
    "phone_e164, blocked_values, shared_values from identity.identity_records order by record_key",
    "previous_ids": "select customer_id, first_assigned_at from identity.id_registry "
    "order by record_key",
    "previous_links": "select source_system || ':' || source_record_id as record_key, "
    "matched_record, match_rule, match_weight from identity.customer_map",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/frames.json")
    args = parser.parse_args(argv)
    con = duckdb.connect(str(args.warehouse), read_only=True)
    report: dict = {"warehouse": str(args.warehouse), "rounds": args.rounds, "queries": {}}
    for name, sql in QUERIES.items():
        seconds: dict[str, list[float]] = {"df": [], "to_pandas": []}
        frames = {}
        for _ in range(args.rounds):
            for way in seconds:
                clock = time.perf_counter()
                relation = con.sql(sql)
                frames[way] = relation.df() if way == "df" else to_pandas(relation)
                seconds[way].append(round(time.perf_counter() - clock, 3))
        pd.testing.assert_frame_equal(frames["to_pandas"], frames["df"], check_exact=True)
        rows, columns = frames["df"].shape
        report["queries"][name] = {"rows": rows, "columns": columns, "seconds": seconds}
        print(
            f"{name:<15} {rows:>10,} rows x {columns}: .df() best {min(seconds['df']):.2f} s, "
            f"to_pandas best {min(seconds['to_pandas']):.2f} s (equal frames)"
        )
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
