"""CPU seconds of a night's quality steps, in one process, without Dagster around them.

    nice .venv/bin/python bench/quality_night.py \
        --history /work/bench_work/n100k/history/warehouse \
        --night <workdir of bench/nightly.py>/warehouse --workdir /tmp/qn [--profile x.prof]

The night's warehouse (after `bench/nightly.py --history ...`) and a copy of the history's
Data Docs folder (the suites' last passing validations) are put in --workdir; then every
suite runs as the night's `quality_raw`, `quality_identity` and `quality_marts` steps run it:
raw suites on the night's partition, identity and mart suites on the rows the night changed
(`changed_only=True`, when the code has it) or on the whole table (before it). With
--seed-from-history the identity and mart suites are first validated on the history
warehouse (what the backfill run's checks record), so the night has a watermark to scope by.
Reports process CPU seconds per suite and per step (every suite registered with GX before
the clock starts, as in a step process that already ran one); writes bench/results/quality_night.json
(or --out).
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import json
import shutil
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from quality.gx_context import quality_context  # noqa: E402
from quality.runner import run_suite  # noqa: E402
from quality.suites import SUITES  # noqa: E402


def _night_day(con: duckdb.DuckDBPyConnection) -> date:
    return con.execute("select max(_dt) from raw.billing_customers").fetchone()[0]


def _run_step(con, specs, docs, day, changed_only: bool, supports_changed: bool) -> dict:
    figures = {}
    for spec in specs:
        kwargs = {}
        if spec.partitioned:
            kwargs["partition_dt"] = day
        elif changed_only and supports_changed:
            kwargs["changed_only"] = True
        cpu, wall = time.process_time(), time.perf_counter()
        verdict = run_suite(con, spec, docs, **kwargs)
        figures[spec.name] = {
            "cpu_seconds": round(time.process_time() - cpu, 3),
            "wall_seconds": round(time.perf_counter() - wall, 3),
            "scope": verdict.scope,
            "rows_evaluated": verdict.rows_evaluated,
            "rows_in_scope": verdict.rows_in_scope,
            "success": verdict.success,
        }
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=Path, required=True, help="history warehouse folder")
    parser.add_argument("--night", type=Path, required=True, help="the night's warehouse folder")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--seed-from-history", action="store_true")
    parser.add_argument("--whole", action="store_true", help="validate whole tables (a full run)")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the timed part")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/quality_night.json")
    args = parser.parse_args()

    supports_changed = "changed_only" in inspect.signature(run_suite).parameters
    work = args.workdir
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    docs = work / "quality_docs"
    shutil.copytree(args.history / "quality_docs", docs)
    shutil.copy(args.night / "warehouse.duckdb", work / "warehouse.duckdb")
    steps = {
        "quality_raw": [s for s in SUITES if s.table.startswith("raw.")],
        "quality_identity": [s for s in SUITES if s.table.startswith("identity.")],
        "quality_marts": [s for s in SUITES if s.table.startswith("marts.")],
    }
    if args.seed_from_history:
        with duckdb.connect(str(args.history / "warehouse.duckdb"), read_only=True) as con:
            for name in ("quality_identity", "quality_marts"):
                _run_step(con, steps[name], docs, None, False, supports_changed)

    con = duckdb.connect(str(work / "warehouse.duckdb"))
    day = _night_day(con)
    # Warm the process (imports, GX context) as the Dagster step process already is, and
    # register every suite before the clock starts on both sides (the seeding registers
    # some): registration is once per process, timed on its own.
    run_suite(con, steps["quality_marts"][-1], work / "warm_docs")
    context = quality_context(docs)
    cpu = time.process_time()
    for spec in SUITES:
        context.registered(spec)
    registration = round(time.process_time() - cpu, 3)
    profiler = cProfile.Profile() if args.profile else None
    results: dict = {
        "night": day.isoformat(),
        "changed_scope_supported": supports_changed,
        "registration_cpu_seconds": registration,
    }
    total = 0.0
    if profiler:
        profiler.enable()
    for name, specs in steps.items():
        figures = _run_step(con, specs, docs, day, not args.whole, supports_changed)
        step_cpu = round(sum(f["cpu_seconds"] for f in figures.values()), 3)
        total += step_cpu
        results[name] = {"cpu_seconds": step_cpu, "suites": figures}
        print(f"{name}: {step_cpu:.2f} CPU s")
        for suite, f in figures.items():
            print(
                f"  {suite}: {f['cpu_seconds']:.2f} CPU s, {f['rows_evaluated']} of "
                f"{f['rows_in_scope']} rows ({f['scope']}), success={f['success']}"
            )
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    results["quality_cpu_seconds"] = round(total, 3)
    print(
        f"quality steps: {total:.2f} CPU s (registering the suites not yet registered: {registration:.2f})"
    )
    con.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
