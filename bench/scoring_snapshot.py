"""What a night's scoring snapshot costs: predictions/snapshot.sql on a built warehouse.

    .venv/bin/python bench/scoring_snapshot.py --warehouse <dir>/warehouse.duckdb [--repeat 3]
    .venv/bin/python bench/scoring_snapshot.py --warehouse ... --tree <other checkout>

The nightly scoring step (`predictions/customer_scores`) takes the point-in-time feature
snapshot of every golden customer as of the last day loaded, over all of raw: the one part
of a night that still grows with the history (docs/operations.md, *What a night costs*).
This times that query alone (read-only, DuckDB's 2 threads), `--repeat` times, and prints
wall and CPU seconds and the rows; `--tree` runs another checkout's `predictions` package
instead of this one (before/after pairs on the same warehouse, run alternately).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.append(str(REPO))  # after PYTHONPATH: a --tree's own predictions package comes first

from bench.process_usage import own_usage  # noqa: E402


def time_snapshot(warehouse: Path) -> dict:
    """One snapshot as of the warehouse's last loaded day (in this process)."""
    import duckdb

    from predictions.snapshot import DEFAULT_FX_RATES, loaded_history, snapshot_sql

    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        history = loaded_history(con)
        if history is None:
            raise SystemExit(f"{warehouse} holds no loaded landing days: run `cdp run` first")
        sql = snapshot_sql(history.last_day, DEFAULT_FX_RATES)
        started, cpu = time.perf_counter(), own_usage()[0]
        rows = len(con.execute(sql).df())
        return {
            "as_of": history.last_day.isoformat(),
            "history_days": history.days,
            "customers": rows,
            "wall_seconds": round(time.perf_counter() - started, 2),
            "cpu_seconds": round(own_usage()[0] - cpu, 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tree", type=Path, help="another checkout whose predictions/ to time")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        # bench/predictions.py would shadow the predictions package of the tree timed
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
        print(json.dumps(time_snapshot(args.warehouse)))
        return
    tree = (args.tree or REPO).resolve()
    for _ in range(args.repeat):
        # a process per run: each starts cold, as the nightly step's query does
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--warehouse", str(args.warehouse)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(tree)},
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print(f"{tree.name}: {json.dumps(result)}", flush=True)


if __name__ == "__main__":
    main()
