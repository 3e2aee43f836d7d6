"""Seconds per stage of `resolve_identities` on a warehouse whose staging models are built.

    .venv/bin/python -m bench.identity_stages WAREHOUSE.duckdb [--truth truth.csv] [--label NAME]

Works on a copy (the warehouse is not changed): one run from scratch, then one run with the
previous run's state (a nightly on unchanged data: incremental, nothing to re-cluster; see
bench/identity_nightly.py for a nightly with a day's new records). Prints the stage times and writes them to
bench/results/identity_stages_<label>.json. Compare engine versions on the same copy and
the same machine load: the figures are only comparable side by side.

Each run's outputs are fingerprinted (which records form each customer, the golden values,
how each record joined, refusals, evidence; customer ids and timestamps left out), so a
change meant only to be faster can prove it changed nothing:
`--same-as bench/results/identity_stages_<before>.json` fails unless both fingerprints agree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from identity.evaluate import evaluate_against_truth
from identity.pipeline import resolve_identities

RESULTS = Path(__file__).resolve().parent / "results"  # bench/results

# Every output table, with customer ids replaced by their customer's smallest record key
# (ids are minted, not derived) and run timestamps left out.
_ANCHORED = """
    with anchors as (
        select customer_id, min(source_system || ':' || source_record_id) as anchor
        from identity.customer_map group by customer_id
    )
"""
OUTPUT_QUERIES = {
    "clusters": "select source_system, source_record_id, a.anchor "
    "from identity.customer_map join anchors a using (customer_id)",
    "customer_map": "select source_system, source_record_id, match_rule, "
    "round(match_weight, 6), matched_record from identity.customer_map",
    "golden_customers": "select a.anchor, g.* exclude (customer_id, created_at, updated_at) "
    "from identity.golden_customers g join anchors a using (customer_id)",
    "identity_records": "select r.* exclude (customer_id), a.anchor "
    "from identity.identity_records r join anchors a using (customer_id)",
    "refused_merges": "select record_a, record_b, guard, detail, match_rule, "
    "round(match_weight, 6) from identity.refused_merges",
    "match_evidence": "select record_a, record_b, comparison, level, "
    "round(log2_bayes_factor, 6) from identity.match_evidence",
    "shared_values": "select * exclude (resolved_at) from identity.shared_values",
}


def output_fingerprint(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """md5 of each output table's rows, order-independent (rows sorted as text)."""
    prints = {}
    for table, query in OUTPUT_QUERIES.items():
        prints[table] = con.sql(
            f"{_ANCHORED} select md5(coalesce(string_agg(row_text, chr(10) order by row_text), '')) "
            f"from (select cast(t as varchar) as row_text from ({query}) t)"
        ).fetchall()[0][0]
    return prints


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
            summary = resolve_identities(con)
            seconds, cpu_seconds = time.perf_counter() - clock, time.process_time() - cpu
            result[run] = {
                "seconds": round(seconds, 2),
                # all threads' CPU time: less sensitive than wall seconds to a busy machine
                "cpu_seconds": round(cpu_seconds, 2),
                "stages": summary.seconds,
                "mode": summary.mode,
                "outputs": output_fingerprint(con),
            }
            result["records"] = summary.records_in
            result["customers"] = summary.customers_out
            print(
                f"{run}: {seconds:.1f} s ({cpu_seconds:.1f} CPU s) for "
                f"{summary.records_in:,} records ({summary.mode})"
            )
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
        differ = [
            f"{run}/{table}"
            for run in ("from_scratch", "with_previous_state")
            for table, fingerprint in result[run]["outputs"].items()
            if before.get(run, {}).get("outputs", {}).get(table) != fingerprint
        ]
        if differ:
            raise SystemExit(f"outputs differ from {args.same_as}: {', '.join(differ)}")
        print(f"outputs identical to {args.same_as}")


if __name__ == "__main__":
    main()
