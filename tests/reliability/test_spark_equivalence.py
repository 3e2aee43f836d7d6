"""`CDP_ENGINE=spark cdp run` runs the whole pipeline and gives what DuckDB's gives (issue 15).

The DuckDB side is the reliability suite's reference run (a real `cdp run` of a generated
zone, shared with the other reliability tests, not run again here). The Spark side is a
second real `cdp run` of the same zone with `CDP_ENGINE=spark` on a local Spark
(`local[2]`, two shuffle partitions, UI off): the same Dagster job, every dbt step (source
tests, staging, marts, with their data tests and contracts) on dbt-spark, the Python steps
on the run's local step store with their tables handed to Spark as Parquet. Compared:
raw counts and rejects, every staging/intermediate/mart table Spark built (rows, NULLs per
column, sum of every numeric column, revenue included), the partition of source records
into customers (up to id labels), and the published BI copy's tables and columns.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from orchestration.cli import main as cdp
from tests.reliability.warehouse_state import raw_counts
from warehouse_engine.equivalence import differences, duckdb_fingerprints, spark_fingerprints

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


def rejects_per_table(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, int]:
    return dict(con.execute(f"select source_table, count(*) from {relation} group by 1").fetchall())


def customer_partition(con: duckdb.DuckDBPyConnection, relation: str) -> set[frozenset]:
    """Source records grouped by golden customer, without the customer ids themselves."""
    groups: dict[str, set] = defaultdict(set)
    for system, record, customer in con.execute(
        f"select source_system, source_record_id, customer_id from {relation}"
    ).fetchall():
        groups[customer].add((system, record))
    return {frozenset(g) for g in groups.values()}


def published_columns(bi_file: Path, parquet_dir: Path) -> dict[str, list[str]]:
    """`bi.duckdb` table -> columns, and the same read from `bi_parquet/<mart>.parquet`."""
    with duckdb.connect(str(bi_file), read_only=True) as con:
        tables = {
            t: [c[0] for c in con.execute(f'describe marts."{t}"').fetchall()]
            for (t,) in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'marts' order by 1"
            ).fetchall()
        }
        files = {
            f.stem: [c[0] for c in con.execute(f"describe from read_parquet('{f}')").fetchall()]
            for f in sorted(parquet_dir.glob("*.parquet"))
        }
    assert files == tables, "bi_parquet/ and bi.duckdb disagree"
    return tables


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

    assert cdp(["run", "--landing", str(reference.zone), "--warehouse", str(warehouse)]) == 0

    # Raw: the same rows per table and day, the same rejects, and Spark read all of them.
    assert raw_counts(warehouse) == reference.raw
    with duckdb.connect() as con:
        con.execute(f"attach '{reference.warehouse}' as duck (read_only)")
        con.execute(f"attach '{warehouse}' as spark_run (read_only)")
        assert rejects_per_table(con, "spark_run.raw.rejects") == rejects_per_table(
            con, "duck.raw.rejects"
        )
        handoff = spark_warehouse / "handoff" / "raw"
        for table in {key.split("/")[0] for key in reference.raw}:
            handed = con.execute(
                f"select count(*) from read_parquet('{handoff / table}/*.parquet')"
            ).fetchone()[0]
            assert handed == sum(n for k, n in reference.raw.items() if k.startswith(table + "/"))

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
        map_files = spark_warehouse / "marts.db" / "customer_identity_map"
        spark_partition = customer_partition(con, f"read_parquet('{map_files}/*.parquet')")
        assert spark_partition == customer_partition(con, "duck.marts.customer_identity_map")
        assert len(spark_partition) > 10

    # BI tools see the same tables and columns whichever engine built them.
    spark_published = published_columns(
        warehouse.parent / "bi.duckdb", warehouse.parent / "bi_parquet"
    )
    duckdb_published = published_columns(
        reference.warehouse.parent / "bi.duckdb", reference.warehouse.parent / "bi_parquet"
    )
    assert spark_published == duckdb_published
    assert "dim_customers" in spark_published
