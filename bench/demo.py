"""How long the demo pipeline takes, and how much it prints: what `make run` shows a newcomer.

    .venv/bin/python bench/demo.py [--customers 2000] [--days 14] [--runs 2]

Generates the demo landing zone (2,000 customers, 14 days, seed 7: `make demo`), then runs
`cdp run` as `make run` does (its own process, a Dagster instance in a fresh DAGSTER_HOME)
into a fresh warehouse, and again into the same warehouse (a re-run: every day replaced,
dbt's partial parsing warm). For each run it records the wall seconds from process start to
exit (the pipeline part of `make run`), the CPU seconds the run and its dbt processes used
(on a shared machine wall time follows the load; CPU time does not), the load average,
and the lines printed. Prints the figures and writes bench/results/demo.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CDP = Path(sys.executable).with_name("cdp")
TARGET_SECONDS = 30.0
TARGET_LINES = 40


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_pipeline(landing: Path, warehouse: Path, env: dict) -> dict:
    cpu_before = _children_cpu()
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    proc = subprocess.run(
        [str(CDP), "run", "--landing", str(landing), "--warehouse", str(warehouse)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wall = time.monotonic() - started
    output = proc.stdout
    if proc.returncode != 0:
        raise SystemExit(f"cdp run failed ({proc.returncode}):\n{output[-4000:]}")
    return {
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(_children_cpu() - cpu_before, 1),
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "lines_printed": len(output.splitlines()),
        "output": output.splitlines(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=2, help="first run, then re-runs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cdp-demo-bench-") as tmp:
        work = Path(tmp)
        landing = work / "landing"
        started = time.monotonic()
        generated = subprocess.run(
            [
                str(CDP),
                "generate",
                "--out",
                str(landing),
                "--customers",
                str(args.customers),
                "--days",
                str(args.days),
                "--seed",
                str(args.seed),
            ],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        generate_seconds = time.monotonic() - started
        generate_lines = len(generated.splitlines())
        home = work / "dagster_home"
        home.mkdir()
        shutil.copy(REPO / "orchestration" / "dagster.yaml", home / "dagster.yaml")
        env = {**os.environ, "DAGSTER_HOME": str(home)}
        env.pop("CDP_ALERT_WEBHOOK", None)
        warehouse = work / "data" / "warehouse.duckdb"
        runs = []
        for i in range(args.runs):
            run = run_pipeline(landing, warehouse, env)
            run["kind"] = "first run, fresh warehouse" if i == 0 else "re-run, same warehouse"
            runs.append(run)
            print(
                f"{run['kind']:<28} {run['wall_seconds']:>6.1f} s wall  {run['cpu_seconds']:>6.1f} s CPU"
                f"  load {run['load_average_1m_before']:.1f}->{run['load_average_1m_after']:.1f}"
                f"  {run['lines_printed']} lines"
            )
    first = runs[0]
    print("\n".join(first["output"]))
    result = {
        "customers": args.customers,
        "days": args.days,
        "seed": args.seed,
        "cpus": os.cpu_count(),
        "generate_seconds": round(generate_seconds, 1),
        # `make run` on a fresh clone prints the generator's lines, then cdp run's.
        "generate_lines": generate_lines,
        "target_pipeline_seconds": TARGET_SECONDS,
        "target_lines": TARGET_LINES,
        "runs": runs,
        "note": (
            "wall_seconds is the pipeline part of `make run` (cdp run, process start to exit). "
            "On a machine shared with other work it scales with the load average; cpu_seconds "
            "(the run and its dbt processes) is the load-independent figure."
        ),
    }
    out = REPO / "bench" / "results" / "demo.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
