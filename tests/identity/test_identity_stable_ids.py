"""Stable customer ids across runs: re-runs change nothing, newcomers join, the older id survives."""

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pytest

from identity.pipeline import resolve_identities
from identity.stable_ids import assign_customer_ids, mint_customer_id

RUN_1, RUN_2, RUN_3 = datetime(2026, 1, 1, 2), datetime(2026, 1, 2, 2), datetime(2026, 1, 3, 2)


def snapshot(con):
    return {
        table: con.sql(f"select * from identity.{table} order by all").fetchall()
        for table in (
            "customer_map",
            "golden_customers",
            "id_registry",
            "merge_log",
            "refused_merges",
        )
    }


def test_same_input_twice_changes_nothing(staging, warehouse):
    staging.billing("cus_1", user_id="u_1", email="ada@home.net", name="Ada Lovelace")
    staging.contact("ct_1", "ada@home.net", first_name="Ada", last_name="Lovelace")
    staging.contact("ct_2", "grace@navy.mil", first_name="Grace", last_name="Hopper")
    resolve_identities(warehouse, run_at=RUN_1)
    before = snapshot(warehouse)
    summary = resolve_identities(warehouse, run_at=RUN_2)
    assert snapshot(warehouse) == before
    assert (summary.new_customers, summary.merged_customers, summary.records_changing_customer) == (
        0,
        0,
        0,
    )


def test_new_record_joins_the_existing_customer_id(staging, warehouse, customer_of):
    staging.billing("cus_1", user_id="u_1", email="ada@home.net", name="Ada Lovelace")
    resolve_identities(warehouse, run_at=RUN_1)
    customer = customer_of("billing:cus_1")
    staging.web("anon_1", "u_1")
    staging.contact("ct_1", "ADA@home.net ")
    summary = resolve_identities(warehouse, run_at=RUN_2)
    assert customer_of("web:anon_1") == customer_of("email:ct_1") == customer
    assert summary.new_customers == 0
    first_assigned = dict(
        warehouse.sql(
            "select source_record_id, first_assigned_at from identity.customer_map"
        ).fetchall()
    )
    assert first_assigned == {"cus_1": RUN_1, "anon_1": RUN_2, "ct_1": RUN_2}


def test_merge_keeps_the_older_id_and_logs_the_pair(staging, warehouse, customer_of):
    staging.billing("cus_1", user_id="u_1", email="ada@work.com", name="Ada Lovelace")
    resolve_identities(warehouse, run_at=RUN_1)
    older = customer_of("billing:cus_1")
    staging.contact("ct_2", "ada@home.net", first_name="Ada", last_name="Lovelace")
    resolve_identities(warehouse, run_at=RUN_2)
    newer = customer_of("email:ct_2")
    assert newer != older
    staging.web("anon_1", "u_1", email="ada@home.net")  # ties the two together
    summary = resolve_identities(warehouse, run_at=RUN_3)
    assert customer_of("email:ct_2") == customer_of("billing:cus_1") == older
    assert summary.merged_customers == 1
    log = warehouse.sql("select * from identity.merge_log").df()
    assert len(log) == 1
    row = log.iloc[0]
    assert (row.surviving_customer_id, row.retired_customer_id, row.merged_at) == (
        older,
        newer,
        RUN_3,
    )
    assert {row.record_a, row.record_b} & {"web:anon_1"}
    assert warehouse.sql("select count(*) from identity.golden_customers").fetchall()[0][0] == 1
    # the retired id is never handed out again
    assert newer in set(
        warehouse.sql("select retired_customer_id from identity.merge_log").df().retired_customer_id
    )


def test_ids_are_reproducible_from_scratch(staging, warehouse, customer_of):
    staging.contact("ct_1", "ada@home.net")
    resolve_identities(warehouse, run_at=RUN_1)
    assert customer_of("email:ct_1") == mint_customer_id("email:ct_1", set())


def test_failed_write_leaves_previous_tables_untouched(staging, warehouse):
    staging.contact("ct_1", "ada@home.net")
    resolve_identities(warehouse, run_at=RUN_1)
    before = snapshot(warehouse)
    staging.contact("ct_2", "grace@navy.mil")
    # sabotage the last table write: a view cannot be replaced by `create or replace table`
    warehouse.execute("drop table identity.refused_merges")
    warehouse.execute("create view identity.refused_merges as select 1 as x")
    with pytest.raises(duckdb.Error):
        resolve_identities(warehouse, run_at=RUN_2)
    assert warehouse.sql("select count(*) from identity.customer_map").fetchall()[0][0] == 1
    after = {t: v for t, v in before.items() if t not in ("refused_merges",)}
    assert {
        t: warehouse.sql(f"select * from identity.{t} order by all").fetchall() for t in after
    } == after


def test_split_keeps_the_id_on_the_larger_part_and_logs_the_other(staging, warehouse, customer_of):
    staging.contact("ct_1", "ada@home.net")
    staging.contact("ct_2", "ADA@home.net")
    staging.billing("cus_1", email="ada@home.net")
    resolve_identities(warehouse, run_at=RUN_1)
    original = customer_of("email:ct_1")
    assert customer_of("email:ct_2") == customer_of("billing:cus_1") == original
    warehouse.execute(
        "update staging.stg_email__contacts set email = 'grace@navy.mil' where contact_id = 'ct_2'"
    )
    summary = resolve_identities(warehouse, run_at=RUN_2)
    assert customer_of("email:ct_1") == customer_of("billing:cus_1") == original
    moved = customer_of("email:ct_2")
    assert moved != original
    assert summary.split_customers == 1
    log = warehouse.sql("select * from identity.split_log").fetchall()
    assert log == [(RUN_2, original, moved, 1, "email:ct_2")]
    assert warehouse.sql("select count(*) from identity.merge_log").fetchall()[0][0] == 0
    resolve_identities(warehouse, run_at=RUN_3)  # a re-run logs nothing new
    assert len(warehouse.sql("select * from identity.split_log").fetchall()) == 1


def test_only_rows_that_changed_take_the_new_run_time(staging, warehouse, customer_of):
    """updated_at (customer map, registry, golden record) and first_assigned_at carry over
    from the last run unless the row changed."""
    staging.billing("cus_1", user_id="u_1", email="ada@work.com", name="Ada Lovelace")
    staging.contact("ct_9", "grace@navy.mil", first_name="Grace", last_name="Hopper")
    resolve_identities(warehouse, run_at=RUN_1)
    staging.contact("ct_2", "ada@home.net", first_name="Ada", last_name="Lovelace")
    resolve_identities(warehouse, run_at=RUN_2)
    staging.web("anon_1", "u_1", email="ada@home.net")  # merges ct_2's customer into cus_1's
    resolve_identities(warehouse, run_at=RUN_3)

    def by_record(sql: str) -> dict:
        return dict(warehouse.sql(sql).fetchall())

    mapped = by_record("select source_record_id, updated_at from identity.customer_map")
    assert (mapped["ct_9"], mapped["ct_2"], mapped["anon_1"]) == (RUN_1, RUN_3, RUN_3)
    registry = by_record("select record_key, updated_at from identity.id_registry")
    assert (registry["email:ct_9"], registry["billing:cus_1"]) == (RUN_1, RUN_1)
    assert registry["email:ct_2"] == RUN_3  # moved to the surviving customer
    first = by_record("select source_record_id, first_assigned_at from identity.customer_map")
    assert (first["cus_1"], first["ct_2"], first["anon_1"]) == (RUN_1, RUN_2, RUN_3)
    golden = by_record("select customer_id, updated_at from identity.golden_customers")
    assert golden[customer_of("email:ct_9")] == RUN_1
    assert golden[customer_of("billing:cus_1")] == RUN_3


def test_weighing_only_the_reclustered_records_gives_the_same_ids():
    """A nightly run passes `within`: clusters outside it are previous customers on their
    previous trees and keep their ids; ids, merges, splits and new ids are as when every
    record's claim is weighed."""
    keys = pd.Series([f"k{i:02d}" for i in range(10)])
    # rid:     0     1     2     3     4     5     6     7     8     9
    previous = [*"ABCA", "D", "B", "D", "D", None, "E"]
    clusters = np.array([0, 1, 1, 0, 4, 1, 6, 6, 8, 9])  # labelled by their smallest rid
    within = np.array([False, True, True, False, True, True, True, True, True, False])
    edges = pd.DataFrame(
        {
            "rid_l": [0, 1, 1, 6],
            "rid_r": [3, 2, 5, 7],
            "rule": ["email", "email", "phone", "email"],
            "weight": [np.nan] * 4,
        }
    )
    created = {c: datetime(2025, 1, i + 1) for i, c in enumerate("EDCBA")}  # C before B
    args = (keys, clusters, pd.Series(previous, dtype=object), created, set("ABCDE"), edges)
    full = assign_customer_ids(*args, RUN_1)
    nightly = assign_customer_ids(*args, RUN_1, within=within)
    assert list(nightly.customer_of_record) == list(full.customer_of_record)
    # B merges into the older C; D keeps its larger part (6, 7), rid 4 and the new rid 8
    # get new ids
    assert list(full.customer_of_record[[0, 1, 2, 3, 5, 6, 7, 9]]) == [*"ACCACDDE"]
    assert set(full.customer_of_record[[4, 8]]) == full.new_customer_ids
    pd.testing.assert_frame_equal(nightly.merges, full.merges)
    pd.testing.assert_frame_equal(nightly.splits, full.splits)
    assert list(full.merges["retired_customer_id"]) == ["B"]
    assert list(full.splits["original_customer_id"]) == ["D"]
    assert nightly.new_customer_ids == full.new_customer_ids and len(full.new_customer_ids) == 2
    assert nightly.customer_created_at == full.customer_created_at
