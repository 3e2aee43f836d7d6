"""Seconds per stage of `resolve_identities` on a warehouse whose staging models are built.

    .venv/bin/python -m bench.identity_stages WAREHOUSE.duckdb [--truth truth.csv] [--label NAME]

Works on a copy (the warehouse is not changed): one run from scratch, then one run with the
previous run's state (a nightly on unchanged data: incremental, nothing to re-cluster; see
bench/identity_nightly.py for a nightly with a day's new records). Prints the stage times and writes them to
bench/results/identity_stages_<label>.json. Compare engine versions on the same copy and
the same machine load: the figures are only comparable side by side.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from identity.evaluate import evaluate_against_truth
from identity.pipeline import resolve_identities

RESULTS = Path(__file__).resolve().parent / "results"  # bench/results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("warehouse")
    parser.add_argument("--truth", help="truth.csv of the zone, to print accuracy too")
    parser.add_argument("--label", default="latest")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="identity_stages_") as scratch:
        copy = Path(scratch) / "warehouse.duckdb"
        shutil.copyfile(args.warehouse, copy)
        con = duckdb.connect(str(copy))
        con.execute("SET threads = 2")
        con.execute("drop schema if exists identity cascade")
        result: dict = {"warehouse": str(args.warehouse)}
        for run in ("from_scratch", "with_previous_state"):
            clock = time.perf_counter()
            summary = resolve_identities(con)
            seconds = time.perf_counter() - clock
            result[run] = {"seconds": round(seconds, 2), "stages": summary.seconds}
            result["records"] = summary.records_in
            result["customers"] = summary.customers_out
            print(f"{run}: {seconds:.1f} s for {summary.records_in:,} records")
            for stage, value in summary.seconds.items():
                print(f"  {stage:<22} {value:7.2f} s")
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
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"identity_stages_{args.label}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
