"""Identity as SQL the engine runs (identity/engine_linkage.py) decides as link_records does.

DuckDB only and in-process: the guards the driver keeps (cardinality limits by union-find
over the components that break one, the shared-mailbox split), the household guard in
SQL, connected components by label propagation, and the Spark dialect rewrites. The same
partition on a local Spark is tests/reliability/test_identity_on_engines.py.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components

from identity.config import IdentityConfig
from identity.engine_linkage import (
    assign_customer_ids_on_engine,
    connected_components,
    link_records_on_engine,
    training_sample_filter,
)
from identity.linkage import link_records
from identity.records import build_identity_records_table
from identity.shared_values import MATCH_RECORDS_TABLE, detect_shared_values
from identity.stable_ids import mint_customer_id
from tests.identity.background import add_unrelated_people
from warehouse_engine.sql_engines import DuckDBEngine, to_spark_sql


def same_partition(a, b) -> bool:
    """The same records together, whatever the labels."""
    return len(set(zip(a, b, strict=True))) == len(set(a)) == len(set(b))


def match_records(con: duckdb.DuckDBPyConnection, config: IdentityConfig) -> pd.DataFrame:
    """The matching copy of the normalised records, as resolve_identities builds it."""
    build_identity_records_table(con, config)
    detect_shared_values(con, "_identity_records", config)
    return con.sql(f"select * from {MATCH_RECORDS_TABLE} order by rid").df()


def test_guards_decide_on_the_engine_path_as_in_link_records(staging, warehouse):
    # three user ids on one mailbox: the cardinality guard refuses the third (driver)
    for n in (1, 2, 3):
        staging.billing(f"cus_{n}", user_id=f"u_{n}", email="family@home.net", name="Ada Lovelace")
    # a household at one address and phone, and one of them under a typo (SQL guard)
    address = {
        "address_line1": "12 Main Street",
        "address_city": "Springfield",
        "address_postal_code": "62701",
        "address_country": "US",
        "phone": "(217) 555-0142",
    }
    staging.billing("cus_4", name="Grace Hopper", email="grace@home.net", **address)
    staging.billing("cus_5", name="Byron Hopper", email="byron@home.net", **address)
    staging.contact(
        "ct_1", "g.h@work.com", first_name="Grase", last_name="Hopper",
        phone="217-555-0142", city="Springfield", country="US",
    )  # fmt: skip
    add_unrelated_people(staging)
    config = IdentityConfig().with_overrides(match_weight_threshold=4.5)
    records = match_records(warehouse, config)

    expected = link_records(
        warehouse, records, config, records_table_loaded=True, records_table=MATCH_RECORDS_TABLE
    )
    engine = DuckDBEngine(warehouse)
    linkage = link_records_on_engine(engine, MATCH_RECORDS_TABLE, config)
    cluster_of = linkage.cluster_of(engine)

    assert same_partition(expected.clustering.cluster_of, cluster_of)
    assert (cluster_of == expected.clustering.cluster_of).all()  # both: the smallest rid
    assert linkage.guarded_components == 1
    assert set(linkage.refused["guard"]) == {"max_user_ids"}
    assert linkage.household_refused_pairs >= 1
    assert linkage.accepted_probabilistic_pairs == expected.accepted_probabilistic_pairs
    assert linkage.model.prior_weight == expected.model.prior_weight
    key = dict(zip(records["record_key"], cluster_of, strict=True))
    assert key["billing:cus_1"] == key["billing:cus_2"] != key["billing:cus_3"]
    assert key["billing:cus_4"] != key["billing:cus_5"]

    customers = assign_customer_ids_on_engine(engine, MATCH_RECORDS_TABLE, linkage.clusters_table)
    ids = engine.fetch_frame("select rid, customer_id from _ie_customers order by rid")
    assert customers == len(set(cluster_of))
    first_key = records.groupby(cluster_of)["record_key"].transform("min")
    assert ids["customer_id"].tolist() == [mint_customer_id(k, set()) for k in first_key]


def test_connected_components_in_sql_match_scipy_on_long_chains():
    # a path of 300 records (label propagation alone would take 300 rounds), a star, pairs
    # and records without edges
    rng = np.random.default_rng(5)
    order = rng.permutation(300)
    edges = [(int(a), int(b)) for a, b in zip(order[:-1], order[1:], strict=True)]
    edges += [(400, k) for k in range(401, 450)] + [(500, 501), (503, 502)]
    n = 520
    con = duckdb.connect()
    engine = DuckDBEngine(con)
    engine.create_table("records", f"select cast(range as integer) as rid from range({n})")
    engine.register_frame("edges", pd.DataFrame(edges, columns=["rid_l", "rid_r"]).astype(np.int32))
    rounds = connected_components(engine, "edges", "components", "records")
    found = engine.fetch_frame("select cluster from components order by rid")["cluster"]
    left, right = zip(*edges, strict=True)
    graph = coo_matrix((np.ones(len(edges)), (left, right)), shape=(n, n))
    expected = scipy_components(graph, directed=False)[1]
    assert same_partition(expected, found.to_numpy())
    assert (
        found[299] == found[order[0]] == 0
        and found[449] == 400
        and found[450] == 450
        and found[502] == 502
    )
    assert rounds <= 12  # large and small stars: a few rounds, not one per link of the chain


def test_duckdb_sql_becomes_spark_sql_with_row_values_as_structs():
    spark = to_spark_sql(
        "with r as materialized (select * from t) "
        "select arg_min(u, (s <> 'billing', -epoch(ts), k)), struct_pack(f := a), "
        "regexp_replace(x, '[^a-z]', '', 'g'), k in (1, 2) from r"
    )
    assert "MATERIALIZED" not in spark
    assert "MIN_BY(u, STRUCT(s <> 'billing'" in spark
    assert "REGEXP_REPLACE(x, '[^a-z]', '')" in spark and "IN (1, 2)" in spark


def test_the_training_sample_of_a_large_zone_keeps_pairs_of_high_record_ids():
    # Above 2M candidate pairs (~400,000 people) training keeps a hashed sample of them; the
    # record ids are INTEGER, and at 1,000,000 people `rid * 40503` overflowed INT32.
    pairs = pd.DataFrame(
        {
            "rid_l": np.arange(2_150_000, 2_200_000, 10, dtype=np.int32),
            "rid_r": np.arange(2_150_001, 2_200_001, 10, dtype=np.int32),
        }
    )
    con = duckdb.connect()
    con.register("compared", pairs)
    where = training_sample_filter(candidate_pairs=40_000_000, training_sample_pairs=2_000_000)

    kept = con.execute(f"select count(*) from compared {where}").fetchone()[0]

    assert 0.03 < kept / len(pairs) < 0.07  # ~ 2M / 40M of the pairs
    assert training_sample_filter(candidate_pairs=500_000, training_sample_pairs=2_000_000) == ""
    # Spark evaluates the same BIGINT arithmetic (no overflow, no wrapping)
    assert "CAST(rid_r AS BIGINT)" in to_spark_sql(f"select * from compared {where}")
