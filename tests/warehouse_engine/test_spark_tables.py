"""The crossings between the local step store and Spark's Parquet folders, on real DuckDB
files and real Parquet (no Spark needed: the folders are what Spark reads and writes)."""

from __future__ import annotations

import duckdb
import pytest

from warehouse_engine.spark_tables import (
    SparkTableError,
    hand_off_tables,
    handed_off_relations,
    import_spark_tables,
    spark_built_relations,
    spark_table_folder,
    write_back_spark_tables,
)


@pytest.fixture
def store(tmp_path):
    con = duckdb.connect(str(tmp_path / "store.duckdb"))
    con.execute("create schema raw; create schema marts")
    con.execute(
        "create table raw.email_contacts as select 'c' || i as contact_id, "
        "timestamp '2026-10-01 09:30:00' + i * interval 1 hour as updated_at from range(5) t(i)"
    )
    yield con
    con.close()


def _query(sql):
    with duckdb.connect() as con:
        return con.execute(sql).fetchall()


def _spark_writes(folder, sql):
    """Stands in for a table dbt built on Spark: a Parquet file in its table folder."""
    folder.mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute(f"copy ({sql}) to '{folder / 'part-00000-x.snappy.parquet'}' (format parquet)")


def test_a_python_steps_table_goes_to_spark_whole_and_replaces_the_last_one(store, tmp_path):
    root = tmp_path / "handoff"
    assert hand_off_tables(store, root, ["raw.email_contacts"])[0].rows == 5
    store.execute("delete from raw.email_contacts where contact_id = 'c0'")
    assert hand_off_tables(store, root, ["raw.email_contacts"])[0].rows == 4
    assert handed_off_relations(root) == ["raw.email_contacts"]
    files = list((root / "raw" / "email_contacts").iterdir())
    assert [f.name for f in files] == ["part-0.parquet"]
    rows = _query(f"select count(*), min(contact_id) from '{files[0]}'")[0]
    assert rows == (4, "c1")


def test_what_spark_built_comes_back_and_an_erasure_goes_back(store, tmp_path):
    spark = tmp_path / "spark"
    folder = spark_table_folder(spark, "marts.dim_customers")
    _spark_writes(folder, "select 'cust_' || i as customer_id, i * 100 as ltv from range(3) t(i)")
    assert spark_built_relations(spark, ("marts", "staging")) == ["marts.dim_customers"]

    imported = import_spark_tables(store, spark, ["marts.dim_customers"])
    assert [(t.relation, t.rows) for t in imported] == [("marts.dim_customers", 3)]

    store.execute("delete from marts.dim_customers where customer_id = 'cust_1'")
    assert write_back_spark_tables(store, spark, ["marts.dim_customers"]) == ["marts.dim_customers"]
    files = list(folder.iterdir())
    assert len(files) == 1 and files[0].suffix == ".parquet"  # the old file is gone
    ids = _query(f"select list(customer_id order by 1) from '{files[0]}'")[0][0]
    assert ids == ["cust_0", "cust_2"]
    assert dict(row[:2] for row in _query(f"describe from '{files[0]}'")) == {
        "customer_id": "VARCHAR",
        "ltv": "BIGINT",
    }


def test_an_empty_spark_table_without_files_keeps_its_columns_or_says_why_not(store, tmp_path):
    spark = tmp_path / "spark"
    folder = spark_table_folder(spark, "marts.dim_customers")
    _spark_writes(folder, "select 'cust_1' as customer_id")
    import_spark_tables(store, spark, ["marts.dim_customers"])
    for f in folder.iterdir():
        f.unlink()
    import_spark_tables(store, spark, ["marts.dim_customers"])
    assert store.execute("select count(*) from marts.dim_customers").fetchone() == (0,)

    (spark / "marts.db" / "never_built").mkdir()
    with pytest.raises(SparkTableError, match="no earlier copy"):
        import_spark_tables(store, spark, ["marts.never_built"])
    with pytest.raises(SparkTableError, match="does not exist"):
        import_spark_tables(store, spark, ["marts.missing"])
