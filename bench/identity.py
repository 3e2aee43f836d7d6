"""Benchmark identity resolution at scale, side by side with Splink (DuckDB backend).

    .venv/bin/python bench/identity.py --customers 1000000

1. Builds the staging tables for N synthetic customers (about two identity records each)
   in a DuckDB file, with truth (identity.synthetic; the landing-zone generator can
   replace it once the loader and dbt models run at this scale).
2. Runs `resolve_identities` in a fresh process: seconds per stage, candidate pairs,
   peak memory, pairwise precision/recall/F1.
3. Runs Splink 5 in a fresh process on the very same normalised records
   (identity.identity_records), with the same blocking keys plus email and user id, u by
   random sampling, m by EM, predict at match probability 0.99, connected components.
Both engines get DuckDB with 2 threads. Splink is a bench-only dependency:
`.venv/bin/pip install -c requirements.lock splink==5.0.0`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

THREADS = 2


def peak_memory_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def build(warehouse: Path, customers: int, seed: int) -> dict:
    from identity.synthetic import generate_synthetic_zone

    started = time.perf_counter()
    zone = generate_synthetic_zone(customers, seed=seed)
    con = duckdb.connect(str(warehouse))
    zone.write(con)
    con.register("truth_frame", zone.truth)
    con.execute("create or replace table main.truth as select * from truth_frame")
    con.close()
    return {"records": len(zone.truth), "seconds": round(time.perf_counter() - started, 1)}


def run_engine(warehouse: Path) -> dict:
    from identity.evaluate import evaluate_assignment
    from identity.pipeline import resolve_identities

    con = duckdb.connect(str(warehouse))
    con.execute(f"set threads = {THREADS}")
    started = time.perf_counter()
    summary = resolve_identities(con)
    seconds = time.perf_counter() - started
    report = evaluate_assignment(
        con.sql("select * from main.truth").df(),
        con.sql("select * from identity.customer_map").df(),
    )
    return {
        "seconds": round(seconds, 1),
        "stages": summary.seconds,
        "records": summary.records_in,
        "customers": summary.customers_out,
        "candidate_pairs": summary.candidate_pairs,
        "matches_by_rule": summary.matches_by_rule,
        "refused_by_guard": summary.refused_by_guard,
        "peak_memory_gb": round(peak_memory_gb(), 2),
        "precision": report.precision,
        "recall": report.recall,
        "f1": report.f1,
    }


def run_splink(warehouse: Path) -> dict:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    from identity.evaluate import evaluate_assignment

    con = duckdb.connect(str(warehouse))
    con.execute(f"set threads = {THREADS}")
    records = con.sql(
        "select record_key as unique_id, first_name_key, last_name, email_key, email_local, phone_e164, "
        "address_line1, address_city, address_postal_code, user_id from identity.identity_records"
    ).df()
    truth = con.sql("select * from main.truth").df()
    con.close()

    started = time.perf_counter()
    db_api = DuckDBAPI()
    db_api.duckdb_con.execute(f"set threads = {THREADS}")
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("first_name_key", [0.92, 0.85]),
            cl.JaroWinklerAtThresholds("last_name", [0.94, 0.85]),
            cl.ExactMatch("email_key"),
            cl.ExactMatch("phone_e164"),
            cl.JaroWinklerAtThresholds("address_line1", [0.9]),
            cl.ExactMatch("address_city"),
            cl.ExactMatch("address_postal_code"),
            cl.ExactMatch("user_id"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("email_key"),
            block_on("user_id"),
            block_on("phone_e164"),
            block_on("email_local"),
            block_on("first_name_key", "last_name"),
            block_on("last_name", "address_postal_code"),
            block_on("first_name_key", "address_postal_code"),
            block_on("address_line1", "address_postal_code"),
        ],
        retain_matching_columns=False,
    )
    linker = Linker(db_api.register(records), settings, log_level="WARNING")
    linker.training.estimate_probability_two_random_records_match(
        [block_on("email_key"), block_on("user_id")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("first_name_key", "last_name")
    )
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("email_key"))
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("address_postal_code")
    )
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=0.99
    ).as_pandas_dataframe()
    seconds = time.perf_counter() - started
    parts = clusters["unique_id"].str.split(":", n=1, expand=True)
    predicted = clusters.assign(
        source_system=parts[0], source_record_id=parts[1], customer_id=clusters["cluster_id"]
    )
    report = evaluate_assignment(truth, predicted)
    return {
        "seconds": round(seconds, 1),
        "peak_memory_gb": round(peak_memory_gb(), 2),
        "precision": report.precision,
        "recall": report.recall,
        "f1": report.f1,
    }


def child(stage: str, warehouse: Path) -> dict:
    """Run one stage in a fresh process, so its peak memory is its own."""
    output = subprocess.run(
        [sys.executable, __file__, "--stage", stage, "--warehouse", str(warehouse)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-splink", action="store_true")
    parser.add_argument("--warehouse", type=Path, help="DuckDB file to use (default: a temp file)")
    parser.add_argument("--stage", choices=["engine", "splink"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.stage:
        result = (
            run_engine(args.warehouse) if args.stage == "engine" else run_splink(args.warehouse)
        )
        print(json.dumps(result, default=str))
        return

    with tempfile.TemporaryDirectory() as tmp:
        warehouse = args.warehouse or Path(tmp) / "bench.duckdb"
        built = build(warehouse, args.customers, args.seed)
        print(
            f"{args.customers:,} customers -> {built['records']:,} identity records (built in {built['seconds']} s)"
        )
        ours = child("engine", warehouse)
        print("\nidentity engine, seconds per stage:")
        for stage, seconds in ours["stages"].items():
            print(f"  {stage:<20} {seconds:8.2f}")
        print(f"  candidate pairs compared: {ours['candidate_pairs']:,}")
        print(f"  links by rule: {ours['matches_by_rule']}")
        print(f"  refused merges by guard: {ours['refused_by_guard']}")
        rows = [("identity engine", ours)]
        if not args.skip_splink:
            rows.append(("splink 5 (duckdb)", child("splink", warehouse)))
        print(
            f"\n{'engine':<20} {'seconds':>8} {'peak GB':>8} {'precision':>10} {'recall':>8} {'F1':>8}"
        )
        for name, r in rows:
            print(
                f"{name:<20} {r['seconds']:>8} {r['peak_memory_gb']:>8} {r['precision']:>10.4f} {r['recall']:>8.4f} {r['f1']:>8.4f}"
            )


if __name__ == "__main__":
    main()
