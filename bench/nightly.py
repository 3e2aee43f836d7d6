"""Benchmark the nightly run against the history: does a night cost the day or the history?

    nice .venv/bin/python bench/nightly.py --customers 100000 --days 14   # target: ratio <= 0.15

1. `cdp generate` a landing zone of N customers x D days (--landing reuses one).
2. The history: `cdp run --from <day 1> --to <day D-1>` into a fresh warehouse (one
   backfill run, as an operator would start it). Timed: `backfill_seconds`.
3. The night: `cdp run --date <day D>` on that warehouse. Timed: `nightly_seconds`.
4. Reports nightly / backfill (the issue's target: <= 0.15 at 100,000 and 1,000,000
   customers), seconds per Dagster step of both runs (from the run's event log in a
   private DAGSTER_HOME), peak RSS of each `cdp run` process, and the load average (the
   2 cores are shared: a busy machine inflates every figure).
Writes bench/results/nightly.json (nightly-<customers>.json for other sizes).

At 1,000,000 customers and a year of history (the issue's "<= 5 minutes" figure) the same
script runs with `--customers 1000000 --days 365`; it needs ~60 GB of landing files and
hours for the history, so run it on a machine of its own, not on the shared 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CDP = Path(sys.executable).with_name("cdp")


def _cdp(args: list[str], env: dict) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB of the process or its largest reaped child, output)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            [str(CDP), *args], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        log.seek(0)
        output = log.read()
    if process.returncode != 0:
        print(output[-4000:], file=sys.stderr)
        raise SystemExit(f"cdp {' '.join(args)} failed ({process.returncode})")
    return seconds, usage.ru_maxrss / 1024, output


def _step_seconds(dagster_home: Path, run_id: str) -> dict[str, float]:
    from dagster import DagsterInstance

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with DagsterInstance.get() as instance:
        # `cdp run` prints the first 8 characters of the run id
        full_ids = [r.run_id for r in instance.get_runs() if r.run_id.startswith(run_id)]
        stats = instance.get_run_step_stats(full_ids[0]) if len(full_ids) == 1 else []
    return {
        s.step_key: round((s.end_time or 0) - (s.start_time or 0), 1)
        for s in sorted(stats, key=lambda s: s.start_time or 0)
    }


def _run_id(output: str) -> str | None:
    for line in output.splitlines():
        if "(run " in line:
            return line.rsplit("(run ", 1)[1].rstrip(")").strip()
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--landing", type=Path, help="reuse this landing zone")
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temp dir)")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cdp-nightly-"))
    workdir.mkdir(parents=True, exist_ok=True)
    landing = args.landing or workdir / "landing"
    warehouse = workdir / "warehouse" / "warehouse.duckdb"
    dagster_home = workdir / "dagster_home"
    dagster_home.mkdir(exist_ok=True)
    shutil.copy(REPO / "orchestration" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "CDP_SETTLE_SECONDS": "0",
        "CDP_WAREHOUSE": str(warehouse),
        "CDP_LANDING_DIR": str(landing),
    }
    report: dict = {"customers": args.customers, "days": args.days, "seed": args.seed}
    if not args.landing:
        seconds, _, _ = _cdp(
            [
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
            env,
        )
        report["generate_seconds"] = round(seconds, 1)
    days = sorted({date.fromisoformat(p.name[3:]) for p in landing.glob("*/*/dt=*") if p.is_dir()})
    first, last = days[0], days[-1]
    env["CDP_PARTITIONS_START"] = first.isoformat()
    history_end = last - timedelta(days=1)

    load_before = os.getloadavg()[0]
    backfill, backfill_rss, out_backfill = _cdp(
        ["run", "--from", first.isoformat(), "--to", history_end.isoformat()], env
    )
    nightly, nightly_rss, out_nightly = _cdp(["run", "--date", last.isoformat()], env)
    load_after = os.getloadavg()[0]
    report.update(
        history=f"{first} .. {history_end}",
        night=last.isoformat(),
        backfill_seconds=round(backfill, 1),
        nightly_seconds=round(nightly, 1),
        nightly_over_backfill=round(nightly / backfill, 3),
        target_ratio=0.15,
        backfill_peak_rss_mb=round(backfill_rss),
        nightly_peak_rss_mb=round(nightly_rss),
        load_average_before_after=[round(load_before, 1), round(load_after, 1)],
        cpu_count=os.cpu_count(),
    )
    for name, output in (("backfill", out_backfill), ("nightly", out_nightly)):
        run_id = _run_id(output)
        if run_id:
            try:
                report[f"{name}_step_seconds"] = _step_seconds(dagster_home, run_id)
            except Exception as exc:  # the figures above stand without the breakdown
                report[f"{name}_step_seconds"] = f"unavailable: {exc}"
    results = REPO / "bench" / "results"
    name = "nightly.json" if args.customers == 100_000 else f"nightly-{args.customers}.json"
    (results / name).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
