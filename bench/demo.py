"""How long the demo pipeline takes, and how much it prints: what `make run` shows a newcomer.

    .venv/bin/python bench/demo.py [--customers 2000] [--days 14] [--runs 2]

Generates the demo landing zone (2,000 customers, 14 days, seed 7, 3 erasure requests, day
markers: `make demo`), then runs
`cdp run` as `make run` does (its own process, a Dagster instance in a fresh DAGSTER_HOME)
into a fresh warehouse, and again into the same warehouse (a re-run: every day replaced,
dbt's partial parsing warm). For each run it records the wall seconds from process start to
exit (the pipeline part of `make run`), the CPU seconds the run and its dbt processes used
(on a shared machine wall time follows the load; CPU time does not), the load average,
the seconds of each Dagster step and the lines printed. Prints the figures and writes
bench/results/demo.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import cdp_runs  # noqa: E402

TARGET_SECONDS = 30.0
TARGET_LINES = 40


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cdp_runs.add_zone_arguments(parser, customers=2000, days=14, landing=False)
    parser.add_argument("--runs", type=int, default=2, help="first run, then re-runs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cdp-demo-bench-") as tmp:
        work = Path(tmp)
        landing = work / "landing"
        home = cdp_runs.fresh_dagster_home(work / "dagster_home")
        env = {**os.environ, "DAGSTER_HOME": str(home)}
        env.pop("CDP_ALERT_WEBHOOK", None)
        # As `make demo` generates it: three erasure requests for the run to carry out, and
        # every day marked complete (_SUCCESS), so the run starts without a settling wait.
        generated = cdp_runs.generate_landing(
            landing, args.customers, args.days, args.seed, env, erasure_requests=3, markers=True
        )
        warehouse = work / "data" / "warehouse.duckdb"
        runs = []
        for i in range(args.runs):
            started = time.time()
            run = cdp_runs.run_cdp(
                ["run", "--landing", str(landing), "--warehouse", str(warehouse)], env
            )
            kind = "first run, fresh warehouse" if i == 0 else "re-run, same warehouse"
            steps = cdp_runs.step_seconds(home, run.run_id) if run.run_id else {}
            runs.append(
                {
                    "kind": kind,
                    "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                    "wall_seconds": run.wall_seconds,
                    "cpu_seconds": run.cpu_seconds,
                    "load_average_1m_before": run.load_before,
                    "load_average_1m_after": run.load_after,
                    "lines_printed": len(run.lines),
                    "step_seconds": steps,
                    "output": run.lines,
                }
            )
            print(
                f"{kind:<28} {run.wall_seconds:>6.1f} s wall  {run.cpu_seconds:>6.1f} s CPU"
                f"  load {run.load_before:.1f}->{run.load_after:.1f}  {len(run.lines)} lines"
            )
            print("  steps: " + ", ".join(f"{k} {v}" for k, v in steps.items()))
    first = runs[0]
    print("\n".join(first["output"]))
    result = {
        "customers": args.customers,
        "days": args.days,
        "seed": args.seed,
        "cpus": os.cpu_count(),
        "generate_seconds": generated.wall_seconds,
        # `make run` on a fresh clone prints the generator's lines, then cdp run's.
        "generate_lines": len(generated.lines),
        "target_pipeline_seconds": TARGET_SECONDS,
        "target_lines": TARGET_LINES,
        "runs": runs,
        "note": (
            "wall_seconds is the pipeline part of `make run` (cdp run, process start to exit). "
            "On a machine shared with other work it scales with the load average; cpu_seconds "
            "(the run and its dbt processes) and step_seconds are the less load-sensitive figures."
        ),
    }
    out = REPO / "bench" / "results" / "demo.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
