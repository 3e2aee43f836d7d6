"""Stable golden customer ids across runs, from the persisted record -> customer registry.

Rules, in order:
1. A cluster whose records already carry customer ids keeps one of them. Each previous id
   goes to the one cluster holding most of its records (ties: the cluster with the
   smallest record key), so a split never duplicates an id. The other parts of a split
   customer (clusters only split when a guard refuses one of last run's links) get their
   own id and a row in the split log, so no record's id ever changes silently.
2. A cluster that won several previous ids is a merge: the OLDEST id survives (earliest
   created_at, then smallest id), the others are retired and logged with the pair of
   records whose link caused the merge.
3. A cluster with no previous id gets a new one derived from its smallest record key
   (`cust_` + 16 hex digits of SHA-1), so rebuilding from scratch gives the same ids.
Re-running on the same input finds every cluster already carrying exactly one id, so
nothing changes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class IdAssignment:
    customer_of_record: pd.Series  # index: record position (rid); value: customer_id
    merges: (
        pd.DataFrame
    )  # surviving_customer_id, retired_customer_id, record_a, record_b, match_rule, match_weight
    new_customer_ids: set[str]
    customer_created_at: dict[str, pd.Timestamp]
    splits: pd.DataFrame  # original_customer_id, customer_id, n_records_moved, example_record


def mint_customer_id(record_key: str, taken: set[str]) -> str:
    """A deterministic id from a record key, salted until it does not collide with a known id."""
    salt = 0
    while True:
        text = record_key if salt == 0 else f"{record_key}#{salt}"
        candidate = "cust_" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
        if candidate not in taken:
            return candidate
        salt += 1


def assign_customer_ids(
    record_keys: pd.Series,
    cluster_of: np.ndarray,
    previous_ids: pd.Series,
    customer_created_at: dict[str, pd.Timestamp],
    known_ids: set[str],
    tree_edges: pd.DataFrame,
    run_at: pd.Timestamp,
    within: np.ndarray | None = None,
) -> IdAssignment:
    """Give every cluster its customer id; `previous_ids[rid]` is the record's id last run (or None).
    `within` (a nightly run, identity/incremental.py): the mask of the records re-clustered.
    They are whole previous customers and whole clusters, and every other cluster is one
    previous customer's records linked by its previous spanning tree: it claims that id
    alone and keeps it, so only the re-clustered records' claims are weighed (the same
    ids, merges and splits as weighing all of them)."""
    frame = pd.DataFrame(
        {
            "record_key": record_keys.to_numpy(),
            "cluster": cluster_of,
            "previous_id": previous_ids.to_numpy(),
        }
    )
    weighed = frame if within is None else frame[within]
    # Clusters are labelled by their smallest rid and records are sorted by key, so the
    # label's own key is the cluster's smallest key.
    keys = frame["record_key"].to_numpy()
    smallest_key = {int(c): keys[c] for c in np.unique(weighed["cluster"].to_numpy())}

    claims = (
        weighed.dropna(subset=["previous_id"])
        .groupby(["previous_id", "cluster"], sort=False)
        # rows are in record_key order, so a group's first key is its smallest (and "first"
        # runs in Cython where "min" of strings falls back to Python per group)
        .agg(n_records=("record_key", "size"), example_record=("record_key", "first"))
        .reset_index()
    )
    # Sorting by the cluster label is sorting by the cluster's smallest key (rid order is
    # key order), and by the previous id's rank as sorting by the id: integers sort faster.
    claims["previous_rank"] = pd.factorize(claims["previous_id"], sort=True)[0]
    claims = claims.sort_values(
        ["previous_rank", "n_records", "cluster"], ascending=[True, False, True], kind="stable"
    )
    winners = claims.drop_duplicates("previous_rank", keep="first")

    created = dict(customer_created_at)
    far_future = pd.Timestamp.max
    winners = winners.assign(
        created_at=winners["previous_id"].map(lambda cid: created.get(cid, far_future))
    ).sort_values(["cluster", "created_at", "previous_rank"], kind="stable")
    survivor_of_cluster = winners.drop_duplicates("cluster", keep="first").set_index("cluster")[
        "previous_id"
    ]

    taken = set(known_ids)
    id_of_cluster: dict[int, str] = survivor_of_cluster.to_dict()
    new_ids: set[str] = set()
    for cluster in sorted(set(smallest_key) - set(id_of_cluster)):  # = smallest-key order
        customer_id = mint_customer_id(smallest_key[cluster], taken)
        taken.add(customer_id)
        id_of_cluster[cluster] = customer_id
        new_ids.add(customer_id)
        created[customer_id] = run_at

    retired = winners[~winners["previous_id"].isin(survivor_of_cluster.to_numpy())]
    merges = _merge_log_rows(frame, retired, id_of_cluster, tree_edges)
    # every cluster has its id; labels are rids, so an array indexed by label maps them
    # (a dict map of every record costs several times more)
    id_by_label = np.empty(len(frame), dtype=object)
    id_by_label[np.fromiter(id_of_cluster.keys(), dtype=np.int64, count=len(id_of_cluster))] = list(
        id_of_cluster.values()
    )
    if within is None:
        assigned = id_by_label[frame["cluster"].to_numpy(dtype=np.int64)]
    else:
        assigned = frame["previous_id"].to_numpy(dtype=object, copy=True)
        assigned[within] = id_by_label[weighed["cluster"].to_numpy(dtype=np.int64)]
    customer_of_record = pd.Series(assigned, index=frame.index)
    return IdAssignment(
        customer_of_record,
        merges,
        new_ids,
        created,
        _split_log_rows(claims, winners, id_of_cluster),
    )


def _split_log_rows(
    claims: pd.DataFrame, winners: pd.DataFrame, id_of_cluster: dict[int, str]
) -> pd.DataFrame:
    """One row per part of a previous customer that did not keep its id."""
    columns = ["original_customer_id", "customer_id", "n_records_moved", "example_record"]
    # (previous id, cluster) is unique in claims and winners are rows of it
    lost = claims[~claims.index.isin(winners.index)]
    if lost.empty:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(
        {
            "original_customer_id": lost["previous_id"].to_numpy(),
            "customer_id": lost["cluster"].map(id_of_cluster).to_numpy(),
            "n_records_moved": lost["n_records"].to_numpy(dtype=np.int64),
            "example_record": lost["example_record"].to_numpy(),
        },
        columns=columns,
    )


def _merge_log_rows(
    frame: pd.DataFrame,
    retired: pd.DataFrame,
    id_of_cluster: dict[int, str],
    tree_edges: pd.DataFrame,
) -> pd.DataFrame:
    """For each retired id, the first accepted edge linking one of its records to the rest."""
    columns = [
        "surviving_customer_id",
        "retired_customer_id",
        "record_a",
        "record_b",
        "match_rule",
        "match_weight",
    ]
    if retired.empty:
        return pd.DataFrame(columns=columns)
    previous = frame["previous_id"].to_numpy()
    keys = frame["record_key"].to_numpy()
    cluster = frame["cluster"].to_numpy()
    left = tree_edges["rid_l"].to_numpy(dtype=np.int64)
    right = tree_edges["rid_r"].to_numpy(dtype=np.int64)
    # An edge crossing between two previous customers links each of them to the rest: one
    # (previous id, cluster, edge position) row per side, the first edge per retired id wins.
    prev_l, prev_r = previous[left], previous[right]
    crossing = np.flatnonzero(pd.Series(prev_l).ne(pd.Series(prev_r)).to_numpy())
    sides = pd.DataFrame(
        {
            "previous_id": np.concatenate([prev_l[crossing], prev_r[crossing]]),
            "cluster": np.concatenate([cluster[left[crossing]], cluster[left[crossing]]]),
            "edge": np.concatenate([crossing, crossing]),
        }
    ).dropna(subset=["previous_id"])
    first_edge = sides.groupby(["previous_id", "cluster"], sort=False)["edge"].min()
    found = pd.MultiIndex.from_arrays(
        [retired["previous_id"].to_numpy(), retired["cluster"].to_numpy()]
    ).map(lambda key: first_edge.get(key, -1))
    edge = np.asarray(found, dtype=np.int64)
    hit = edge >= 0
    at = np.where(hit, edge, 0)
    weights = tree_edges["weight"].to_numpy(dtype=float) if len(tree_edges) else np.zeros(1)
    rules = tree_edges["rule"].to_numpy(dtype=object) if len(tree_edges) else np.array([None])
    weight = np.where(hit, weights[at] if len(tree_edges) else np.nan, np.nan)
    return pd.DataFrame(
        {
            "surviving_customer_id": retired["cluster"].map(id_of_cluster).to_numpy(),
            "retired_customer_id": retired["previous_id"].to_numpy(),
            "record_a": np.where(hit, keys[left[at]] if len(tree_edges) else None, None),
            "record_b": np.where(hit, keys[right[at]] if len(tree_edges) else None, None),
            "match_rule": np.where(hit, rules[at], None),
            "match_weight": [None if np.isnan(w) else float(w) for w in weight],
        },
        columns=columns,
    )
