"""Provenance of a resolution: how each record joined its customer, and the audit rows.

The customer map names, per record, the record it was matched through and the rule or
weight of that link (a walk of the cluster's spanning tree); the id registry keeps every
record ever seen; refused merges and match evidence say what was kept apart and why.
Timestamps (first_assigned_at, updated_at, refused_at) carry over from the previous run
when nothing about the row changed.

Python holds only what it decided per record (customer id, rule, weight, the rid it was
matched through); the tables themselves are SELECTs joining that to the records and to the
previous run's tables inside DuckDB, so no record key makes a round trip through pandas.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order

from identity.persistence import SCHEMA, TABLE_COLUMNS, TablePatch, table_exists
from warehouse_engine.frames import to_pandas

CUSTOMER_CREATED_TABLE = "_identity_customer_created"
EVIDENCE_TABLE = "_identity_evidence"
UNTOUCHED_TABLE = "_identity_untouched"


RESOLVED_TABLE = "_identity_resolved"


def create_resolved_table(
    con: duckdb.DuckDBPyConnection,
    customer_ids: np.ndarray,
    first_assigned_at: np.ndarray,
    cluster_of: np.ndarray,
    tree_edges: pd.DataFrame,
) -> None:
    """`_identity_resolved(rid, customer_id, match_rule, match_weight, matched_rid,
    first_assigned_at)`: what Python decided per record, as plain arrays (no record keys or
    other strings but the id and rule), for the SQL below to join to the records."""
    match_rule, match_weight, matched_rid = walk_spanning_trees(
        first_assigned_at, cluster_of, tree_edges
    )
    frame = pd.DataFrame(
        {
            "rid": np.arange(len(customer_ids), dtype=np.int64),
            "customer_id": customer_ids,
            "match_rule": match_rule,
            "match_weight": match_weight,
            "matched_rid": matched_rid,
            "first_assigned_at": first_assigned_at,
        }
    )
    con.register("_identity_resolved_frame", frame)
    try:
        con.execute(f"""
            create or replace temp table {RESOLVED_TABLE} as
            select rid, customer_id::varchar as customer_id, match_rule::varchar as match_rule,
                   match_weight::double as match_weight, nullif(matched_rid, -1) as matched_rid,
                   first_assigned_at::timestamp as first_assigned_at
            from _identity_resolved_frame
        """)
    finally:
        con.unregister("_identity_resolved_frame")


def _only(column: str, only: str | None) -> str:
    return f"where {column} in (select record_key from {only})" if only else ""


def customer_map_sql(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    run_ts: pd.Timestamp,
    only: str | None = None,
) -> str:
    """SELECT of the customer map: how each record joined its customer (the walk of the
    spanning tree from the cluster's anchor, the record assigned longest ago, then the
    smallest key). updated_at is last run's when nothing else in the row changed. `only`:
    a table of record keys; just their rows."""
    run = _timestamp_literal(run_ts)
    compared = ("customer_id", "match_rule", "match_weight", "matched_record")
    if table_exists(con, "customer_map"):
        unchanged = " and ".join(f"c.{col} is not distinct from p.{col}" for col in compared)
        updated = f"case when p.source_system is not null and {unchanged} then p.updated_at else {run} end"
        previous = f"{SCHEMA}.customer_map"
        if only:
            previous = (
                f"(select p.* from {previous} p semi join {only} o "
                "on o.source_system = p.source_system and o.source_record_id = p.source_record_id)"
            )
        previous_join = (
            f"left join {previous} p "
            "on p.source_system = c.source_system and p.source_record_id = c.source_record_id"
        )
    else:
        updated, previous_join = run, ""
    return f"""
        with c as (
            select r.rid, r.source_system, r.source_record_id, x.customer_id, x.match_rule,
                   x.match_weight, m.record_key as matched_record,
                   coalesce(x.first_assigned_at, {run}) as first_assigned_at
            from {records_table} r
            join {RESOLVED_TABLE} x using (rid)
            left join {records_table} m on m.rid = x.matched_rid
            {_only("r.record_key", only)}
        )
        select c.source_system, c.source_record_id, c.customer_id, c.match_rule, c.match_weight,
               c.matched_record, c.first_assigned_at, {updated} as updated_at
        from c {previous_join}
        order by c.rid
    """


def walk_spanning_trees(
    first_assigned: np.ndarray, cluster_of: np.ndarray, tree_edges: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(match_rule, match_weight, matched rid or -1) per record: one breadth-first walk
    (scipy) from a virtual root tied to every cluster's anchor (earliest first_assigned,
    then smallest rid, i.e. smallest record key); each record names the record it was
    reached from. The anchor carries the rule of its first link."""
    n = len(cluster_of)
    match_rule = np.full(n, "singleton", dtype=object)
    match_weight = np.full(n, np.nan)
    matched = np.full(n, -1, dtype=np.int64)
    if tree_edges.empty:
        return match_rule, match_weight, matched
    order = np.lexsort((np.arange(n), first_assigned))
    first_in_cluster = np.unique(cluster_of[order], return_index=True)[1]
    anchors = order[first_in_cluster]
    left = tree_edges["rid_l"].to_numpy(dtype=np.int64)
    right = tree_edges["rid_r"].to_numpy(dtype=np.int64)
    root = n
    graph = coo_matrix(
        (
            np.ones(len(left) + len(anchors), dtype=np.int8),
            (np.concatenate([left, np.full(len(anchors), root)]), np.concatenate([right, anchors])),
        ),
        shape=(n + 1, n + 1),
    ).tocsr()
    visit_order, predecessor = breadth_first_order(
        graph, root, directed=False, return_predecessors=True
    )
    node = np.flatnonzero((predecessor[:n] >= 0) & (predecessor[:n] != root))
    parent = predecessor[node]
    edges = pd.DataFrame(
        {
            "a": np.concatenate([left, right]),
            "b": np.concatenate([right, left]),
            "rule": np.concatenate([tree_edges["rule"].to_numpy()] * 2),
            "weight": np.concatenate([tree_edges["weight"].to_numpy(dtype=float)] * 2),
        }
    ).drop_duplicates(["a", "b"])
    found = pd.DataFrame({"a": node, "b": parent}).merge(edges, on=["a", "b"], how="left")
    match_rule[node] = found["rule"].to_numpy()
    match_weight[node] = found["weight"].to_numpy()
    matched[node] = parent
    position = np.empty(n + 1, dtype=np.int64)
    position[visit_order] = np.arange(len(visit_order))
    first_child = (
        pd.DataFrame({"parent": parent, "position": position[node], "child": node})
        .sort_values("position")
        .drop_duplicates("parent")
    )
    is_anchor = np.zeros(n, dtype=bool)
    is_anchor[anchors] = True
    first_child = first_child[is_anchor[first_child["parent"].to_numpy()]]
    anchor_rows, child_rows = first_child["parent"].to_numpy(), first_child["child"].to_numpy()
    match_rule[anchor_rows] = match_rule[child_rows]
    match_weight[anchor_rows] = match_weight[child_rows]
    return match_rule, match_weight, matched


def registry_sql(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    run_ts: pd.Timestamp,
    only: str | None = None,
) -> str:
    """SELECT of the id registry: record -> customer for every record ever seen (records
    gone from staging keep their row). updated_at moves only when the customer changed;
    customer_created_at comes from `_identity_customer_created`. `only`: a table of record
    keys; just their rows."""
    run = _timestamp_literal(run_ts)
    current = f"""
        select r.record_key, r.source_system, r.source_record_id, x.customer_id,
               {{first}} as first_assigned_at, {{updated}} as updated_at,
               coalesce(cc.created_at, {run}) as customer_created_at
        from {records_table} r
        join {RESOLVED_TABLE} x using (rid)
        left join {CUSTOMER_CREATED_TABLE} cc on cc.customer_id = x.customer_id
        {{previous_join}}
        {_only("r.record_key", only)}
    """
    if not table_exists(con, "id_registry"):
        return current.format(first=run, updated=run, previous_join="") + " order by record_key"
    previous = f"{SCHEMA}.id_registry"
    if only:
        previous = f"(select p.* from {previous} p semi join {only} o using (record_key))"
    return f"""
        {
        current.format(
            first=f"coalesce(p.first_assigned_at, {run})",
            updated=f"case when p.customer_id = x.customer_id then coalesce(p.updated_at, {run}) else {run} end",
            previous_join=f"left join {previous} p on p.record_key = r.record_key",
        )
    }
        union all
        select p.record_key, p.source_system, p.source_record_id, p.customer_id,
               p.first_assigned_at, p.updated_at, p.customer_created_at
        from {SCHEMA}.id_registry p
        anti join {records_table} r on r.record_key = p.record_key
        {_only("p.record_key", only)}
        order by record_key
    """


def create_customer_created_table(
    con: duckdb.DuckDBPyConnection, customer_created_at: dict[str, pd.Timestamp]
) -> None:
    """`_identity_customer_created(customer_id, created_at)`: when each id was first minted."""
    frame = pd.DataFrame(
        {
            "customer_id": list(customer_created_at),
            "created_at": pd.to_datetime(list(customer_created_at.values())),
        }
    )
    con.register("_identity_created_frame", frame)
    try:
        con.execute(
            f"create or replace temp table {CUSTOMER_CREATED_TABLE} as "
            "select customer_id::varchar as customer_id, created_at::timestamp as created_at "
            "from _identity_created_frame"
        )
    finally:
        con.unregister("_identity_created_frame")


def match_evidence_sql(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    evidence: pd.DataFrame,
    prior_weight: float,
    within: np.ndarray | None,
) -> str | TablePatch:
    """SELECT of the match evidence (per-comparison log2 Bayes factors of every accepted
    probabilistic pair), from `_identity_evidence`; an incremental run (`within`: the records
    it re-clustered) keeps last run's rows between records it left alone, as a patch: only
    the rows touching a re-clustered or vanished record are deleted and written again."""
    frame = pd.DataFrame(
        {
            "rid_l": evidence["rid_l"].to_numpy(dtype=np.int64),
            "rid_r": evidence["rid_r"].to_numpy(dtype=np.int64),
            "comparison": pd.Categorical(evidence["comparison"].to_numpy()),
            "level": evidence["level"].to_numpy(),
            "weight": evidence["weight"].to_numpy(),
        }
    )
    con.register("_identity_evidence_frame", frame)
    try:
        con.execute(
            f"create or replace temp table {EVIDENCE_TABLE} as "
            "select rid_l, rid_r, comparison::varchar as comparison, level, weight "
            "from _identity_evidence_frame"
        )
    finally:
        con.unregister("_identity_evidence_frame")
    current = f"""
        select a.record_key as record_a, b.record_key as record_b, e.comparison, e.level,
               e.weight as log2_bayes_factor,
               cast('{float(prior_weight)!r}' as double) as prior_weight
        from {EVIDENCE_TABLE} e
        join {records_table} a on a.rid = e.rid_l
        join {records_table} b on b.rid = e.rid_r
    """
    if within is None or not table_exists(con, "match_evidence"):
        return current
    con.register(
        "_identity_untouched_frame", pd.DataFrame({"rid": np.flatnonzero(~within).astype(np.int64)})
    )
    try:
        con.execute(
            f"create or replace temp table {UNTOUCHED_TABLE} as "
            f"select r.record_key from {records_table} r "
            "semi join _identity_untouched_frame u on u.rid = r.rid"
        )
    finally:
        con.unregister("_identity_untouched_frame")
    return TablePatch(
        full=f"""
            {current}
            union all
            select p.* from {SCHEMA}.match_evidence p
            semi join {UNTOUCHED_TABLE} a on a.record_key = p.record_a
            semi join {UNTOUCHED_TABLE} b on b.record_key = p.record_b
        """,
        delete_where=f"p.record_a not in (select record_key from {UNTOUCHED_TABLE}) "
        f"or p.record_b not in (select record_key from {UNTOUCHED_TABLE})",
        rows=current,
    )


def refused_merge_rows(
    records: pd.DataFrame,
    customer_ids: np.ndarray,
    refused: pd.DataFrame,
    previous: pd.DataFrame,
    run_ts: pd.Timestamp,
) -> pd.DataFrame:
    """One row per (customer pair, guard) still apart, with its strongest refused link."""
    columns = list(TABLE_COLUMNS["refused_merges"])
    if refused.empty:
        return pd.DataFrame(columns=columns)
    keys = records["record_key"].to_numpy()
    a, b = refused["rid_l"].to_numpy(), refused["rid_r"].to_numpy()
    frame = pd.DataFrame(
        {
            "customer_a": customer_ids[a],
            "customer_b": customer_ids[b],
            "record_a": keys[a],
            "record_b": keys[b],
            "guard": refused["guard"].to_numpy(),
            "detail": refused["detail"].to_numpy(),
            "match_rule": refused["rule"].to_numpy(),
            "match_weight": refused["weight"].to_numpy(dtype=float),
            "order": np.arange(len(refused)),
        }
    )
    frame = frame[frame["customer_a"] != frame["customer_b"]]
    swap = frame["customer_a"] > frame["customer_b"]
    frame.loc[swap, ["customer_a", "customer_b", "record_a", "record_b"]] = frame.loc[
        swap, ["customer_b", "customer_a", "record_b", "record_a"]
    ].to_numpy()
    frame = (
        frame.sort_values("order")
        .drop_duplicates(["customer_a", "customer_b", "guard"])
        .drop(columns="order")
    )
    if len(previous):
        seen = dict(
            zip(
                zip(previous["record_a"], previous["record_b"], previous["guard"], strict=True),
                previous["refused_at"],
                strict=True,
            )
        )
        first = pd.Series(
            list(zip(frame["record_a"], frame["record_b"], frame["guard"], strict=True))
        ).map(seen)
        frame["refused_at"] = first.where(first.notna(), run_ts).to_numpy()
    else:
        frame["refused_at"] = run_ts
    return frame[columns].reset_index(drop=True)


def previous_links(con: duckdb.DuckDBPyConnection, records_table: str) -> pd.DataFrame:
    """Last run's spanning-tree links (record -> the record it was matched through) between
    records still present, as edges (rid_l < rid_r) with their original rule and weight."""
    if not table_exists(con, "customer_map"):
        return pd.DataFrame(
            {
                "rid_l": pd.Series(dtype=np.int64),
                "rid_r": pd.Series(dtype=np.int64),
                "rule": pd.Series(dtype=object),
                "weight": pd.Series(dtype=float),
            }
        )
    links = to_pandas(
        con.sql(f"""
        select least(a.rid, b.rid)::bigint as rid_l, greatest(a.rid, b.rid)::bigint as rid_r,
               p.match_rule as rule, p.match_weight as weight
        from {SCHEMA}.customer_map p
        join {records_table} a on a.record_key = p.source_system || ':' || p.source_record_id
        join {records_table} b on b.record_key = p.matched_record
        order by rid_l, rid_r
    """)
    )
    links["weight"] = links["weight"].astype(float)
    return links


def record_age(first_assigned_at: np.ndarray, run_ts: pd.Timestamp) -> np.ndarray:
    """Rank of each record by age: first assigned to a customer (NaT: now), then record key
    (= rid order)."""
    first = pd.to_datetime(first_assigned_at).fillna(run_ts).to_numpy()
    order = np.lexsort((np.arange(len(first)), first))
    age = np.empty(len(first), dtype=np.int64)
    age[order] = np.arange(len(first))
    return age


def _timestamp_literal(ts: pd.Timestamp) -> str:
    return f"timestamp '{ts.isoformat(sep=' ')}'"


def rows_between(frame: pd.DataFrame, keys: pd.Series, among: np.ndarray) -> pd.DataFrame:
    """Rows of a previous table whose record_a and record_b are both among the records
    `keys[among]` (`among`: a boolean mask over `keys`). The frame's few keys are looked up
    in `keys`, rather than every chosen key hashed into a set (a night's untouched records
    are nearly all of them)."""
    if frame.empty or not {"record_a", "record_b"} <= set(frame.columns):
        return frame.iloc[0:0]
    index = pd.Index(keys)
    chosen = np.append(np.asarray(among, dtype=bool), False)  # position -1: not a record

    def within(column: str) -> np.ndarray:
        return chosen[index.get_indexer(frame[column])]

    return frame[within("record_a") & within("record_b")]
