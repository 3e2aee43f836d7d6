"""The matching core: rules, blocking, comparison, Fellegi-Sunter scoring, guarded clustering.

Works on any table of records with a `record_key`, a `source_system` and the columns the
config names, so the same engine runs on the CDP sources and on FEBRL (tests).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from identity.blocking import BlockingResult, block_candidate_pairs
from identity.classify import FellegiSunterModel, estimate_u, fit_fellegi_sunter
from identity.clusters import ClusteringResult, cluster_records
from identity.compare import compare_pairs, level_columns
from identity.config import IdentityConfig
from identity.guards import HOUSEHOLD, ClusterAttributes, cardinality_limits, household_pairs
from identity.rules import deterministic_edges

RECORDS_TABLE = "_identity_records"
PAIRS_TABLE = "_identity_candidate_pairs"
PROBABILISTIC = "probabilistic"
MAX_TRAINING_LABELS = 200_000


@dataclass
class LinkageResult:
    clustering: ClusteringResult
    model: FellegiSunterModel
    blocking: BlockingResult
    deterministic_edge_count: dict[str, int]
    accepted_probabilistic_pairs: int
    seconds: dict[str, float] = field(default_factory=dict)


def load_records_table(con: duckdb.DuckDBPyConnection, records: pd.DataFrame) -> None:
    """Materialise the records as a temp table with an integer `rid` = row position."""
    frame = records.reset_index(drop=True)
    frame.insert(0, "rid", np.arange(len(frame), dtype=np.int32))
    con.register("_identity_records_frame", frame)
    try:
        con.execute(
            f"create or replace temp table {RECORDS_TABLE} as select * from _identity_records_frame"
        )
    finally:
        con.unregister("_identity_records_frame")


def link_records(
    con: duckdb.DuckDBPyConnection, records: pd.DataFrame, config: IdentityConfig
) -> LinkageResult:
    """Cluster `records` (sorted by record_key; row position = rid) into customers."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 3)
        clock = now

    load_records_table(con, records)
    n_records = len(records)
    rule_edges = deterministic_edges(con, RECORDS_TABLE, config.deterministic_rules)
    rule_edges["weight"] = np.nan
    lap("deterministic_rules")

    blocking = block_candidate_pairs(
        con, RECORDS_TABLE, config.blocking_rules, config.max_block_size, PAIRS_TABLE
    )
    lap("blocking")

    comparisons = config.comparisons
    candidates = compare_pairs(con, RECORDS_TABLE, PAIRS_TABLE, comparisons)
    con.execute(f"drop table if exists {PAIRS_TABLE}")
    lap("comparison")

    u = estimate_u(
        con, RECORDS_TABLE, comparisons, n_records, config.u_sample_pairs, config.random_seed
    )
    labelled = _labelled_levels(con, rule_edges, config)
    candidate_levels = candidates[level_columns(comparisons)].to_numpy()
    model = fit_fellegi_sunter(comparisons, candidate_levels, u, labelled, config.em_max_iterations)
    lap("training")

    weights = model.match_weights(candidate_levels)
    candidates["weight"] = weights
    agreeing = (candidate_levels >= 1).sum(axis=1)
    accepted = (weights >= config.match_weight_threshold) & (
        agreeing >= config.min_agreeing_comparisons
    )
    household = None
    if config.household_guard_comparison is not None:
        household = household_pairs(
            candidates[f"level_{config.household_guard_comparison}"].to_numpy()
        )
    household_refused = (
        candidates[accepted & household] if household is not None else candidates.iloc[0:0]
    )
    if household is not None:
        accepted &= ~household
    probabilistic = candidates.loc[accepted, ["rid_l", "rid_r", "weight"]].copy()
    probabilistic["rule"] = PROBABILISTIC
    probabilistic = probabilistic.sort_values(
        ["weight", "rid_l", "rid_r"], ascending=[False, True, True]
    )
    lap("scoring")

    edges = pd.concat(
        [
            rule_edges[["rid_l", "rid_r", "rule", "weight"]],
            probabilistic[["rid_l", "rid_r", "rule", "weight"]],
        ],
        ignore_index=True,
    )
    attributes = ClusterAttributes(
        cardinality_limits(config),
        {
            column: (records[column].tolist() if column in records.columns else [None] * n_records)
            for column in ("user_id", "email_key", "phone_e164")
        },
    )
    clustering = cluster_records(n_records, edges, attributes)
    if len(household_refused):
        cluster_of = clustering.cluster_of
        split = (
            cluster_of[household_refused["rid_l"].to_numpy()]
            != cluster_of[household_refused["rid_r"].to_numpy()]
        )
        extra = household_refused.loc[split, ["rid_l", "rid_r", "weight"]].assign(
            rule=PROBABILISTIC,
            guard=HOUSEHOLD,
            detail=f"same household evidence but the {config.household_guard_comparison} comparison disagrees",
        )
        clustering.refused = pd.concat([clustering.refused, extra], ignore_index=True)
    lap("clustering")

    return LinkageResult(
        clustering=clustering,
        model=model,
        blocking=blocking,
        deterministic_edge_count=rule_edges["rule"].value_counts().to_dict(),
        accepted_probabilistic_pairs=int(accepted.sum()),
        seconds=seconds,
    )


def _labelled_levels(
    con: duckdb.DuckDBPyConnection, rule_edges: pd.DataFrame, config: IdentityConfig
) -> dict[str, np.ndarray]:
    """Comparison levels of deterministic matches, per comparison, excluding the rules on its column."""
    if rule_edges.empty:
        return {}
    sample = rule_edges
    if len(sample) > MAX_TRAINING_LABELS:
        sample = sample.sample(MAX_TRAINING_LABELS, random_state=config.random_seed)
    con.register("_identity_label_pairs", sample[["rid_l", "rid_r"]])
    try:
        compared = compare_pairs(con, RECORDS_TABLE, "_identity_label_pairs", config.comparisons)
    finally:
        con.unregister("_identity_label_pairs")
    merged = compared.merge(sample[["rid_l", "rid_r", "rule"]], on=["rid_l", "rid_r"], how="left")
    rule_column = {rule.name: rule.column for rule in config.deterministic_rules}
    result = {}
    for spec, column in zip(config.comparisons, level_columns(config.comparisons), strict=True):
        usable = merged["rule"].map(rule_column) != spec.column
        result[spec.name] = merged.loc[usable, column].to_numpy()
    return result
