"""Benchmark: generate a big landing zone, then ingest it (`make bench`).

Generation half: times `cdp generate` for 1,000,000 customers over 30 days (the issue's
target is under 3 minutes on 2 cores) and records rows, files, bytes and peak memory in
bench/results/ingest.json, so every figure quoted in the docs can be re-measured.

    python bench/ingest.py [--customers N] [--days D] [--seed S] [--out DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingestion.generate import generate_landing_zone  # noqa: E402

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

    # ingest timing: added by the loader

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "ingest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if not args.keep:
        shutil.rmtree(args.out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
