"""The engine path inside resolve_identities: link on the engine, keep the bookkeeping.

`CDP_ENGINE=spark cdp run` resolves identities with identity/engine_linkage.py's SQL on
the run's Spark session (issue 15): blocking, comparison vectors, term frequencies,
scoring, connected components and the guards' selection of components run on Spark; the
model is fit on the driver. What that leaves is what identity/pipeline.py needs from
`link_records`, per record and per accepted edge, as a `LinkageResult`:

- every record's cluster (rid -> smallest rid of its customer);
- the spanning tree that explains each customer (the edges union-find keeps, in the
  order of confidence: steward links, deterministic rules in rule order, probabilistic
  links by weight): for the components settled on the driver (a cardinality limit broken,
  a steward's unlink inside) `cluster_records`' own tree; for every other component the
  minimum spanning tree over the edges' ranks in that order (scipy), which is exactly the
  tree union-find keeps when no guard refuses an edge;
- the refused merges (cardinality and unlink guards, household pairs, shared mailboxes)
  and the per-field evidence of every accepted probabilistic pair.

The pipeline then does, on the run's DuckDB step store, what it does after `link_records`:
stable ids from last run's registry (an existing customer keeps its id, the older id
survives a merge, the part with the older records keeps it after a split), the merge and
split logs, survivorship and the identity.* tables. Those steps are linear in records;
the pairs (the quadratic part) never leave the engine except the accepted edges' ranks.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

from identity.blocking import BlockingResult
from identity.clusters import ClusteringResult
from identity.compare import create_term_frequency_tables
from identity.config import IdentityConfig
from identity.engine_linkage import PREFIX, link_records_on_engine
from identity.guards import HOUSEHOLD
from identity.linkage import PROBABILISTIC, SHARED_MAILBOX, LinkageResult, _field_evidence
from identity.overrides import STEWARD_LINK, StewardOverrides
from warehouse_engine.parquet_handoff import private_dir, write_relation_parquet

EDGE_COLUMNS = ["rid_l", "rid_r", "rule", "weight"]
ENGINE_RECORDS = PREFIX + "records"
ENGINE_TABLES = (
    "records",
    "rule_edges",
    "mailbox_refused",
    "kept_rule_edges",
    "rule_components",
    "pairs",
    "compared",
    "mailbox_names",
    "scored",
    "steward_links",
    "steward_unlinks",
    "edges",
    "components",
    "guarded_components",
    "guarded_clusters",
    "clusters",
)


def _confidence_order(edges: pd.DataFrame, config: IdentityConfig) -> pd.DataFrame:
    """`edges` (rid_l, rid_r, rule, weight) sorted as union-find takes them: steward links,
    then deterministic rules in rule order, then probabilistic links by weight."""
    order = {STEWARD_LINK: -1, PROBABILISTIC: len(config.deterministic_rules)}
    order.update({rule.name: k for k, rule in enumerate(config.deterministic_rules)})
    probabilistic = edges["rule"] == PROBABILISTIC
    key = pd.DataFrame(
        {
            "order": edges["rule"].map(order).fillna(len(order)).to_numpy(dtype=np.int64),
            "strength": np.where(probabilistic, -edges["weight"].to_numpy(dtype=float), 0.0),
            "rid_l": edges["rid_l"].to_numpy(dtype=np.int64),
            "rid_r": edges["rid_r"].to_numpy(dtype=np.int64),
        }
    )
    position = np.lexsort((key["rid_r"], key["rid_l"], key["strength"], key["order"]))
    return edges.iloc[position].reset_index(drop=True)


def spanning_trees(edges: pd.DataFrame, n_records: int, config: IdentityConfig) -> pd.DataFrame:
    """The edges union-find keeps over `edges` when no guard refuses one: the minimum
    spanning forest over each edge's rank in the order of confidence (ranks are distinct,
    so the forest is unique and is Kruskal's, i.e. union-find's)."""
    if edges.empty:
        return edges[EDGE_COLUMNS].iloc[0:0]
    ordered = _confidence_order(edges[EDGE_COLUMNS], config)
    a = ordered["rid_l"].to_numpy(dtype=np.int64)
    b = ordered["rid_r"].to_numpy(dtype=np.int64)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    # one entry per pair (its first, most confident edge): the sparse matrix would add them up
    first = pd.DataFrame({"lo": lo, "hi": hi}).drop_duplicates().index.to_numpy()
    graph = coo_matrix(
        (first.astype(np.float64) + 1.0, (lo[first], hi[first])), shape=(n_records, n_records)
    ).tocsr()
    forest = minimum_spanning_tree(graph).tocoo()
    kept = np.sort(forest.data.astype(np.int64) - 1)
    return ordered.iloc[kept].reset_index(drop=True)


def stage_records(
    engine, con: duckdb.DuckDBPyConnection, records_table: str, scratch_dir: Path | None
) -> tuple[str, Path | None]:
    """The records as a table of the engine: the same table when the engine is this DuckDB
    connection, else written to Parquet (types Spark reads) and registered from there."""
    if getattr(engine, "con", None) is con:
        return records_table, None
    if scratch_dir is None:
        raise ValueError("the engine needs a folder to read the records from (scratch_dir)")
    private_dir(scratch_dir)
    folder = scratch_dir / f"match_records.{uuid.uuid4().hex}"
    write_relation_parquet(con, records_table, folder)
    engine.register_parquet(ENGINE_RECORDS, folder)
    return ENGINE_RECORDS, folder


def link_on_engine(
    engine,
    con: duckdb.DuckDBPyConnection,
    records: pd.DataFrame,
    config: IdentityConfig,
    records_table: str,
    overrides: StewardOverrides | None = None,
    scratch_dir: Path | None = None,
) -> LinkageResult:
    """What identity/pipeline.py needs from `link_records`, computed on `engine` (module
    docstring). `records` (the pipeline's frame, rid = row position) gives the record
    count; the engine reads `records_table` itself. The term-frequency tables the pipeline
    stores with the model are written to `con` as `link_records` would."""
    clock = time.perf_counter()
    engine_records, folder = stage_records(engine, con, records_table, scratch_dir)
    try:
        staged = round(time.perf_counter() - clock, 3)
        linkage = link_records_on_engine(engine, engine_records, config, overrides=overrides)
        clock = time.perf_counter()
        n = len(records)
        cluster_of = linkage.cluster_of(engine)
        if len(cluster_of) != n:
            raise RuntimeError(
                f"the engine clustered {len(cluster_of)} records, the step store holds {n}"
            )
        settled = engine.fetch_frame(f"""
            select e.rid_l, e.rid_r, e.rule, e.weight
            from {PREFIX}edges e join {PREFIX}components c on c.rid = e.rid_l
            anti join {PREFIX}guarded_components g on g.cluster = c.cluster""")
        tree = spanning_trees(settled, n, config)
        if linkage.driver_tree_edges is not None and len(linkage.driver_tree_edges):
            tree = _confidence_order(
                pd.concat([tree, linkage.driver_tree_edges[EDGE_COLUMNS]], ignore_index=True),
                config,
            )
        refused = _refused(engine, linkage, cluster_of, config)
        levels = [f"level_{spec.name}" for spec in config.comparisons]
        tfs = [f"tf_{spec.name}" for spec in config.comparisons if spec.term_frequency]
        accepted = engine.fetch_frame(
            f"select rid_l, rid_r, {', '.join(levels + tfs)} from {PREFIX}scored "
            "where accepted and not household order by rid_l, rid_r"
        )
        evidence = _field_evidence(
            linkage.model,
            accepted,
            accepted[levels].to_numpy(dtype=np.int64),
            {
                i: accepted[f"tf_{spec.name}"].to_numpy(dtype=float)
                for i, spec in enumerate(config.comparisons)
                if spec.term_frequency
            },
            np.ones(len(accepted), dtype=bool),
        )
    finally:
        per_comparison = [
            f"{kind}_{spec.name}" for spec in config.comparisons for kind in ("tf", "contradicted")
        ]
        for table in (*ENGINE_TABLES, *per_comparison):
            engine.drop_table(PREFIX + table)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    # the kept model's term frequencies, as link_records leaves them for the pipeline
    create_term_frequency_tables(con, records_table, config.comparisons)
    seconds = {"stage_records_on_engine": staged, **linkage.seconds}
    seconds["provenance_from_engine"] = round(time.perf_counter() - clock, 3)
    return LinkageResult(
        clustering=ClusteringResult(cluster_of, tree, refused),
        model=linkage.model,
        blocking=BlockingResult(linkage.candidate_pairs, {}, {}),
        deterministic_edge_count={},
        accepted_probabilistic_pairs=linkage.accepted_probabilistic_pairs,
        scored_pairs=accepted,
        evidence=evidence,
        prior_weight=linkage.model.prior_weight,
        seconds=seconds,
    )


def _refused(engine, linkage, cluster_of: np.ndarray, config: IdentityConfig) -> pd.DataFrame:
    """The guards' refusals, as link_records lists them: cardinality and unlink guards
    (driver), then household pairs and shared-mailbox email edges still apart at the end."""
    parts = [linkage.refused]
    household = engine.fetch_frame(
        f"select rid_l, rid_r, weight from {PREFIX}scored where accepted and household "
        "order by rid_l, rid_r"
    )
    if len(household):
        split = (
            cluster_of[household["rid_l"].to_numpy(dtype=np.int64)]
            != cluster_of[household["rid_r"].to_numpy(dtype=np.int64)]
        )
        parts.append(
            household.loc[split].assign(
                rule=PROBABILISTIC,
                guard=HOUSEHOLD,
                detail=f"same household evidence but the {config.household_guard_comparison} "
                "comparison disagrees",
            )
        )
    mailbox = linkage.mailbox_refused
    if mailbox is not None and len(mailbox):
        split = (
            cluster_of[mailbox["rid_l"].to_numpy(dtype=np.int64)]
            != cluster_of[mailbox["rid_r"].to_numpy(dtype=np.int64)]
        )
        parts.append(
            mailbox.loc[split].assign(
                rule="email_key",
                weight=np.nan,
                guard=SHARED_MAILBOX,
                detail="same email address but different first names: a shared (family) mailbox",
            )
        )
    columns = ["rid_l", "rid_r", "rule", "weight", "guard", "detail"]
    frames = [p[columns] for p in parts if len(p)]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


__all__ = ["link_on_engine", "spanning_trees", "stage_records"]
