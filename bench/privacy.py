"""How long erasure takes, and whether it leaves bytes behind, on a built warehouse.

    python bench/privacy.py --customers 2000 --days 7 --requests 5

Generates a zone (`cdp generate`), runs the pipeline once (`cdp run`), then on copies of
the warehouse files `--requests` erase requests for random contact emails and times the
two costly parts of the `privacy/erasure` step: the deletion across every table
(`erase_pending_requests`) and the file rewrite (`rewrite_database`). The deletion runs
twice, on two copies: as the step does it (one scan of the warehouse for the day's
requests) and the way it was done before (every request scanning every table), and the
two must erase the same rows. Afterwards it searches the rewritten file's bytes for every
erased value. Prints the figures and writes bench/results/privacy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestration.cli import main as cdp  # noqa: E402
from privacy import erasure  # noqa: E402
from privacy.storage import rewrite_database  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cdp-bench-privacy-"))
    try:
        zone, warehouse = work / "landing", work / "wh" / "warehouse.duckdb"
        generate = ["generate", "--out", str(zone), "--customers", str(args.customers)]
        assert cdp([*generate, "--days", str(args.days), "--seed", str(args.seed)]) == 0
        started = time.perf_counter()
        assert cdp(["run", "--landing", str(zone), "--warehouse", str(warehouse)]) == 0
        run_s = time.perf_counter() - started
        timings: dict[str, tuple[float, float]] = {}
        erased: dict[str, list] = {}
        for strategy in ("per request", "one scan"):
            copy = work / f"erase-{strategy.replace(' ', '-')}.duckdb"
            shutil.copy(warehouse, copy)
            with duckdb.connect(str(copy)) as con:
                emails = [
                    e
                    for (e,) in con.execute(
                        "select distinct lower(trim(email)) from raw.email_contacts order by 1"
                    ).fetchall()
                ]
                chosen = random.Random(args.seed).sample(emails, args.requests)
                for n, email in enumerate(chosen):
                    con.execute(
                        "insert into raw.privacy_requests values (?, 'erase', ?, null, now(), "
                        "current_date, 'bench.csv', ?, now())",
                        [f"bench-{n}", email, n + 2],
                    )
                (rows_before,) = con.execute(
                    "select sum(estimated_size) from duckdb_tables() "
                    "where database_name = current_database()"
                ).fetchone()
                original = erasure._candidate_rows
                if strategy == "per request":  # how every request scanned before
                    erasure._candidate_rows = lambda *_: None
                try:
                    started, cpu = time.perf_counter(), time.process_time()
                    outcomes, needles = erasure.erase_pending_requests(con, "bench-salt-0123456789")
                    timings[strategy] = (
                        time.perf_counter() - started,
                        time.process_time() - cpu,
                    )
                finally:
                    erasure._candidate_rows = original
            erased[strategy] = [(o.request_id, o.rows_per_table) for o in outcomes]
        if erased["one scan"] != erased["per request"]:
            raise SystemExit("the two ways of erasing erased different rows")
        size_before = copy.stat().st_size
        started = time.perf_counter()
        rewrite_database(copy)
        rewrite_s = time.perf_counter() - started
        data = copy.read_bytes().lower()
        left = [
            v
            for v in needles.file_values()
            if v.lower().encode() in data and v not in {c for o in outcomes for c in o.customer_ids}
        ]
        result = {
            "customers": args.customers,
            "days": args.days,
            "warehouse_rows": int(rows_before),
            "warehouse_mb": round(size_before / 1e6, 1),
            "pipeline_run_s": round(run_s, 1),
            "requests": args.requests,
            "rows_erased": sum(o.rows_erased for o in outcomes),
            "ambiguous_requests": sum(o.ambiguous for o in outcomes),
            "erase_s": round(timings["one scan"][0], 2),
            "erase_cpu_s": round(timings["one scan"][1], 2),
            "erase_scan_per_request_s": round(timings["per request"][0], 2),
            "erase_scan_per_request_cpu_s": round(timings["per request"][1], 2),
            "rewrite_s": round(rewrite_s, 2),
            "erased_values_left_in_file_bytes": len(left),
            "load_average": [round(x, 1) for x in os.getloadavg()],
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results" / "privacy.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
