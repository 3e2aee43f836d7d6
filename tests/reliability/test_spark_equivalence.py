"""`CDP_ENGINE=spark cdp run` runs the whole pipeline and gives what DuckDB's gives (issue 15).

The DuckDB side is the reliability suite's reference run (a real `cdp run` of a generated
zone, shared with the other reliability tests, not run again here). The Spark side is a
second real `cdp run` of the same zone with `CDP_ENGINE=spark` on a local Spark
(`local[2]`, two shuffle partitions, UI off): the same Dagster job, the landing zone read,
typed and committed by Spark (the raw steps), every dbt step (source tests, staging,
marts, with their data tests and contracts) on dbt-spark, the other Python steps on the
run's local step store with their tables handed to Spark as Parquet. Compared: every raw
row, reject and audit row Spark committed against DuckDB's loader's, every
staging/intermediate/mart table Spark built (rows, NULLs per column, sum of every numeric
column, revenue included), the partition of source records into customers (up to id
labels), the published BI copy's tables and columns, and the GX suites' outcomes (which
passed, failed or warned, each expectation's unexpected count), whose frames Spark
computed on the Spark run. An erasure request read by Spark afterwards and carried out by
the run's erasure step leaves no row of the person in Spark's raw day folders. Then, on the same Spark session, a mart broken on Spark fails
its ERROR suite and an invoice without a customer warns.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

import orchestration.assets.identity as identity_asset
from ingestion.contract import RAW_TABLES
from ingestion.spark_days import load_partitions_through_spark
from orchestration.assets.privacy import privacy_erasure
from orchestration.cli import main as cdp
from orchestration.resources import WarehouseResource
from quality.runner import run_suite
from quality.spark_frames import SparkFrames
from quality.suites import suite_by_name
from tests.identity.test_engine_pipeline import steward_nights
from tests.reliability.warehouse_state import raw_counts
from warehouse_engine.equivalence import (
    differences,
    duckdb_fingerprints,
    identity_partitions,
    published_columns,
    quality_outcomes,
    rejects_per_table,
    spark_fingerprints,
)
from warehouse_engine.ingest_equivalence import compare_raw, raw_rows_holding
from warehouse_engine.settings import EngineSettingError, EngineSettings
from warehouse_engine.spark_session import configure_remote_session, pipeline_spark_session
from warehouse_engine.sql_engines import DuckDBEngine, SparkEngine

pytestmark = pytest.mark.slow


def require_java() -> None:
    """A local Spark needs Java 17 (pyspark ships the jars, not the JVM). Missing on a
    developer machine: skipped with the install command; under CI (`.ci/run` installs
    it): a failure, so the engine check never turns silently green."""
    if shutil.which("java"):
        return
    message = "Java is not installed (apt-get install -y openjdk-17-jre-headless)"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must run the Spark equivalence test", pytrace=False)
    pytest.skip(message)


def stop_spark_session() -> None:
    """dbt runs in this process (orchestration/dbt_in_process.py), so dbt-spark's session and
    its JVM live in the test worker; stopped here so the rest of the suite gets the memory."""
    from pyspark.sql import SparkSession

    session = getattr(SparkSession, "_instantiatedSession", None)
    if session is not None:
        session.stop()


def test_cdp_run_on_spark_gives_the_tables_duckdb_gives(reference, tmp_path, monkeypatch):
    require_java()
    # `cdp run` sets CDP_LANDING_DIR / CDP_WAREHOUSE; they are put back afterwards.
    for name in ("CDP_LANDING_DIR", "CDP_WAREHOUSE", "CDP_SPARK_WAREHOUSE", "CDP_SPARK_REMOTE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CDP_ENGINE", "spark")
    monkeypatch.setenv("CDP_SPARK_MASTER", "local[2]")
    monkeypatch.setenv("CDP_SPARK_SHUFFLE_PARTITIONS", "2")
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    spark_warehouse = warehouse.parent / "spark_warehouse"
    # what the identity step's resolve_identities returned (it runs in this process)
    summaries = []
    resolve = identity_asset.resolve_identities

    def resolve_and_keep(*args, **kwargs):
        summaries.append(resolve(*args, **kwargs))
        return summaries[-1]

    monkeypatch.setattr(identity_asset, "resolve_identities", resolve_and_keep)

    try:
        assert cdp(["run", "--landing", str(reference.zone), "--warehouse", str(warehouse)]) == 0
        # identity linked on Spark, in full, every record re-resolved
        assert [(s.linkage_engine, s.mode) for s in summaries] == [("spark", "full")]
        assert summaries[0].candidate_pairs > 0
        _compare_with_the_duckdb_run(reference, warehouse, spark_warehouse)
        _same_identity_tables(reference.warehouse, warehouse)
        # steward overrides, stable ids and the logs on Spark: the second of three nights
        # (the one with the link, unlink, block, a merge and a split) on the run's session
        spark = pipeline_spark_session(EngineSettings.from_environment(duckdb_warehouse=warehouse))
        _connect_session_folder_check(spark, warehouse, tmp_path)
        nights = steward_nights(
            tmp_path / "steward",
            lambda con, night: SparkEngine(spark) if night == 2 else DuckDBEngine(con),
        )
        assert nights[2].linkage_engine == "spark"
        # An erasure request reaches Spark's raw day folders.
        _erasure_rewrites_sparks_raw_days(spark, reference.days[-1], warehouse, tmp_path)
        # Last, as it breaks Spark's tables: on the run's Spark session (dbt's, in this
        # process, still up), a broken mart fails its ERROR suite, a NULL customer warns.
        dim_customers, sampled, invoices, unattributed = _checks_on_broken_spark_tables(warehouse)
    finally:
        stop_spark_session()
    assert dim_customers.engine == "spark" and dim_customers.severity == "ERROR"
    assert not dim_customers.success and dim_customers.error is None
    assert {(r.column, r.unexpected_count) for r in dim_customers.failed} == {("_in_mart", 1)}
    # Above the sample limit Spark samples the rest, and keeps every row a SQL rule flagged.
    assert sampled.sampled and sampled.rows_evaluated <= 20 + 1 < sampled.rows_in_scope
    assert {(r.column, r.unexpected_count) for r in sampled.failed} == {("_in_mart", 1)}
    assert invoices.engine == "spark" and invoices.severity == "WARN"
    assert {(r.column, r.unexpected_count) for r in invoices.failed} == {
        ("customer_id", unattributed)
    }


def _compare_with_the_duckdb_run(reference, warehouse: Path, spark_warehouse: Path) -> None:
    """Everything the Spark run wrote against the shared DuckDB reference run."""
    # Raw: Spark read the zone (ingestion/spark_days.py): every row, reject and audit row
    # it committed equals DuckDB's loader's, value for value (load times aside); the step
    # store got the same days; nothing went through the old DuckDB-to-Spark hand-off.
    raw_root = spark_warehouse / "raw"
    with duckdb.connect(str(reference.warehouse), read_only=True) as con:
        comparisons = compare_raw(con, raw_root, ignore_load_times=True)
    assert [
        (c.relation, c.duckdb_rows, c.spark_rows, c.examples) for c in comparisons if not c.same
    ] == []
    assert sum(c.spark_rows for c in comparisons if c.relation.startswith("raw.load_audit")) > 0
    assert {d.name for d in raw_root.glob("*/dt=*")} == {f"dt={day}" for day in reference.days}
    assert not (spark_warehouse / "handoff" / "raw").exists()
    assert raw_counts(warehouse) == reference.raw
    assert rejects_per_table(warehouse) == rejects_per_table(reference.warehouse)

    # Every table Spark built equals DuckDB's, in numbers that do not depend on ids.
    duckdb_side = duckdb_fingerprints(reference.warehouse)
    spark_side = spark_fingerprints(spark_warehouse)
    assert differences(duckdb_side, spark_side) == []
    marts = {t.split(".", 1)[1] for t in spark_side if t.startswith("marts.")}
    assert marts >= set(reference.marts)
    invoices = spark_side["marts.fct_invoices"]
    assert invoices.rows == reference.marts["fct_invoices"] > 0
    assert invoices.sums["net_revenue_usd_cents"] > 0

    # The same people: source records fall into the same customers, whatever their ids.
    duckdb_partition, spark_partition = identity_partitions(reference.warehouse, spark_warehouse)
    assert spark_partition == duckdb_partition
    assert len(spark_partition) > 10

    # BI tools see the same tables and columns whichever engine built them.
    spark_published = published_columns(warehouse)
    assert spark_published == published_columns(reference.warehouse)
    assert "dim_customers" in spark_published

    # The same quality verdicts: every suite and scope, passed or not, and each
    # expectation's outcome and unexpected count; on Spark every frame was Spark's.
    duckdb_checks = quality_outcomes(reference.warehouse.parent / "quality_docs")
    spark_checks = quality_outcomes(warehouse.parent / "quality_docs")
    assert {o["computed_by"] for o in duckdb_checks.values()} == {"duckdb"}
    assert {o["computed_by"] for o in spark_checks.values()} == {"spark"}
    assert _without_engine(spark_checks) == _without_engine(duckdb_checks)
    assert {key.split("_")[0] for key in spark_checks} == {"raw", "identity", "marts"}
    assert len(spark_checks) >= 30


def _erasure_rewrites_sparks_raw_days(spark, day: str, warehouse: Path, tmp_path: Path) -> None:
    """An erasure request delivered after the run, read by Spark as any delivery, then
    carried out by the step `cdp run` runs after the marts (`privacy_erasure`, on the
    run's warehouse and Spark session, not a second whole run): the person's email was in
    Spark's raw day folders (rows or rejects) and is in none afterwards."""
    settings = EngineSettings.from_environment(duckdb_warehouse=warehouse)
    raw_root = settings.raw_root
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (email,) = con.execute(
            "select min(lower(email)) from raw.email_contacts where email like '%@%'"
        ).fetchone()
    assert raw_rows_holding(raw_root, [email], skip=("privacy_requests",)) > 0
    zone = tmp_path / "requests"
    folder = zone / RAW_TABLES["privacy_requests"].landing_path / f"dt={day}"
    folder.mkdir(parents=True)
    (folder / "part-0000.csv").write_text(
        f"request_id,request_type,email,phone,received_at\nreq-spark-1,erase,{email},,{day}T09:00:00Z\n"
    )
    with duckdb.connect(str(warehouse)) as con:
        load_partitions_through_spark(
            con, spark, "privacy_requests", [date.fromisoformat(day)], zone, raw_root,
            settle_seconds=0,
        )  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CDP_PRIVACY_SALT", "spark-equivalence-test-salt-0123456789")
        result = dg.materialize(
            [privacy_erasure], resources={"warehouse": WarehouseResource(path=str(warehouse))}
        )
    assert result.success
    assert raw_rows_holding(raw_root, [email], skip=("privacy_requests",)) == 0


def _connect_session_folder_check(spark, warehouse: Path, tmp_path: Path) -> None:
    """What a Spark Connect session is checked for before a run uses it, on this session
    (the same conf API): the pipeline's runtime settings are set, a server writing tables
    where the pipeline reads them passes, one writing elsewhere is refused by name."""
    settings = EngineSettings.from_environment(duckdb_warehouse=warehouse)
    configure_remote_session(spark, settings)
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    elsewhere = dataclasses.replace(
        settings, spark_warehouse=tmp_path / "elsewhere", spark_remote="sc://cluster:15002"
    )
    with pytest.raises(EngineSettingError, match="CDP_SPARK_WAREHOUSE") as refused:
        configure_remote_session(spark, elsewhere)
    assert str(settings.spark_warehouse) in str(refused.value)


def _same_identity_tables(duckdb_file: Path, spark_run_file: Path) -> None:
    """The Spark run's identity tables (written on its step store from Spark's linkage)
    against the DuckDB run's: the same customer id for every record (ids are minted from
    record keys, so they match, not only the partition), reached through the same record
    and rule, the same golden customers and refused merges."""
    with duckdb.connect() as con:
        con.execute(f"attach '{duckdb_file}' as duck (read_only)")
        con.execute(f"attach '{spark_run_file}' as spark (read_only)")
        for table, columns in (
            ("customer_map", "source_system, source_record_id, customer_id, match_rule, "
             "round(match_weight, 9), matched_record"),
            ("golden_customers", "* exclude (created_at, updated_at)"),
            ("refused_merges", "* exclude (refused_at)"),
            ("id_registry", "record_key, customer_id"),
        ):  # fmt: skip
            rows = {
                side: con.execute(
                    f"select {columns} from {side}.identity.{table} order by all"
                ).fetchall()
                for side in ("duck", "spark")
            }
            assert rows["spark"] == rows["duck"], table
            assert rows["duck"] or table == "refused_merges", table


def _without_engine(outcomes: dict[str, dict]) -> dict[str, dict]:
    return {key: {k: v for k, v in o.items() if k != "computed_by"} for key, o in outcomes.items()}


def _replace_spark_table(folder: Path, broken) -> None:
    """Write `broken` (a DataFrame read from `folder`) over Spark's table folder."""
    aside = folder.with_name(folder.name + ".broken")
    broken.write.parquet(str(aside))
    shutil.rmtree(folder)
    aside.rename(folder)


def _checks_on_broken_spark_tables(warehouse: Path):
    """marts.dim_customers without one customer, and one invoice of marts.fct_invoices
    without its customer, written over Spark's tables, then their suites run on Spark.
    Returns the verdicts (dim_customers also sampled down to 20 rows) and how many
    invoices then have no customer."""
    from pyspark.sql import functions as F

    settings = EngineSettings.from_environment(duckdb_warehouse=warehouse)
    spark = pipeline_spark_session(settings)  # the run's session, not a new JVM
    marts = settings.spark_warehouse / "marts.db"

    customers = spark.read.parquet(str(marts / "dim_customers")).localCheckpoint()
    first = customers.agg(F.min("customer_id")).first()[0]
    _replace_spark_table(marts / "dim_customers", customers.where(F.col("customer_id") != first))

    invoices = spark.read.parquet(str(marts / "fct_invoices")).localCheckpoint()
    one = invoices.where(F.col("customer_id").isNotNull()).agg(F.min("invoice_id")).first()[0]
    unattributed = invoices.where(F.col("customer_id").isNull()).count() + 1
    without_customer = F.when(F.col("invoice_id") == one, F.lit(None))
    _replace_spark_table(
        marts / "fct_invoices",
        invoices.withColumn("customer_id", without_customer.otherwise(F.col("customer_id"))),
    )

    frames = SparkFrames(spark, settings.spark_warehouse)
    docs = warehouse.parent / "broken_quality_docs"
    dim_customers_suite = suite_by_name("marts_dim_customers__errors")
    return (
        run_suite(frames, dim_customers_suite, docs),
        run_suite(frames, dim_customers_suite, docs, sample_limit=20),
        run_suite(frames, suite_by_name("marts_fct_invoices__warnings"), docs),
        unattributed,
    )
