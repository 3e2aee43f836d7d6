"""Clusters: connected components over accepted pairs, merged in order of confidence.

Union-find processes deterministic edges first (in rule order) and then probabilistic
edges by descending match weight, so when a guard refuses a merge, the stronger evidence
has already decided the shape of the clusters. Each accepted edge that joins two clusters
is kept: it is the spanning tree that explains the customer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from identity.guards import ClusterAttributes
from identity.overrides import StewardOverrides, constrain_clustering


@dataclass
class ClusteringResult:
    cluster_of: np.ndarray  # rid -> representative rid (smallest rid of the cluster)
    tree_edges: pd.DataFrame  # rid_l, rid_r, rule, weight: edges that joined two clusters
    refused: pd.DataFrame  # rid_l, rid_r, rule, weight, guard, detail


def cluster_records(
    n_records: int,
    edges: pd.DataFrame,
    attributes: ClusterAttributes,
    overrides: StewardOverrides | None = None,
) -> ClusteringResult:
    """Union-find over `edges` (rid_l, rid_r, rule, weight), already in order of confidence.
    `overrides`: a steward's must-links (taken first, past the cardinality guards) and
    cannot-links (a guard no edge passes), see identity/overrides.py."""
    edges, attributes, forced = constrain_clustering(edges, attributes, overrides)
    parent = np.arange(n_records, dtype=np.int64).tolist()

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    kept: list[int] = []
    refused_rows: list[tuple[int, str, str]] = []
    left = edges["rid_l"].to_numpy(dtype=np.int64).tolist()
    right = edges["rid_r"].to_numpy(dtype=np.int64).tolist()
    for i, (a, b) in enumerate(zip(left, right, strict=True)):
        root_a, root_b = find(a), find(b)
        if root_a == root_b:
            continue
        violation = (attributes.violation if i >= forced else attributes.unlink_violation)(
            root_a, root_b
        )
        if violation is not None:
            refused_rows.append((i, *violation))
            continue
        if root_b < root_a:
            root_a, root_b = root_b, root_a
        parent[root_b] = root_a
        attributes.merge(root_a, root_b)
        kept.append(i)

    cluster_of = np.fromiter((find(x) for x in range(n_records)), dtype=np.int64, count=n_records)
    tree_edges = edges.iloc[kept].reset_index(drop=True)
    if refused_rows:
        idx, guards, details = zip(*refused_rows, strict=True)
        refused = edges.iloc[list(idx)].reset_index(drop=True)
        refused["guard"] = list(guards)
        refused["detail"] = list(details)
    else:
        refused = edges.iloc[0:0].assign(guard=pd.Series(dtype=str), detail=pd.Series(dtype=str))
    return ClusteringResult(cluster_of, tree_edges, refused)
