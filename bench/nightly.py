"""Benchmark the nightly run against the history: does a night cost the day or the history?

    nice .venv/bin/python bench/nightly.py --customers 100000 --days 14   # target: ratio <= 0.15

1. `cdp generate` a landing zone of N customers x D days (--landing reuses one).
2. The history: `cdp run --from <day 1> --to <day D-1>` into a fresh warehouse (one
   backfill run, as an operator would start it). Timed: `backfill_seconds`.
3. The night: `cdp run --date <day D>` on that warehouse. Timed: `nightly_seconds`.
   With --workdir the backfilled warehouse is kept in <workdir>/history; `--history
   <workdir>/history` restores it and times only the night (for before/after figures of
   a change to the nightly path without redoing the backfill).
   `--again` then runs the same day once more: a night that delivers nothing new (the
   day's files are reloaded as they were), i.e. what a night costs whatever the day holds.
4. Reports nightly / backfill (the issue's target: <= 0.15 at 100,000 and 1,000,000
   customers), seconds per Dagster step of both runs (from the run's event log in a
   private DAGSTER_HOME), peak RSS of each `cdp run` process, and the load average (the
   2 cores are shared: a busy machine inflates every figure).
Writes bench/results/nightly.json (nightly-<customers>.json for other sizes, with -<days>d
for a zone of other than 14 days).

At 1,000,000 customers and a year of history (the issue's "<= 5 minutes" figure) the same
script runs with `--customers 1000000 --days 365`; it needs ~60 GB of landing files and
hours for the history, so run it on a machine of its own, not on the shared 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import cdp_runs  # noqa: E402


def slowest_dbt_models(warehouse: Path, count: int = 12) -> dict[str, float] | str:
    """The slowest models of the run's last dbt invocation (the nightly's `dbt_marts`), from
    dbt's run_results.json in the warehouse's dbt target folder: where the step's time goes."""
    try:
        results = json.loads(
            (warehouse.parent / ".dbt" / "target" / "run_results.json").read_text()
        )
    except (OSError, ValueError) as exc:
        return f"unavailable: {exc}"
    models = [r for r in results["results"] if r["unique_id"].startswith("model.")]
    models.sort(key=lambda r: -r["execution_time"])
    return {r["unique_id"].split(".")[-1]: round(r["execution_time"], 2) for r in models[:count]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cdp_runs.add_zone_arguments(parser, customers=100_000, days=14)
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temp dir)")
    parser.add_argument(
        "--history",
        type=Path,
        help="reuse the backfilled warehouse a previous run kept in <workdir>/history "
        "(skips the backfill: times only the night, against that backfill's figures)",
    )
    parser.add_argument(
        "--again",
        action="store_true",
        help="after the night, run the same day again (nothing new): the night's floor",
    )
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cdp-nightly-"))
    workdir.mkdir(parents=True, exist_ok=True)
    landing = args.landing or workdir / "landing"
    if args.history and not args.landing:
        # the night must read the zone the history was built from, not a fresh one
        landing = cdp_runs.history_landing(args.history)
        if landing is None:
            raise SystemExit(
                f"{args.history / 'landing.txt'} is missing: pass --landing <the history's zone>"
            )
        args.landing = landing
    warehouse = workdir / "warehouse" / "warehouse.duckdb"
    dagster_home = cdp_runs.fresh_dagster_home(workdir / "dagster_home")
    env = cdp_runs.night_env(dagster_home, warehouse, landing)
    report: dict = (
        {"customers": args.customers, "days": args.days, "seed": args.seed}
        if not args.landing
        # a zone made elsewhere: its size and seed are not this command's to tell
        else {"landing": str(landing.resolve())}
    )
    if not args.landing:
        generated = cdp_runs.generate_landing(landing, args.customers, args.days, args.seed, env)
        report["generate_seconds"] = generated.wall_seconds
    days = sorted({date.fromisoformat(p.name[3:]) for p in landing.glob("*/*/dt=*") if p.is_dir()})
    first, last = days[0], days[-1]
    env["CDP_PARTITIONS_START"] = first.isoformat()
    history_end = last - timedelta(days=1)

    kept = workdir / "history"
    if args.history:
        # the same backfill, restored: the night is timed on exactly the state it left
        cdp_runs.restore_history(args.history, warehouse.parent, dagster_home)
        # the copy's dirty pages reach the disk now, not inside the timed night
        os.sync()
        backfill = cdp_runs.CdpRun(**json.loads((args.history / "backfill.json").read_text()))
    else:
        backfill = cdp_runs.run_cdp(
            ["run", "--from", first.isoformat(), "--to", history_end.isoformat()], env
        )
        if args.workdir:
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(warehouse.parent, kept / "warehouse")
            shutil.copytree(dagster_home, kept / "dagster_home")
            (kept / "backfill.json").write_text(json.dumps(dataclasses.asdict(backfill)))
            (kept / "landing.txt").write_text(f"{landing.resolve()}\n")
            os.sync()
    nightly = cdp_runs.run_cdp(["run", "--date", last.isoformat()], env)
    again = cdp_runs.run_cdp(["run", "--date", last.isoformat()], env) if args.again else None
    report.update(
        history=f"{first} .. {history_end}",
        night=last.isoformat(),
        backfill_seconds=backfill.wall_seconds,
        nightly_seconds=nightly.wall_seconds,
        backfill_cpu_seconds=backfill.cpu_seconds,
        nightly_cpu_seconds=nightly.cpu_seconds,
        backfill_reused=bool(args.history),
        nightly_over_backfill=round(nightly.wall_seconds / backfill.wall_seconds, 3),
        target_ratio=0.15,
        backfill_peak_rss_mb=backfill.peak_rss_mb,
        nightly_peak_rss_mb=nightly.peak_rss_mb,
        load_average_before_after=[round(backfill.load_before, 1), round(nightly.load_after, 1)],
        cpu_count=os.cpu_count(),
    )
    if again is not None:
        report.update(
            unchanged_night_seconds=again.wall_seconds,
            unchanged_night_cpu_seconds=again.cpu_seconds,
            unchanged_night_over_backfill=round(again.wall_seconds / backfill.wall_seconds, 3),
        )
    runs = [("backfill", backfill), ("nightly", nightly)]
    if again is not None:
        runs.append(("unchanged_night", again))
    for name, run in runs:
        run_id = run.run_id
        if run_id:
            try:
                report[f"{name}_step_seconds"] = cdp_runs.step_seconds(dagster_home, run_id)
            except Exception as exc:  # the figures above stand without the breakdown
                report[f"{name}_step_seconds"] = f"unavailable: {exc}"
    report["nightly_dbt_marts_model_seconds"] = slowest_dbt_models(warehouse)
    results = REPO / "bench" / "results"
    name = "nightly" if args.customers == 100_000 else f"nightly-{args.customers}"
    if len(days) != 14:  # the 14-day zone is the reference; other histories keep their own
        name += f"-{len(days)}d"
    name += ".json"
    (results / name).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
