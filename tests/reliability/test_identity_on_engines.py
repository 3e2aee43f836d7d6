"""Identity resolved by SQL on DuckDB and on a local Spark gives the customers link_records
gives (issue 15: identity on Spark).

The input is the reliability reference run's zone (a real generated zone through `cdp
run`), normalised by identity/records.py as the pipeline does. Three paths from the same
records: today's link_records (SciPy and union-find on the driver), and
identity/engine_linkage.py's SQL on DuckDB and on Spark (`local[2]`, two shuffle
partitions, UI off). Same partition of records into customers, same ids, same golden
records.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from identity.config import IdentityConfig
from identity.engine_linkage import resolve_records_on_engine
from identity.linkage import link_records
from identity.records import RECORDS_TABLE, build_identity_records_table
from identity.shared_values import MATCH_RECORDS_TABLE, detect_shared_values
from tests.reliability.test_spark_equivalence import require_java
from warehouse_engine.sql_engines import DuckDBEngine, SparkEngine, local_spark_session

pytestmark = pytest.mark.slow
RUN_AT = pd.Timestamp("2026-01-01 06:00")


def same_partition(a, b) -> bool:
    return len(set(zip(a, b, strict=True))) == len(set(a)) == len(set(b))


def test_identity_sql_on_duckdb_and_spark_finds_the_customers_link_records_finds(
    reference, tmp_path
):
    require_java()
    config = IdentityConfig()
    con = duckdb.connect(str(reference.copy_to(tmp_path / "wh")))
    build_identity_records_table(con, config)
    detect_shared_values(con, RECORDS_TABLE, config)
    match = con.sql(f"select * from {MATCH_RECORDS_TABLE} order by rid").df()
    full = con.sql(
        f"select r.*, m.shared_values from {RECORDS_TABLE} r "
        f"join {MATCH_RECORDS_TABLE} m using (rid) order by rid"
    ).df()
    expected = link_records(
        con, match, config, records_table_loaded=True, records_table=MATCH_RECORDS_TABLE
    ).clustering.cluster_of
    assert len(set(expected)) < len(expected)  # the zone has customers of several records

    duck = DuckDBEngine(con)
    duck.register_frame("ie_full", full)
    on_duckdb = resolve_records_on_engine(
        duck, MATCH_RECORDS_TABLE, config, full_records_table="ie_full", run_at=RUN_AT
    )
    assert (on_duckdb.linkage.cluster_of(duck) == expected).all()

    spark = local_spark_session("local[2]", 2, "cdp-identity-test")
    try:
        engine = SparkEngine(spark)
        engine.register_frame("ie_match", match)
        engine.register_frame("ie_full", full)
        on_spark = resolve_records_on_engine(
            engine, "ie_match", config, full_records_table="ie_full", run_at=RUN_AT
        )
        spark_clusters = on_spark.linkage.cluster_of(engine)
        spark_ids = engine.fetch_frame("select rid, customer_id from _ie_customers order by rid")
        spark_golden = engine.fetch_frame("select * from _ie_golden order by customer_id")
    finally:
        spark.stop()

    assert same_partition(expected, spark_clusters)
    assert (spark_clusters == expected).all()  # both label a customer by its smallest rid
    assert on_spark.linkage.model.prior_weight == on_duckdb.linkage.model.prior_weight
    assert on_spark.linkage.candidate_pairs == on_duckdb.linkage.candidate_pairs
    duck_ids = duck.fetch_frame("select rid, customer_id from _ie_customers order by rid")
    assert spark_ids.equals(duck_ids)
    duck_golden = duck.fetch_frame("select * from _ie_golden order by customer_id")
    assert list(spark_golden.columns) == list(duck_golden.columns)
    assert len(spark_golden) == len(set(expected))
    for column in duck_golden.columns:
        left, right = duck_golden[column], spark_golden[column]
        if pd.api.types.is_datetime64_any_dtype(left):
            right = pd.to_datetime(right)
        assert left.astype(str).tolist() == right.astype(str).tolist(), column
