"""What the identity step's accuracy check costs each night (synthetic zones with truth.csv).

    nice .venv/bin/python -m bench.identity_evaluation WAREHOUSE.duckdb TRUTH.csv [--repeat 3]

The `resolve_identities` step evaluates identity.customer_map against the landing zone's
truth.csv when there is one (demo and bench zones). Both grow with the history, so the
check is part of what a night costs. Times, on a read-only warehouse (best of --repeat,
wall and CPU seconds): reading the truth file line by line and through DuckDB, and the
evaluation with and without the evidence ceiling (a nightly run skips the ceiling: it
depends on the records, not on the resolution). Writes bench/results/identity_evaluation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import duckdb

from identity import evaluate

RESULTS = Path(__file__).resolve().parent / "results"


def _best(repeat: int, fn) -> tuple[float, float, object]:
    runs = []
    for _ in range(repeat):
        clock, cpu = time.perf_counter(), time.process_time()
        value = fn()
        runs.append((time.perf_counter() - clock, time.process_time() - cpu, value))
    wall, cpu_seconds, value = min(runs, key=lambda r: r[1])
    return round(wall, 3), round(cpu_seconds, 3), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("warehouse")
    parser.add_argument("truth")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default="identity_evaluation.json")
    args = parser.parse_args()
    truth = Path(args.truth)
    con = duckdb.connect(args.warehouse, read_only=True)
    con.execute("SET threads = 2")
    result: dict = {"warehouse": args.warehouse, "load_average_1m_at_start": os.getloadavg()[0]}
    wall, cpu, frame = _best(args.repeat, lambda: evaluate.read_truth(truth))
    result["truth_rows"] = len(frame)
    result["read_truth_duckdb"] = {"seconds": wall, "cpu_seconds": cpu}
    wall, cpu, _ = _best(args.repeat, lambda: evaluate.read_truth(truth, through_duckdb=False))
    result["read_truth_line_by_line"] = {"seconds": wall, "cpu_seconds": cpu}
    for name, ceiling in (("with_ceiling", True), ("without_ceiling", False)):
        wall, cpu, report = _best(
            args.repeat,
            lambda c=ceiling: evaluate.evaluate_against_truth(con, truth, evidence_ceiling=c),
        )
        result[f"evaluate_{name}"] = {
            "seconds": wall,
            "cpu_seconds": cpu,
            "precision": round(report.precision, 5),
            "recall": round(report.recall, 5),
        }
    con.close()
    result["load_average_1m_at_end"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))
    out = RESULTS / args.out
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
