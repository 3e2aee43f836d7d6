"""What the timestamp grammar costs DuckDB's loader: typing 1,000,000 timestamp texts.

    nice .venv/bin/python bench/timestamp_rule.py

The typing of a TIMESTAMP column before and after the grammar both engines share
(`TIMESTAMP_PATTERN`, ingestion/column_typing.py): the bare cast, then the pattern check
plus the ':00' for texts without seconds, over the generator's four styles, one thread,
best of three. Writes bench/results/timestamp_rule.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from ingestion.column_typing import _typed_expr  # noqa: E402
from ingestion.contract import Column  # noqa: E402

ROWS = 1_000_000
BARE_CAST = "timezone('UTC', TRY_CAST(NULLIF(trim(s_x), '') AS TIMESTAMPTZ))"


def main() -> int:
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.execute(
        f"CREATE TABLE t AS SELECT CASE i % 4 WHEN 0 THEN '2026-10-12T08:00:00Z' "
        "WHEN 1 THEN '2026-10-12 08:00:00' WHEN 2 THEN '2026-10-12T22:47:24.123-05:00' "
        f"ELSE '2026-10-12T08:00:00+02:00' END AS s_x FROM range({ROWS}) r(i)"
    )
    result = {"rows": ROWS, "load_average_1min": round(os.getloadavg()[0], 2)}
    for name, expr in (
        ("bare_cast", BARE_CAST),
        ("grammar", _typed_expr(Column("x", "TIMESTAMP"))),
    ):
        runs = []
        for _ in range(3):
            cpu, wall = time.process_time(), time.perf_counter()
            con.execute(f"SELECT count({expr}) FROM t").fetchone()
            runs.append((time.process_time() - cpu, time.perf_counter() - wall))
        best = min(runs)
        result[name] = {"cpu_seconds": round(best[0], 3), "wall_seconds": round(best[1], 3)}
    extra = result["grammar"]["cpu_seconds"] - result["bare_cast"]["cpu_seconds"]
    result["extra_cpu_microseconds_per_value"] = round(extra / ROWS * 1e6, 3)
    print(
        f"{ROWS:,} timestamps: bare cast {result['bare_cast']['cpu_seconds']} CPU s, with the "
        f"grammar {result['grammar']['cpu_seconds']} CPU s (+{result['extra_cpu_microseconds_per_value']} "
        f"µs a value; load {result['load_average_1min']})"
    )
    out = REPO / "bench" / "results" / "timestamp_rule.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
