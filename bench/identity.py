"""Identity resolution at scale, raced against Splink 5 on the same normalised records.

    .venv/bin/pip install -c requirements.lock -e ".[bench]"     # Splink (bench-only)
    .venv/bin/python bench/identity.py                           # 1,000,000 customers
    .venv/bin/python bench/identity.py --customers 100000        # a quick run

1. A landing zone from `cdp generate --hard` (demo_data.generate with HARD_HABITS: unlisted
   shared inboxes, surname changes, national-format phones, misspelt domains, ...), loaded
   by the real loader (ingestion.load.load_partition, as the raw assets do) and turned
   into the staging models by the real `dbt build` (selector staging_from_raw).
2. The staging identity records normalised once by the engine's own SQL
   (identity.records.build_identity_records_table) and saved: the common starting point.
3. Each engine in its own process (so its peak RSS is its own), DuckDB with 2 threads,
   timed from those records to clusters:
   a. ours: identity.linkage.link_records with the production IdentityConfig;
   b. Splink 5 (DuckDB backend), configured as Splink recommends and as fairly as we can:
      the same comparisons (Jaro-Winkler names, exact email, phone and city, all with
      term-frequency adjustments; exact postcode, Jaro-Winkler street)
      plus the account id; our blocking rules plus email and user id (our deterministic
      rules' keys); prior from deterministic rules at recall 0.8 (ours assumes the same);
      u by random sampling; m by EM in sessions blocked on other fields; predictions
      clustered by connected components.
4. Both scored against truth.csv (pairwise precision, recall, F1) at their default
   threshold (ours: IdentityConfig's match_weight_threshold; Splink: match probability
   0.95 = match weight 4.25,
   the value of Splink's tutorials) and at the best-F1 match weight of a sweep (sweep runs
   are not timed).
   The evidence ceiling (identity.evaluate) says what exact evidence alone supports.
Prints a table and writes bench/results/identity.json (identity-<N>.json at other sizes;
the README quotes them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402
import pandas as pd  # noqa: E402

THREADS = 2
RESULTS_DIR = REPO / "bench" / "results"  # identity.json at 1,000,000; identity-<N>.json else
# Not bench.duckdb: DuckDB names the catalog after the file, which would clash with schema bench.
WAREHOUSE_NAME = "warehouse.duckdb"
RECORDS_TABLE = "bench.identity_records"
TRUTH_TABLE = "bench.truth"
# Splink's tutorials cluster at match probability 0.95, i.e. match weight log2(0.95/0.05).
SPLINK_DEFAULT_WEIGHT = round(math.log2(0.95 / 0.05), 2)
SPLINK_SWEEP = (
    0.0,
    2.0,
    6.0,
    8.0,
    10.0,
    12.0,
    13.0,
    14.0,
    15.0,
    16.0,
    17.0,
    18.0,
    21.0,
    25.0,
    30.0,
)
ENGINE_SWEEP = (
    2.0,
    3.0,
    6.0,
    8.0,
    10.0,
)  # plus the default, IdentityConfig().match_weight_threshold
EM_BLOCKING = (
    ("first_name_key", "last_name"),
    ("phone_e164",),
    ("address_postal_code",),
    ("email_key",),
)
SPLINK_COLUMNS = (
    "first_name_key",
    "last_name",
    "email_key",
    "email_local",
    "phone_e164",
    "address_line1",
    "address_city",
    "address_postal_code",
    "user_id",
)


def peak_memory_gb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024, 2)


# --- setup: generate, load, stage, normalise (the same code the assets run) ----------------


def stage_zone(work_dir: Path, customers: int, days: int, seed: int) -> dict[str, float]:
    """Generate a --hard zone, load it and build the staging models (engine-independent)."""
    from bench.marts import load, run_dbt
    from demo_data.generate import generate_landing_zone
    from demo_data.habits import HARD_HABITS

    landing, warehouse = work_dir / "landing", work_dir / WAREHOUSE_NAME
    work_dir.mkdir(parents=True, exist_ok=True)
    steps: dict[str, float] = {}
    started = time.perf_counter()
    generate_landing_zone(landing, customers, days, seed, habits=HARD_HABITS)
    steps["generate_hard_zone"] = round(time.perf_counter() - started, 1)
    print(
        f"generated a --hard zone of {customers:,} people in {steps['generate_hard_zone']} s",
        flush=True,
    )
    steps["load_raw"] = load(warehouse, landing)["seconds"]
    print(f"loaded raw tables in {steps['load_raw']} s", flush=True)
    steps["dbt_build_staging"] = run_dbt(
        warehouse, work_dir, "build", "--selector", "staging_from_raw"
    ).wall_seconds
    print(f"built the staging models in {steps['dbt_build_staging']} s", flush=True)
    return steps


def normalise(work_dir: Path) -> dict:
    """The engine's normalisation of the staging records, saved with the truth."""
    from identity.config import IdentityConfig
    from identity.evaluate import read_truth
    from identity.records import RECORDS_TABLE as NORMALISED_TABLE
    from identity.records import build_identity_records_table

    landing, warehouse = work_dir / "landing", work_dir / WAREHOUSE_NAME
    steps: dict[str, float] = {}
    con = duckdb.connect(str(warehouse))
    con.execute(f"set threads = {THREADS}")
    started = time.perf_counter()
    records = build_identity_records_table(con, IdentityConfig())
    steps["normalise_records"] = round(time.perf_counter() - started, 1)
    con.execute("create schema if not exists bench")
    con.execute(
        f"create or replace table {RECORDS_TABLE} as "
        f"select * exclude (rid) from {NORMALISED_TABLE} order by rid"
    )
    con.register("truth_frame", read_truth(landing / "truth.csv"))
    con.execute(f"create or replace table {TRUTH_TABLE} as select * from truth_frame")
    con.close()
    print(
        f"normalised {records:,} identity records in {steps['normalise_records']} s",
        flush=True,
    )
    return {"records": records, "seconds": steps}


def _read_inputs(warehouse: Path) -> tuple[duckdb.DuckDBPyConnection, pd.DataFrame, pd.DataFrame]:
    """An in-memory DuckDB (2 threads) and the saved records and truth."""
    con = duckdb.connect()
    con.execute(f"set threads = {THREADS}")
    con.execute(f"attach '{warehouse}' as saved (read_only)")
    records = con.sql(f"select * from saved.{RECORDS_TABLE} order by record_key").df()
    truth = con.sql(f"select * from saved.{TRUTH_TABLE}").df()
    con.execute("detach saved")
    return con, records, truth


def _score(truth: pd.DataFrame, records: pd.DataFrame, cluster_of) -> dict:
    from identity.evaluate import evaluate_assignment

    predicted = records[["source_system", "source_record_id"]].assign(customer_id=cluster_of)
    report = evaluate_assignment(truth, predicted)
    return {
        "precision": round(report.precision, 5),
        "recall": round(report.recall, 5),
        "f1": round(report.f1, 5),
        "over_merged_customers": report.over_merged_clusters,
    }


def _with_best(result: dict, sweep: list[dict]) -> dict:
    best = max(sweep, key=lambda point: point["f1"])
    return {**result, "sweep": sweep, "best": best}


# --- the two engines, each run in a child process ------------------------------------------


def run_engine(warehouse: Path, sweep_thresholds: tuple[float, ...] = ENGINE_SWEEP) -> dict:
    from identity.config import IdentityConfig
    from identity.linkage import link_records

    con, records, truth = _read_inputs(warehouse)
    config = IdentityConfig()
    started, cpu = time.perf_counter(), time.process_time()
    result = link_records(con, records, config)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    default = {"threshold": config.match_weight_threshold} | _score(
        truth, records, result.clustering.cluster_of
    )
    stages = result.seconds
    sweep = [default]
    for threshold in sweep_thresholds:
        swept = link_records(
            con, records, dataclasses.replace(config, match_weight_threshold=threshold)
        )
        sweep.append({"threshold": threshold} | _score(truth, records, swept.clustering.cluster_of))
        print(f"  ours at match weight {threshold}: {sweep[-1]}", file=sys.stderr, flush=True)
    return _with_best(
        {
            "engine": "cdp identity engine",
            "threshold_kind": "match weight (log2 Bayes factor)",
            "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu_seconds, 1),
            "stages": stages,
            "candidate_pairs": int(len(result.scored_pairs)),
            "peak_memory_gb": peak_memory_gb(),
            "default": default,
        },
        sorted(sweep, key=lambda point: point["threshold"]),
    )


def splink_settings():
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    from identity.config import IdentityConfig

    blocking = [block_on("email_key"), block_on("user_id")] + [
        block_on(*columns) for columns in IdentityConfig().blocking_rules
    ]
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("first_name_key", [0.92, 0.85]).configure(
                term_frequency_adjustments=True
            ),
            cl.JaroWinklerAtThresholds("last_name", [0.94, 0.85]).configure(
                term_frequency_adjustments=True
            ),
            # Shared inboxes and household phones are frequent values: a Splink user
            # down-weights them with term frequencies too.
            cl.ExactMatch("email_key").configure(term_frequency_adjustments=True),
            cl.ExactMatch("phone_e164").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_line1", [0.9]),
            cl.ExactMatch("address_city").configure(term_frequency_adjustments=True),
            cl.ExactMatch("address_postal_code"),
            cl.ExactMatch("user_id"),
        ],
        blocking_rules_to_generate_predictions=blocking,
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def run_splink(warehouse: Path, sweep_thresholds: tuple[float, ...] = SPLINK_SWEEP) -> dict:
    from splink import DuckDBAPI, Linker, block_on

    con, records, truth = _read_inputs(warehouse)
    frame = records[["record_key", *SPLINK_COLUMNS]].rename(columns={"record_key": "unique_id"})
    started, cpu = time.perf_counter(), time.process_time()
    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register(frame), splink_settings(), log_level="WARNING")
    linker.training.estimate_probability_two_random_records_match(
        [block_on("email_key"), block_on("user_id")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    # m by EM, each session blocked on fields it then does not train (Splink's advice).
    # A session whose EM drives a level's m to zero is skipped (Splink refuses it), and said.
    em_sessions, em_failed = [], []
    for columns in EM_BLOCKING:
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(block_on(*columns))
            em_sessions.append("+".join(columns))
        except ValueError as error:
            em_failed.append(f"{'+'.join(columns)}: {str(error).splitlines()[0]}")
    predictions = linker.inference.predict(
        threshold_match_weight=min((*sweep_thresholds, SPLINK_DEFAULT_WEIGHT))
    )
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_weight=SPLINK_DEFAULT_WEIGHT
    ).as_pandas_dataframe()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu

    def cluster_of(table: pd.DataFrame) -> pd.Series:
        return records["record_key"].map(table.set_index("unique_id")["cluster_id"])

    default = {"threshold": SPLINK_DEFAULT_WEIGHT} | _score(truth, records, cluster_of(clusters))
    sweep = [default]
    for threshold in sweep_thresholds:
        swept = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_weight=threshold
        ).as_pandas_dataframe()
        sweep.append({"threshold": threshold} | _score(truth, records, cluster_of(swept)))
        print(f"  splink at match weight {threshold}: {sweep[-1]}", file=sys.stderr, flush=True)
    return _with_best(
        {
            "engine": "splink 5.0.0 (duckdb)",
            "threshold_kind": "match weight (log2 Bayes factor)",
            "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu_seconds, 1),
            "scored_pairs_above_lowest_threshold": con.sql(
                f"select count(*) from {predictions.physical_name}"
            ).fetchall()[0][0],
            "peak_memory_gb": peak_memory_gb(),
            "em_sessions": em_sessions,
            "em_sessions_skipped": em_failed,
            "default": default,
        },
        sorted(sweep, key=lambda point: point["threshold"]),
    )


def child(stage: str, warehouse: Path, sweep: tuple[float, ...]) -> dict:
    """Run one engine in a fresh process, so its time and peak memory are its own."""
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--stage",
            stage,
            "--warehouse",
            str(warehouse),
            "--sweep",
            *(str(t) for t in sweep),
        ],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def evidence_ceiling(warehouse: Path) -> float | None:
    from identity.evaluate import EVIDENCE_COLUMNS, evaluate_assignment

    con, records, truth = _read_inputs(warehouse)
    con.close()
    columns = [c for c in EVIDENCE_COLUMNS if c in records.columns]
    report = evaluate_assignment(
        truth,
        records[["source_system", "source_record_id"]].assign(customer_id=records["record_key"]),
        records[["source_system", "source_record_id", *columns]],
    )
    return round(report.ceiling_recall, 5)


def _has_tables(warehouse: Path, schema: str, tables: tuple[str, ...]) -> bool:
    if not warehouse.exists():
        return False
    with duckdb.connect(str(warehouse), read_only=True) as con:
        found = con.execute(
            "select count(*) from duckdb_tables() where schema_name = ? and list_contains(?, table_name)",
            [schema, list(tables)],
        ).fetchall()[0][0]
    return found == len(tables)


def _row(name: str, result: dict, point: dict) -> str:
    return (
        f"{name:<30} {point['threshold']:>9} {result['seconds']:>8} "
        f"{result.get('cpu_seconds', ''):>8} {result['peak_memory_gb']:>8} "
        f"{point['precision']:>9.4f} {point['recall']:>7.4f} {point['f1']:>7.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-splink", action="store_true")
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="keep the landing zone and warehouse here; reused when it already holds them",
    )
    parser.add_argument(
        "--renormalise",
        action="store_true",
        help="with --work-dir: normalise the kept staging records again (after an engine change)",
    )
    parser.add_argument(
        "--prepare-only", action="store_true", help="stop once the records are saved"
    )
    parser.add_argument(
        "--engine-sweep",
        type=float,
        nargs="*",
        default=ENGINE_SWEEP,
        help=f"our match weights to score besides the default (default {ENGINE_SWEEP})",
    )
    parser.add_argument(
        "--splink-sweep",
        type=float,
        nargs="*",
        default=SPLINK_SWEEP,
        help=f"Splink match weights to score (default {SPLINK_SWEEP})",
    )
    parser.add_argument("--sweep", type=float, nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--stage", choices=["engine", "splink"], help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.stage:
        run = run_engine if args.stage == "engine" else run_splink
        print(json.dumps(run(args.warehouse, tuple(args.sweep or ())), default=str))
        return

    with tempfile.TemporaryDirectory(prefix="cdp-bench-identity-") as scratch:
        work_dir = args.work_dir or Path(scratch)
        warehouse = work_dir / WAREHOUSE_NAME
        staged = _has_tables(warehouse, "staging", ("stg_web__events",))
        if _has_tables(warehouse, "bench", ("identity_records", "truth")) and not args.renormalise:
            print(f"reusing the normalised records in {warehouse}", flush=True)
            prepared = {"reused": str(warehouse)}
        elif staged:
            print(f"reusing the staging models in {warehouse}", flush=True)
            prepared = {"reused_staging": str(warehouse)} | normalise(work_dir)
        elif work_dir.exists() and any(work_dir.iterdir()):
            raise SystemExit(
                f"{work_dir} holds a half-prepared run: empty it, or pick another --work-dir"
            )
        else:
            steps = stage_zone(work_dir, args.customers, args.days, args.seed)
            prepared = normalise(work_dir)
            prepared["seconds"] = steps | prepared["seconds"]
        if args.prepare_only:
            return
        ceiling = evidence_ceiling(warehouse)
        ours = child("engine", warehouse, tuple(args.engine_sweep))
        results = {"ours": ours}
        if not args.skip_splink:
            results["splink"] = child("splink", warehouse, tuple(args.splink_sweep))

    print(f"\nevidence ceiling recall: {ceiling}")
    print(f"our engine, seconds per stage: {ours['stages']}")
    header = f"{'engine @ threshold':<30} {'threshold':>9} {'seconds':>8} {'CPU s':>8} {'peak GB':>8} {'precision':>9} {'recall':>7} {'F1':>7}"
    print(header)
    for result in results.values():
        print(_row(f"{result['engine']} (default)", result, result["default"]))
        print(_row(f"{result['engine']} (best F1)", result, result["best"]))
    report = {
        "customers": args.customers,
        "days": args.days,
        "seed": args.seed,
        "zone": "cdp generate --hard",
        "threads": THREADS,
        "prepare": prepared,
        "evidence_ceiling_recall": ceiling,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "engines": results,
        "note": "seconds: from the saved normalised records to clusters, default threshold; "
        "sweeps are not timed; peak memory is each engine process's max RSS (sweep included)",
    }
    name = "identity.json" if args.customers == 1_000_000 else f"identity-{args.customers}.json"
    results_file = RESULTS_DIR / name
    RESULTS_DIR.mkdir(exist_ok=True)
    results_file.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {results_file.relative_to(REPO)}")


if __name__ == "__main__":
    main()
