"""What the scoring snapshot's web features cost a night: from every event, or from the web state.

    .venv/bin/python bench/web_state.py --warehouse <dir>/warehouse.duckdb [--in-place]

On a built warehouse whose last loaded day is L (a `bench/nightly.py` night's, say):

1. the snapshot as of L from every web event, as the scoring step took it before the web
   state (predictions/snapshot.sql), timed;
2. the web state as of L - 1, built from every event (what the night before left), timed;
3. the night: `refresh` to L (the visitors touched since L - 1 recomputed) and the snapshot
   reading its web features from the state, timed;
4. the two snapshots compared, every column and value (the web features exactly, money
   to 1e-12: parallel double sums; exit 1 if they differ).

The state is written into the warehouse, so the bench works on a copy next to it (the
same file system) unless --in-place, which drops the state's tables again at the end.
Prints the figures and writes bench/results/web_state.json (--out to change).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.process_usage import own_usage  # noqa: E402


def _timed(function):
    started, cpu = time.perf_counter(), own_usage()[0]
    result = function()
    return result, round(time.perf_counter() - started, 2), round(own_usage()[0] - cpu, 2)


def measure(warehouse: Path) -> dict:
    import duckdb
    import pandas as pd

    from predictions import web_state
    from predictions.snapshot import build_snapshot, loaded_history

    with duckdb.connect(str(warehouse)) as con:
        con.execute("SET TimeZone = 'UTC'")
        history = loaded_history(con)
        if history is None or history.days < 2:
            raise SystemExit(f"{warehouse} holds fewer than two loaded days: run `cdp run` first")
        night = history.last_day
        events = con.execute("select count(*) from raw.web_events").fetchone()[0]
        for table in web_state.STATE_TABLES:
            con.execute(f"drop table if exists {table}")
        from_events, full_wall, full_cpu = _timed(lambda: build_snapshot(con, night))
        before, rebuild_wall, rebuild_cpu = _timed(
            lambda: web_state.refresh(con, night - timedelta(days=1))
        )
        refreshed, refresh_wall, refresh_cpu = _timed(lambda: web_state.refresh(con, night))
        from_state, state_wall, state_cpu = _timed(
            lambda: build_snapshot(con, night, web_features=web_state.WEB_FEATURES_FROM_STATE)
        )
        visitors = con.execute(
            f"select count(distinct visitor_id) from {web_state.STATE}"
        ).fetchone()[0]
    web = ["customer_id", *web_state.WEB_FEATURE_COLUMNS]
    try:
        # money may move in its last bit (parallel double sums); the web columns may not
        pd.testing.assert_frame_equal(from_state, from_events, check_exact=False, rtol=1e-12)
        pd.testing.assert_frame_equal(from_state[web], from_events[web], check_exact=True)
        equal = True
    except AssertionError as exc:
        print(f"the snapshots differ: {exc}", file=sys.stderr)
        equal = False
    return {
        "warehouse": str(warehouse),
        "night": night.isoformat(),
        "history_days": history.days,
        "web_events": events,
        "customers": len(from_events),
        "state_visitors": visitors,
        "state_visitor_days": refreshed.state_rows,
        "snapshot_from_every_event": {"wall_seconds": full_wall, "cpu_seconds": full_cpu},
        "state_rebuild_day_before": {
            "wall_seconds": rebuild_wall,
            "cpu_seconds": rebuild_cpu,
            "mode": before.mode,
        },
        "night_refresh": {
            "wall_seconds": refresh_wall,
            "cpu_seconds": refresh_cpu,
            "mode": refreshed.mode,
            "visitors_recomputed": refreshed.visitors,
        },
        "snapshot_from_state": {"wall_seconds": state_wall, "cpu_seconds": state_cpu},
        "night_total_from_state": {
            "wall_seconds": round(refresh_wall + state_wall, 2),
            "cpu_seconds": round(refresh_cpu + state_cpu, 2),
        },
        "snapshots_equal": equal,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--in-place", action="store_true", help="no copy; drop the state after")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "web_state.json")
    args = parser.parse_args(argv)
    if not args.warehouse.is_file():
        parser.error(f"{args.warehouse} is not a warehouse file")
    scratch = None
    target = args.warehouse
    if not args.in_place:
        scratch = Path(tempfile.mkdtemp(prefix="web-state-", dir=args.warehouse.parent))
        target = scratch / "warehouse.duckdb"
        shutil.copyfile(args.warehouse, target)
    try:
        result = measure(target)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        elif args.in_place:
            import duckdb

            from predictions import web_state

            with duckdb.connect(str(target)) as con:
                for table in web_state.STATE_TABLES:
                    con.execute(f"drop table if exists {table}")
    result["warehouse"] = str(args.warehouse)
    print(json.dumps(result, indent=2))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["snapshots_equal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
