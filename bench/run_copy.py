"""What a run's private copy of the warehouse costs (the part of every run that grows with
the whole history, not with the day).

    nice .venv/bin/python -m bench.run_copy WAREHOUSE.duckdb [--repeat 3]

Works on a copy of WAREHOUSE in a scratch folder beside it (the same file system, as the
pipeline's `.runs/`): takes a run copy with the pipeline's own `RunCopy.take()` (checkpoint
of the warehouse, then a file copy) and commits it with `RunCopy.commit()` (checkpoint of
the copy, generation bump, rename), `--repeat` times, each after an `os.sync()` so that no
earlier write is still being flushed. Prints wall and CPU seconds (CPU includes the
kernel's copy) and the file size; writes bench/results/run_copy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from orchestration.run_lock import RunCopy

RESULTS = Path(__file__).resolve().parent / "results"


def _timed(action) -> tuple[float, float]:
    clock, cpu = time.perf_counter(), time.process_time()
    action()
    return round(time.perf_counter() - clock, 2), round(time.process_time() - cpu, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    size = args.warehouse.stat().st_size
    report: dict = {
        "warehouse_mb": round(size / 2**20),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "rounds": [],
    }
    with tempfile.TemporaryDirectory(prefix="run_copy_", dir=args.warehouse.parent) as scratch:
        warehouse = Path(scratch) / "warehouse.duckdb"
        shutil.copyfile(args.warehouse, warehouse)
        for n in range(args.repeat):
            os.sync()
            copy = RunCopy(warehouse, f"bench-{n}")
            take_wall, take_cpu = _timed(copy.take)
            flush_wall, _ = _timed(os.sync)
            commit_wall, commit_cpu = _timed(copy.commit)
            report["rounds"].append(
                {
                    "take_wall_seconds": take_wall,
                    "take_cpu_seconds": take_cpu,
                    "flush_to_disk_wall_seconds": flush_wall,
                    "commit_wall_seconds": commit_wall,
                    "commit_cpu_seconds": commit_cpu,
                }
            )
            print(report["rounds"][-1], flush=True)
    report["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    takes = sorted(r["take_wall_seconds"] for r in report["rounds"])
    report["median_take_wall_seconds"] = takes[len(takes) // 2]
    report["median_take_mb_per_second"] = round(size / 2**20 / max(takes[len(takes) // 2], 0.01))
    (RESULTS / "run_copy.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
