"""Seconds per stage of `resolve_identities` on a warehouse whose staging models are built.

    .venv/bin/python -m bench.identity_stages WAREHOUSE.duckdb [--truth truth.csv] [--label NAME]

Works on a copy (the warehouse is not changed): one run from scratch, then one run with the
previous run's state (a nightly on unchanged data: incremental, nothing to re-cluster; see
bench/identity_nightly.py for a nightly with a day's new records). Prints the stage times and writes them to
bench/results/identity_stages_<label>.json. Compare engine versions on the same copy and
the same machine load: the figures are only comparable side by side.

Each run's outputs are fingerprinted (every row of every identity.* table; the two runs
happen at fixed times, so timestamps compare too), so a change meant only to be faster can
prove it changed nothing:
`--same-as bench/results/identity_stages_<before>.json` fails unless both fingerprints agree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from identity.evaluate import evaluate_against_truth
from identity.pipeline import resolve_identities

RESULTS = Path(__file__).resolve().parent / "results"  # bench/results

# Fixed run times, so every column (timestamps carried over or not, minted ids) is comparable
# between two versions of the engine.
RUN_TIMES = {
    "from_scratch": datetime(2026, 1, 1, 2, 0, tzinfo=UTC),
    "with_previous_state": datetime(2026, 1, 2, 2, 0, tzinfo=UTC),
}


def output_fingerprint(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """md5 of every identity.* table's rows, order-independent (rows sorted as text)."""
    tables = [
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'identity' "
            "order by table_name"
        ).fetchall()
    ]
    return {
        table: con.sql(
            "select md5(coalesce(string_agg(row_text, chr(10) order by row_text), '')) "
            f"from (select cast(t as varchar) as row_text from identity.{table} t)"
        ).fetchall()[0][0]
        for table in tables
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("warehouse")
    parser.add_argument("--truth", help="truth.csv of the zone, to print accuracy too")
    parser.add_argument("--label", default="latest")
    parser.add_argument(
        "--same-as",
        type=Path,
        help="an earlier result file: fail unless this run's outputs are the same",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="identity_stages_") as scratch:
        copy = Path(scratch) / "warehouse.duckdb"
        shutil.copyfile(args.warehouse, copy)
        con = duckdb.connect(str(copy))
        con.execute("SET threads = 2")
        con.execute("drop schema if exists identity cascade")
        result: dict = {
            "warehouse": str(args.warehouse),
            "load_average_1m_at_start": round(os.getloadavg()[0], 2),
            "cpu_count": os.cpu_count(),
        }
        for run in ("from_scratch", "with_previous_state"):
            clock, cpu = time.perf_counter(), time.process_time()
            summary = resolve_identities(con, run_at=RUN_TIMES[run])
            seconds, cpu_seconds = time.perf_counter() - clock, time.process_time() - cpu
            result[run] = {
                "seconds": round(seconds, 2),
                # all threads' CPU time: less sensitive than wall seconds to a busy machine
                "cpu_seconds": round(cpu_seconds, 2),
                "stages": summary.seconds,
                "stage_cpu_seconds": getattr(summary, "cpu_seconds", {}),
                "mode": summary.mode,
                "outputs": output_fingerprint(con),
            }
            result["records"] = summary.records_in
            result["customers"] = summary.customers_out
            print(
                f"{run}: {seconds:.1f} s ({cpu_seconds:.1f} CPU s) for "
                f"{summary.records_in:,} records ({summary.mode})"
            )
            cpu_of = getattr(summary, "cpu_seconds", {})
            for stage, value in summary.seconds.items():
                cpu_text = f" ({cpu_of[stage]:6.2f} CPU s)" if stage in cpu_of else ""
                print(f"  {stage:<28} {value:7.2f} s{cpu_text}")
            if "linkage" in cpu_of:
                print(
                    f"  {'linkage (all its stages)':<28} {'':>9} ({cpu_of['linkage']:6.2f} CPU s)"
                )
        if args.truth:
            report = evaluate_against_truth(con, Path(args.truth))
            result["accuracy"] = {
                "precision": round(report.precision, 5),
                "recall": round(report.recall, 5),
                "f1": round(report.f1, 5),
                "ceiling_recall": getattr(report, "ceiling_recall", None),
            }
            print(report.format())
        con.close()
    result["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(
        f"load average (1 min) {result['load_average_1m_at_start']} at start, "
        f"{result['load_average_1m_at_end']} at end, on {os.cpu_count()} cores"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"identity_stages_{args.label}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    if args.same_as:
        before = json.loads(args.same_as.read_text(encoding="utf-8"))
        differ = []
        for run in ("from_scratch", "with_previous_state"):
            mine, theirs = result[run]["outputs"], before.get(run, {}).get("outputs", {})
            differ += [
                f"{run}/{t}"
                for t in sorted(set(mine) | set(theirs))
                if mine.get(t) != theirs.get(t)
            ]
        if differ:
            raise SystemExit(f"outputs differ from {args.same_as}: {', '.join(differ)}")
        print(f"outputs identical to {args.same_as}")


if __name__ == "__main__":
    main()
