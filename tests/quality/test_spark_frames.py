"""The Spark frame source's answer when a table is not on Spark, without starting Spark.

The frames themselves (every suite on Spark's tables, the same outcomes as on DuckDB, a
broken mart failing its ERROR suite) are checked on a real Spark run in
tests/reliability/test_spark_equivalence.py; this is the cheap part: where each table is
read from, and that a missing one is a failed verdict that says what to do.
"""

from __future__ import annotations

from quality.runner import run_suite
from quality.spark_frames import SparkFrames
from quality.suites import suite_by_name


def test_tables_are_read_from_the_handoff_or_from_sparks_warehouse(tmp_path):
    frames = SparkFrames(spark=None, spark_warehouse=tmp_path)
    assert frames.table_folder("raw.load_audit") == tmp_path / "handoff" / "raw" / "load_audit"
    assert frames.table_folder("identity.customer_map") == (
        tmp_path / "handoff" / "identity" / "customer_map"
    )
    assert frames.table_folder("marts.dim_customers") == tmp_path / "marts.db" / "dim_customers"


def test_a_table_missing_on_spark_is_a_failed_verdict_that_says_what_to_do(tmp_path):
    spark_warehouse = tmp_path / "spark_warehouse"
    # The table's folder is looked up before any Spark statement: no session needed.
    frames = SparkFrames(spark=None, spark_warehouse=spark_warehouse)
    spec = suite_by_name("identity_customer_map__coverage")
    verdict = run_suite(frames, spec, tmp_path / "docs")
    assert not verdict.success and verdict.rows_evaluated == 0
    assert verdict.engine == "spark" and verdict.to_metadata()["frame_computed_by"] == "spark"
    assert "identity.identity_records" in verdict.error
    assert str(spark_warehouse / "handoff" / "identity") in verdict.error
    assert "materialise" in verdict.error
