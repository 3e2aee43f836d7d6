"""resolve_identities with the engine path (what `CDP_ENGINE=spark cdp run` runs) keeps the
promises of the DuckDB path: steward overrides, stable ids, the merge / split / refused
logs, the same identity tables (issue 15).

The engine here is DuckDB running the engine SQL (warehouse_engine.sql_engines.DuckDBEngine,
the SQL Spark runs transpiled); the same zone and the same steward's overrides go through
the DuckDB path (`link_records`) in a second warehouse, run for run, and every identity
table must come out equal. On Spark the path runs in tests/reliability/test_spark_equivalence.py.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from identity.config import IdentityConfig
from identity.engine_pipeline import spanning_trees
from identity.overrides import new_override, record_override
from identity.pipeline import resolve_identities
from tests.identity.conftest import StagingBuilder
from warehouse_engine.sql_engines import DuckDBEngine

RUN_1, RUN_2, RUN_3 = (datetime(2026, 1, d, 2) for d in (1, 2, 3))
COMPARED = {
    "customer_map": "source_system, source_record_id",
    "golden_customers": "customer_id",
    "id_registry": "record_key",
    "merge_log": "retired_customer_id",
    "split_log": "original_customer_id, customer_id",
    "refused_merges": "all",
    "identity_records": "record_key",
}


def _zone(staging: StagingBuilder) -> None:
    """An over-merge through one shared email (ct_1 / cus_1), one person the rules cannot
    see (ct_5 / ct_6), a family mailbox (ct_7 / ct_8), bystanders, and three user ids on one
    mailbox (a cardinality guard refuses the third)."""
    staging.contact("ct_1", "ada@home.net", first_name="Ada", last_name="Lovelace")
    staging.billing("cus_1", user_id="u_1", email="ada@home.net", name="Ada Byron")
    staging.web("anon_1", "u_1")
    staging.contact("ct_5", "charles@engine.org", first_name="Charles", last_name="Babbage")
    staging.contact("ct_6", "cb1791@post.co.uk", first_name="Chas", last_name="Bbg")
    staging.contact("ct_7", "family@smith.net", first_name="Sam", last_name="Smith")
    staging.contact("ct_8", "family@smith.net", first_name="Sam", last_name="Smith")
    staging.contact("ct_9", "grace@navy.mil", first_name="Grace", last_name="Hopper")
    for n in (1, 2, 3):
        staging.billing(f"cus_u{n}", user_id=f"uu_{n}", email="shared@home.net", name="Alan Turing")


def _night_two(staging: StagingBuilder) -> None:
    """Records that would re-tie what the steward unlinked or blocked, and a merge of two
    of yesterday's customers (Grace's second address, then a record holding both)."""
    staging.contact("ct_10", "ada@home.net", first_name="Ada", last_name="Lovelace")
    staging.web("anon_2", "u_1", email="family@smith.net")
    staging.billing("cus_9", user_id="u_9", email="grace@navy.mil", name="Grace Hopper")
    staging.web("anon_9", "u_9", email="ghopper@yale.edu")


def _steward(con, path) -> None:
    for row in (
        new_override("unlink", "ann", "two people on one email", "billing:cus_1", "email:ct_1"),
        new_override("link", "ann", "same person, confirmed by phone", "email:ct_5", "email:ct_6"),
        new_override(
            "block", "ann", "a family mailbox", value_kind="email", value="Family@Smith.net"
        ),
    ):
        record_override(con, path, row)


def _table(con, name: str) -> pd.DataFrame:
    order = COMPARED[name]
    frame = con.sql(f"select * from identity.{name}").df()
    by = list(frame.columns) if order == "all" else [c.strip() for c in order.split(",")]
    return frame.sort_values(by, kind="stable").reset_index(drop=True).astype(str)


def _customer_of(con, key: str) -> str:
    system, record_id = key.split(":", 1)
    return con.execute(
        "select customer_id from identity.customer_map "
        "where source_system = ? and source_record_id = ?",
        [system, record_id],
    ).fetchall()[0][0]


def steward_nights(tmp_path, engine_for=lambda con, night: DuckDBEngine(con)) -> dict:
    """The zone through three nights in two warehouses, one on the DuckDB path and one on
    the engine path (`engine_for(con, night)`: the engine of that night), with a
    steward's link, unlink and value block recorded after the first night; then the
    overrides hold on the engine path, and every identity table equals the DuckDB path's.
    Full resolutions on both (the engine path's only kind)."""
    config = IdentityConfig()
    paths = {"duckdb": tmp_path / "duckdb", "engine": tmp_path / "engine"}
    cons, builders = {}, {}
    for name, folder in paths.items():
        folder.mkdir(parents=True)
        cons[name] = duckdb.connect(str(folder / "warehouse.duckdb"))
        builders[name] = StagingBuilder(cons[name])
        _zone(builders[name])

    def resolve(name: str, night: int):
        con = cons[name]
        return resolve_identities(
            con,
            config,
            run_at=(RUN_1, RUN_2, RUN_3)[night - 1],
            overrides_file=paths[name] / "identity_overrides.csv",
            full_identity=True,
            linkage_engine=engine_for(con, night) if name == "engine" else None,
            engine_scratch_dir=paths[name] / "scratch",
        )

    try:
        first = {name: resolve(name, 1) for name in cons}
        assert first["engine"].mode == "full"
        assert first["engine"].refused_by_guard.get("max_user_ids", 0) >= 1
        for name, con in cons.items():
            # the rules alone: the over-merge and the family mailbox merged, Charles apart
            assert _customer_of(con, "billing:cus_1") == _customer_of(con, "email:ct_1")
            assert _customer_of(con, "email:ct_5") != _customer_of(con, "email:ct_6")
            _steward(con, paths[name] / "identity_overrides.csv")
            _night_two(builders[name])
        second = {name: resolve(name, 2) for name in cons}
        third = {name: resolve(name, 3) for name in cons}

        engine = cons["engine"]
        ada = _customer_of(engine, "billing:cus_1")
        assert ada != _customer_of(engine, "email:ct_1")  # unlinked
        assert ada == _customer_of(engine, "web:anon_1")
        assert _customer_of(engine, "email:ct_5") == _customer_of(engine, "email:ct_6")  # linked
        assert _customer_of(engine, "email:ct_7") != _customer_of(engine, "email:ct_8")  # blocked
        assert second["engine"].steward["blocked_value_records"] == 3
        assert second["engine"].merged_customers >= 1 and second["engine"].split_customers >= 1
        assert third["engine"].merged_customers == third["engine"].split_customers == 0
        rules = dict(
            engine.sql("select source_record_id, match_rule from identity.customer_map").fetchall()
        )
        assert "steward_link" in (rules["ct_5"], rules["ct_6"])
        guards = set(engine.sql("select guard from identity.refused_merges").df()["guard"])
        assert {"steward_unlink", "max_user_ids"} <= guards

        # run for run, the same tables as the DuckDB path
        for summary in (first, second, third):
            assert summary["engine"].customers_out == summary["duckdb"].customers_out
        for name in COMPARED:
            left, right = _table(cons["duckdb"], name), _table(engine, name)
            assert list(left.columns) == list(right.columns), name
            pd.testing.assert_frame_equal(left, right, obj=name)
        assert len(_table(engine, "merge_log")) >= 1 and len(_table(engine, "split_log")) >= 1
        return {night: summary["engine"] for night, summary in enumerate((first, second, third), 1)}
    finally:
        for con in cons.values():
            con.close()


def test_engine_path_keeps_overrides_ids_and_logs_as_the_duckdb_path(tmp_path):
    summaries = steward_nights(tmp_path)
    assert {s.linkage_engine for s in summaries.values()} == {"duckdb"}


def test_spanning_trees_keep_the_edges_union_find_keeps():
    config = IdentityConfig()
    rule = config.deterministic_rules[0].name
    edges = pd.DataFrame(
        {
            "rid_l": [0, 1, 0, 2, 3, 0, 4],
            "rid_r": [1, 2, 2, 3, 4, 3, 5],
            "rule": [
                "probabilistic",
                "probabilistic",
                rule,
                "probabilistic",
                "steward_link",
                "probabilistic",
                "probabilistic",
            ],  # fmt: skip
            "weight": [9.0, 12.0, np.nan, 7.0, np.nan, 30.0, 8.0],
        }
    )
    tree = spanning_trees(edges, 6, config)
    # union-find order: the steward's link, the rule, then weights 30, 12, (9: cycle), 8, (7)
    assert list(zip(tree["rid_l"], tree["rid_r"], strict=True)) == [
        (3, 4), (0, 2), (0, 3), (1, 2), (4, 5)
    ]  # fmt: skip
