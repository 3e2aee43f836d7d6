"""Benchmark: generate a big landing zone, then ingest it (`make bench`).

Times `cdp generate` for 1,000,000 customers over 30 days (target: under 3 minutes on
2 cores), then loading every table and day of that zone into a fresh DuckDB file with
`ingestion.load` (target: under 2 minutes, peak memory under 4 GB), and records rows,
files, bytes, rows/s and peak memory in bench/results/ingest.json, so every figure
quoted in the docs can be re-measured.

    python bench/ingest.py [--customers N] [--days D] [--seed S] [--out DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from demo_data.generate import generate_landing_zone  # noqa: E402

RESULTS_DIR = REPO / "bench" / "results"


def _peak_rss_mib() -> dict[str, float]:
    """Peak resident memory of this process and of its largest worker process (Linux: KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"main_process": round(own, 1), "largest_worker": round(workers, 1)}


def _disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def time_generation(out: Path, customers: int, days: int, seed: int) -> dict:
    if out.exists():
        shutil.rmtree(out)
    summary = generate_landing_zone(out, customers=customers, days=days, seed=seed)
    figures = {
        "customers": customers,
        "days": days,
        "seed": seed,
        "elapsed_seconds": summary.elapsed_seconds,
        "seconds_per_step": summary.seconds_per_step,
        "rows_per_table": summary.rows_per_table,
        "total_rows": sum(summary.rows_per_table.values()),
        "files": summary.files_written,
        "truth_records": summary.truth_records,
        "landing_bytes": _disk_bytes(out),
        "peak_rss_mib": _peak_rss_mib(),
    }
    print(
        f"generate: {customers:,} customers x {days} days in {summary.elapsed_seconds:.1f} s, "
        f"{figures['total_rows']:,} rows in {figures['files']:,} files, "
        f"{figures['landing_bytes'] / 2**30:.2f} GiB, peak RSS {figures['peak_rss_mib']} MiB"
    )
    for table, rows in summary.rows_per_table.items():
        print(f"  {table:<22} {rows:>12,}")
    return figures


INGEST_CHILD = """
import json, sys, time
from datetime import date
from pathlib import Path
import duckdb
from ingestion.contract import RAW_TABLES
from ingestion.load import ensure_raw_schema, load_partitions

landing, warehouse = Path(sys.argv[1]), Path(sys.argv[2])
days = sorted({date.fromisoformat(p.name[3:]) for p in landing.glob("*/*/dt=*")})
con = duckdb.connect(str(warehouse))
con.execute("SET threads = 2")
con.execute("SET memory_limit = '3GB'")
ensure_raw_schema(con)
per_table = {}
for table in RAW_TABLES:
    started = time.perf_counter()
    # Two days at a time, as the Dagster asset loads a backfill: each day is still its
    # own atomic load. No settling wait: the files were just generated, and the wait
    # (ingestion/delivery.py) is not loading speed.
    results = load_partitions(con, table, days, landing, max_workers=2, settle_seconds=0)
    loaded = sum(r.rows_loaded for r in results)
    rejected = sum(r.rows_rejected for r in results)
    per_table[table] = {"seconds": round(time.perf_counter() - started, 2), "rows_loaded": loaded, "rows_rejected": rejected}
con.close()
print(json.dumps({"days": len(days), "tables": per_table}))
"""


def time_ingestion(landing: Path, warehouse: Path) -> dict:
    """Load every table and day into a fresh DuckDB file in a child process.

    A child process so its peak memory is measured on its own (wait4's rusage), the way
    the nightly run's ingestion step would use it.
    """
    warehouse.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", INGEST_CHILD, str(landing), str(warehouse)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    output = proc.stdout.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ingestion failed:\n{output}")
    detail = json.loads(output.strip().splitlines()[-1])
    rows = sum(t["rows_loaded"] for t in detail["tables"].values())
    figures = {
        "elapsed_seconds": round(elapsed, 1),
        "rows_loaded": rows,
        "rows_rejected": sum(t["rows_rejected"] for t in detail["tables"].values()),
        "rows_per_second": round(rows / elapsed),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "warehouse_bytes": warehouse.stat().st_size,
        "tables": detail["tables"],
    }
    print(
        f"ingest:   {rows:,} rows over {detail['days']} days in {elapsed:.1f} s "
        f"({figures['rows_per_second']:,} rows/s), peak RSS {figures['peak_rss_mib']:,} MiB, "
        f"warehouse {figures['warehouse_bytes'] / 2**30:.2f} GiB"
    )
    for table, t in detail["tables"].items():
        print(f"  {table:<22} {t['rows_loaded']:>12,} rows  {t['seconds']:>7.1f} s")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "landing")
    parser.add_argument("--keep", action="store_true", help="keep the landing zone afterwards")
    args = parser.parse_args(argv)

    results = {
        "machine": {
            "python": platform.python_version(),
            "cpus": __import__("os").cpu_count(),
            "platform": platform.platform(),
        },
        "generate": time_generation(args.out, args.customers, args.days, args.seed),
    }

    warehouse = args.out.parent / "bench_ingest.duckdb"
    results["ingest"] = time_ingestion(args.out, warehouse)
    warehouse.unlink(missing_ok=True)

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "ingest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if not args.keep:
        shutil.rmtree(args.out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
