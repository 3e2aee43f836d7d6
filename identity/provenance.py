"""Provenance of a resolution: how each record joined its customer, and the audit rows.

The customer map names, per record, the record it was matched through and the rule or
weight of that link (a walk of the cluster's spanning tree); the id registry keeps every
record ever seen; refused merges and match evidence say what was kept apart and why.
Timestamps (first_assigned_at, updated_at, refused_at) carry over from the previous run
when nothing about the row changed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order

from identity.persistence import TABLE_COLUMNS, PreviousState


def customer_map_rows(
    records: pd.DataFrame,
    customer_ids: np.ndarray,
    clustering,
    previous: PreviousState,
    run_ts: pd.Timestamp,
) -> pd.DataFrame:
    """How each record joined its customer: a walk of the spanning tree from the cluster's
    anchor (the record assigned longest ago, then the smallest key)."""
    keys = records["record_key"].to_numpy()
    first_assigned = records["record_key"].map(
        dict(
            zip(
                previous.registry["record_key"], previous.registry["first_assigned_at"], strict=True
            )
        )
    )
    first_assigned = first_assigned.astype("datetime64[us]").fillna(run_ts)
    match_rule, match_weight, matched = walk_spanning_trees(
        keys, first_assigned.to_numpy(), clustering.cluster_of, clustering.tree_edges
    )

    frame = pd.DataFrame(
        {
            "source_system": records["source_system"].to_numpy(),
            "source_record_id": records["source_record_id"].to_numpy(),
            "customer_id": customer_ids,
            "match_rule": match_rule,
            "match_weight": match_weight,
            "matched_record": matched,
            "first_assigned_at": first_assigned.to_numpy(),
        }
    )
    return keep_previous_updated_at(
        frame, previous.customer_map, ["source_system", "source_record_id"], run_ts
    )


def walk_spanning_trees(
    keys: np.ndarray, first_assigned: np.ndarray, cluster_of: np.ndarray, tree_edges: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(match_rule, match_weight, matched_record) per record: one breadth-first walk (scipy)
    from a virtual root tied to every cluster's anchor; each record names the record it
    was reached from. The anchor carries the rule of its first link."""
    n = len(keys)
    match_rule = np.full(n, "singleton", dtype=object)
    match_weight = np.full(n, np.nan)
    matched = np.full(n, None, dtype=object)
    if tree_edges.empty:
        return match_rule, match_weight, matched
    order = np.lexsort((keys, first_assigned))
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
    matched[node] = keys[parent]
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


def keep_previous_updated_at(
    frame: pd.DataFrame, previous: pd.DataFrame, key: str | list[str], run_ts: pd.Timestamp
) -> pd.DataFrame:
    """updated_at = previous value when nothing else in the row changed, else run time."""
    key = [key] if isinstance(key, str) else key
    compared = [
        c for c in frame.columns if c not in ("updated_at", "created_at", "first_assigned_at")
    ]
    frame = frame.copy()
    frame["updated_at"] = run_ts
    if previous.empty or not set(compared) <= set(previous.columns):
        return frame
    fingerprint = pd.util.hash_pandas_object(frame[compared].astype(str), index=False)
    previous_fingerprint = pd.util.hash_pandas_object(previous[compared].astype(str), index=False)
    # keys are unique on both sides: a left merge keeps `frame`'s rows in order
    found = (
        frame[key]
        .assign(_fingerprint=fingerprint.to_numpy())
        .merge(
            previous[key]
            .assign(_fingerprint=previous_fingerprint.to_numpy(), _updated=previous["updated_at"])
            .drop_duplicates(key + ["_fingerprint"]),
            on=key + ["_fingerprint"],
            how="left",
        )["_updated"]
    )
    frame["updated_at"] = found.where(found.notna(), run_ts).to_numpy()
    return frame


def registry_rows(
    records: pd.DataFrame,
    customer_ids: np.ndarray,
    previous: PreviousState,
    customer_created_at: dict[str, pd.Timestamp],
    run_ts: pd.Timestamp,
) -> pd.DataFrame:
    """Record -> customer for every record ever seen (records gone from staging keep their row)."""
    prior = previous.registry.set_index("record_key") if len(previous.registry) else None
    current = pd.DataFrame(
        {
            "record_key": records["record_key"].to_numpy(),
            "source_system": records["source_system"].to_numpy(),
            "source_record_id": records["source_record_id"].to_numpy(),
            "customer_id": customer_ids,
        }
    )
    if prior is not None:
        prior_first = current["record_key"].map(prior["first_assigned_at"])
        prior_customer = current["record_key"].map(prior["customer_id"])
        prior_updated = current["record_key"].map(prior["updated_at"])
        unchanged = prior_customer == current["customer_id"]
        current["first_assigned_at"] = prior_first.fillna(run_ts).to_numpy()
        current["updated_at"] = prior_updated.where(unchanged, run_ts).fillna(run_ts).to_numpy()
    else:
        current["first_assigned_at"] = run_ts
        current["updated_at"] = run_ts
    current["customer_created_at"] = current["customer_id"].map(customer_created_at).fillna(run_ts)
    if prior is not None:
        gone = previous.registry[~previous.registry["record_key"].isin(current["record_key"])]
        current = pd.concat([current, gone[current.columns]], ignore_index=True)
    return current.sort_values("record_key", kind="stable").reset_index(drop=True)


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


def previous_links(records: pd.DataFrame, previous_map: pd.DataFrame) -> pd.DataFrame:
    """Last run's spanning-tree links (record -> the record it was matched through) between
    records still present, as edges with their original rule and weight."""
    columns = ["rid_l", "rid_r", "rule", "weight"]
    if previous_map.empty:
        return pd.DataFrame(columns=columns)
    linked = previous_map[previous_map["matched_record"].notna()]
    rid_of = pd.Series(np.arange(len(records)), index=records["record_key"].to_numpy())
    left = (linked["source_system"] + ":" + linked["source_record_id"]).map(rid_of)
    right = linked["matched_record"].map(rid_of)
    present = left.notna() & right.notna()
    a = left[present].to_numpy(dtype=np.int64)
    b = right[present].to_numpy(dtype=np.int64)
    links = pd.DataFrame(
        {
            "rid_l": np.minimum(a, b),
            "rid_r": np.maximum(a, b),
            "rule": linked.loc[present, "match_rule"].to_numpy(),
            "weight": linked.loc[present, "match_weight"].to_numpy(dtype=float),
        }
    )
    return links.sort_values(["rid_l", "rid_r"], kind="stable").reset_index(drop=True)


def record_age(keys: pd.Series, registry: pd.DataFrame, run_ts: pd.Timestamp) -> np.ndarray:
    """Rank of each record by age: first assigned to a customer, then record key."""
    first = keys.map(dict(zip(registry["record_key"], registry["first_assigned_at"], strict=True)))
    first = pd.to_datetime(first).fillna(run_ts).to_numpy()
    order = np.lexsort((keys.to_numpy(), first))
    age = np.empty(len(keys), dtype=np.int64)
    age[order] = np.arange(len(keys))
    return age


def rows_between(frame: pd.DataFrame, keys: set[str]) -> pd.DataFrame:
    """Rows of a previous table whose record_a and record_b are both among `keys`."""
    if frame.empty or not {"record_a", "record_b"} <= set(frame.columns):
        return frame.iloc[0:0]
    return frame[frame["record_a"].isin(keys) & frame["record_b"].isin(keys)]
