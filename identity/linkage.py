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
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from identity.blocking import BlockingResult, block_candidate_pairs
from identity.classify import (
    FellegiSunterModel,
    TrainingSession,
    _default_m,
    estimate_m_by_blocked_em,
    estimate_u,
    fit_fellegi_sunter,
)
from identity.clusters import ClusteringResult, cluster_records
from identity.compare import (
    compare_pairs,
    create_term_frequency_tables,
    level_columns,
    term_frequency_table,
    tf_column,
)
from identity.config import IdentityConfig
from identity.guards import HOUSEHOLD, ClusterAttributes, cardinality_limits, household_pairs
from identity.overrides import StewardOverrides
from identity.records import RECORDS_TABLE
from identity.rules import deterministic_edges
from identity.shared_values import written_other_way_round
from warehouse_engine.frames import to_pandas

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
    scored_pairs: pd.DataFrame  # rid_l, rid_r, level_*, tf_*, weight of every candidate pair
    evidence: pd.DataFrame  # rid_l, rid_r, comparison, level, weight: per-field log2 Bayes factors
    prior_weight: float  # log2 prior odds that two random records match
    seconds: dict[str, float] = field(default_factory=dict)


def load_records_table(
    con: duckdb.DuckDBPyConnection, records: pd.DataFrame, table: str = RECORDS_TABLE
) -> None:
    """Materialise the records as a temp table with an integer `rid` = row position."""
    frame = records.reset_index(drop=True)
    frame.insert(0, "rid", np.arange(len(frame), dtype=np.int32))
    con.register("_identity_records_frame", frame)
    try:
        con.execute(
            f"create or replace temp table {table} as select * from _identity_records_frame"
        )
    finally:
        con.unregister("_identity_records_frame")


def link_records(
    con: duckdb.DuckDBPyConnection,
    records: pd.DataFrame,
    config: IdentityConfig,
    records_table_loaded: bool = False,
    previous_links: pd.DataFrame | None = None,
    records_table: str = RECORDS_TABLE,
    overrides: StewardOverrides | None = None,
    model: FellegiSunterModel | None = None,
    within: np.ndarray | None = None,
    fixed_edges: pd.DataFrame | None = None,
) -> LinkageResult:
    """Cluster `records` (sorted by record_key; row position = rid) into customers.
    `records_table_loaded`: `records_table` already holds them (built in SQL; the pipeline
    passes the matching copy without shared values, `_identity_match_records`).
    `previous_links` (rid_l, rid_r, rule, weight): the links that built last run's customers.
    Model weights shift a little as data arrives (and growing blocks drop pairs from
    blocking), so a probabilistic link accepted yesterday is re-scored with today's model and
    kept while its weight stays within `keep_link_weight_margin` of the threshold and the
    guards allow it: hysteresis, so a customer does not split on noise. A link whose values
    changed enough to fall below that is dropped (the split is logged by stable_ids).

    Incremental runs (identity/incremental.py) pass a frozen `model` (no training: the
    term-frequency tables must already exist), `within` (a mask of the records to re-cluster:
    a union of whole components of the match graph) and `fixed_edges`: the previous
    spanning trees of every other customer. Both kinds of edges go through the one
    clustering function, `cluster_records`, as in a full run."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 3)
        clock = now

    if not records_table_loaded:
        load_records_table(con, records, records_table)
    n_records = len(records)
    rule_edges = deterministic_edges(con, records_table, config.deterministic_rules)
    rule_edges["weight"] = np.nan
    if within is not None:
        rule_edges = rule_edges[
            within[rule_edges["rid_l"].to_numpy(dtype=np.int64)]
            & within[rule_edges["rid_r"].to_numpy(dtype=np.int64)]
        ].reset_index(drop=True)
    rule_edges, shared_mailbox = _split_shared_mailboxes(con, rule_edges, records_table)
    lap("deterministic_rules")

    within_relation = None
    if within is not None:
        within_relation = "_identity_within"
        con.register(
            within_relation, pd.DataFrame({"rid": np.flatnonzero(within).astype(np.int32)})
        )
    try:
        blocking = block_candidate_pairs(
            con,
            records_table,
            config.blocking_rules,
            config.max_block_size,
            PAIRS_TABLE,
            within=within_relation,
        )
    finally:
        if within_relation is not None:
            con.unregister(within_relation)
    lap("blocking")

    comparisons = config.comparisons
    if model is None:
        create_term_frequency_tables(con, records_table, comparisons)
    candidates = compare_pairs(con, records_table, PAIRS_TABLE, comparisons)
    rule_flags = (
        blocking_rule_flags(con, records_table, PAIRS_TABLE, config.blocking_rules)
        if model is None
        else None
    )
    con.execute(f"drop table if exists {PAIRS_TABLE}")
    lap("comparison")

    candidate_levels = candidates[level_columns(comparisons)].to_numpy()
    if model is None:
        model = train_model(
            con, config, records_table, rule_edges, candidate_levels, rule_flags, n_records
        )
    lap("training")

    fill_names_from_mailboxes(con, records_table, candidates, config)
    component_of = rule_components(rule_edges, n_records)
    fill_levels_from_components(con, records_table, candidates, config, component_of)
    candidate_levels = candidates[level_columns(comparisons)].to_numpy()
    term_frequencies = candidate_term_frequencies(candidates, comparisons)
    weights, accepted, household = score_candidates(
        model,
        candidates,
        config,
        first_name_from_mailbox(con, records_table, candidates, config)
        if config.household_guard_comparison
        else None,
    )
    candidates["weight"] = weights
    household_refused = (
        candidates[accepted & household] if household is not None else candidates.iloc[0:0]
    )
    if household is not None:
        accepted &= ~household
    evidence = _field_evidence(model, candidates, candidate_levels, term_frequencies, accepted)
    probabilistic = candidates.loc[accepted, ["rid_l", "rid_r", "weight"]].copy()
    probabilistic["rule"] = PROBABILISTIC
    probabilistic = probabilistic.sort_values(
        ["weight", "rid_l", "rid_r"], ascending=[False, True, True]
    )
    lap("scoring")

    if previous_links is not None and within is not None and len(previous_links):
        previous_links = previous_links[
            within[previous_links["rid_l"].to_numpy(dtype=np.int64)]
            & within[previous_links["rid_r"].to_numpy(dtype=np.int64)]
        ]
    kept = _still_supported_links(con, model, previous_links, config, records_table, component_of)
    edge_columns = ["rid_l", "rid_r", "rule", "weight"]
    new_edges = pd.concat(
        [rule_edges[edge_columns], probabilistic[edge_columns]]
        + ([kept[edge_columns]] if len(kept) else []),
        ignore_index=True,
    )
    clustering = None
    if within is not None and fixed_edges is not None:
        clustering = cluster_within(
            records, config, within, new_edges, fixed_edges[edge_columns], overrides
        )
    if clustering is None:
        edges = pd.concat(
            [new_edges]
            + ([fixed_edges[edge_columns]] if fixed_edges is not None and len(fixed_edges) else []),
            ignore_index=True,
        )
        attributes = ClusterAttributes(
            cardinality_limits(config),
            {
                column: (
                    records[column].tolist() if column in records.columns else [None] * n_records
                )
                for column in ("user_id", "email_key", "phone_e164")
            },
        )
        clustering = cluster_records(n_records, edges, attributes, overrides)
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
    if len(shared_mailbox):
        cluster_of = clustering.cluster_of
        split = (
            cluster_of[shared_mailbox["rid_l"].to_numpy()]
            != cluster_of[shared_mailbox["rid_r"].to_numpy()]
        )
        extra = shared_mailbox.loc[split, ["rid_l", "rid_r", "rule", "weight"]].assign(
            guard=SHARED_MAILBOX,
            detail="same email address but different first names: a shared (family) mailbox",
        )
        clustering.refused = pd.concat([clustering.refused, extra], ignore_index=True)
    lap("clustering")

    return LinkageResult(
        clustering=clustering,
        model=model,
        blocking=blocking,
        deterministic_edge_count=rule_edges["rule"].value_counts().to_dict(),
        accepted_probabilistic_pairs=int(accepted.sum()),
        scored_pairs=candidates,
        evidence=evidence,
        prior_weight=model.prior_weight,
        seconds=seconds,
    )


def cluster_within(
    records: pd.DataFrame,
    config: IdentityConfig,
    within: np.ndarray,
    new_edges: pd.DataFrame,
    fixed_edges: pd.DataFrame,
    overrides: StewardOverrides | None,
) -> ClusteringResult | None:
    """An incremental run's clustering at the cost of the re-clustered records: union-find
    (with its guards) over the records in `within` only, and every other customer taken as
    its previous spanning tree (`fixed_edges`) by connected components.

    The same result as `cluster_records` over all records and all edges: every new edge
    joins two records in `within` (a union of whole components), every fixed edge two
    records outside it, so the two parts never meet; and a previous customer's tree, whose
    values are unchanged, passed the guards when it was built (the guard limits are in the
    config fingerprint). None (the caller clusters everything) when that does not hold: a
    steward pair with a record outside `within`, or fixed edges that are not a forest."""
    n_records = len(records)
    inside = np.flatnonzero(within)
    local_of = np.full(n_records, -1, dtype=np.int64)
    local_of[inside] = np.arange(len(inside))

    def to_local(frame: pd.DataFrame, columns: tuple[str, str]) -> pd.DataFrame | None:
        mapped = frame.copy()
        for column in columns:
            mapped[column] = local_of[frame[column].to_numpy(dtype=np.int64)]
            if (mapped[column] < 0).any():
                return None
        return mapped

    local_edges = to_local(new_edges, ("rid_l", "rid_r"))
    if local_edges is None:
        return None
    local_overrides = overrides
    if overrides is not None and not (overrides.must_links.empty and overrides.cannot_links.empty):
        must = to_local(overrides.must_links, ("rid_l", "rid_r"))
        cannot = to_local(overrides.cannot_links, ("rid_a", "rid_b"))
        if must is None or cannot is None:
            return None
        local_overrides = StewardOverrides(
            must, cannot, overrides.blocked, overrides.missing_records
        )

    outside = ~within
    left = fixed_edges["rid_l"].to_numpy(dtype=np.int64)
    right = fixed_edges["rid_r"].to_numpy(dtype=np.int64)
    if not (outside[left].all() and outside[right].all()):
        return None
    graph = coo_matrix(
        (np.ones(len(fixed_edges), dtype=np.int8), (left, right)), shape=(n_records, n_records)
    )
    _, component = connected_components(graph, directed=False)
    n_outside_components = len(np.unique(component[outside]))
    if len(fixed_edges) != int(outside.sum()) - n_outside_components:
        return None  # a cycle: not a forest of spanning trees
    smallest = np.full(component.max() + 1, n_records, dtype=np.int64)
    np.minimum.at(smallest, component, np.arange(n_records, dtype=np.int64))

    attributes = ClusterAttributes(
        cardinality_limits(config),
        {
            column: (
                records[column].to_numpy(dtype=object)[inside].tolist()
                if column in records.columns
                else [None] * len(inside)
            )
            for column in ("user_id", "email_key", "phone_e164")
        },
    )
    local = cluster_records(len(inside), local_edges, attributes, local_overrides)
    cluster_of = smallest[component]
    cluster_of[inside] = inside[local.cluster_of]
    tree = local.tree_edges.copy()
    tree["rid_l"] = inside[tree["rid_l"].to_numpy(dtype=np.int64)]
    tree["rid_r"] = inside[tree["rid_r"].to_numpy(dtype=np.int64)]
    refused = local.refused.copy()
    refused["rid_l"] = inside[refused["rid_l"].to_numpy(dtype=np.int64)]
    refused["rid_r"] = inside[refused["rid_r"].to_numpy(dtype=np.int64)]
    tree_edges = pd.concat([tree, fixed_edges], ignore_index=True) if len(fixed_edges) else tree
    return ClusteringResult(cluster_of, tree_edges, refused)


def train_model(
    con: duckdb.DuckDBPyConnection,
    config: IdentityConfig,
    records_table: str,
    rule_edges: pd.DataFrame,
    candidate_levels: np.ndarray,
    rule_flags: np.ndarray,
    n_records: int,
) -> FellegiSunterModel:
    """m and u of every comparison level: u from random pairs, m from blocked EM (each
    comparison learnt on pairs other blocking rules selected) and deterministic labels."""
    comparisons = config.comparisons
    u = estimate_u(
        con, records_table, comparisons, n_records, config.u_sample_pairs, config.random_seed
    )
    labelled = _labelled_levels(con, rule_edges, config, records_table)
    return fit_model(
        config,
        candidate_levels,
        rule_flags,
        u,
        labelled,
        random_match_probability(rule_edges, n_records, config.deterministic_rule_recall),
        n_records,
    )


def fit_model(
    config: IdentityConfig,
    candidate_levels: np.ndarray,
    rule_flags: np.ndarray,
    u: list[np.ndarray],
    labelled: np.ndarray,
    prior_match_probability: float,
    n_records: int,
) -> FellegiSunterModel:
    """m by blocked EM and the Fellegi-Sunter fit, from levels, u and labels however the
    engine computed them (one fit for the in-process and the engine-SQL paths)."""
    comparisons = config.comparisons
    blocked_em_m = estimate_m_by_blocked_em(
        comparisons,
        candidate_levels,
        training_sessions(config.blocking_rules, comparisons, rule_flags),
        u,
        [_default_m(spec) for spec in comparisons],
        config.em_max_iterations,
        config.random_seed,
    )
    return fit_fellegi_sunter(
        comparisons,
        candidate_levels,
        u,
        labelled,
        config.em_max_iterations,
        prior_match_probability,
        blocked_em_m,
        n_records,
    )


def score_candidates(
    model: FellegiSunterModel,
    candidates: pd.DataFrame,
    config: IdentityConfig,
    named_by_mailbox: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(match weight, accepted before the household guard, household-guarded) per pair.
    `named_by_mailbox`: pairs whose missing first name the mailbox supplies
    (`first_name_from_mailbox`), which the household guard does not refuse."""
    comparisons = config.comparisons
    levels = candidates[level_columns(comparisons)].to_numpy()
    term_frequencies = candidate_term_frequencies(candidates, comparisons)
    weights = model.match_weights(levels, term_frequencies)
    agreeing = (levels >= 1).sum(axis=1)
    accepted = (weights >= config.match_weight_threshold) & (
        agreeing >= config.min_agreeing_comparisons
    )
    household = _household_mask(
        model, candidates, levels, term_frequencies, config, named_by_mailbox
    )
    return weights, accepted, household


# Blocking columns derived from a comparison's column: a rule on them selects pairs by that
# comparison too (pairs sharing a mailbox name mostly share the whole address).
DERIVED_FROM = {"email_local": "email_key", "first_name": "first_name_key"}


def blocking_rule_flags(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    pairs_table: str,
    blocking_rules: tuple[tuple[str, ...], ...],
) -> np.ndarray:
    """(n_pairs x n_rules) booleans: does blocking rule k hold for the pair (same order as
    `compare_pairs`: by rid_l, rid_r)."""
    if not blocking_rules:
        return np.zeros((con.sql(f"select count(*) from {pairs_table}").fetchall()[0][0], 0), bool)
    flags = ", ".join(
        "coalesce(" + " and ".join(f"l.{c} = r.{c}" for c in rule) + f", false) as rule_{k}"
        for k, rule in enumerate(blocking_rules)
    )
    result = con.sql(f"""
        select {flags}
        from {pairs_table} p
        join {records_table} l on l.rid = p.rid_l
        join {records_table} r on r.rid = p.rid_r
        order by p.rid_l, p.rid_r
    """).fetchnumpy()
    return np.column_stack(
        [np.asarray(result[f"rule_{k}"], dtype=bool) for k in range(len(blocking_rules))]
    )


def training_sessions(
    blocking_rules: tuple[tuple[str, ...], ...],
    comparisons,
    rule_flags: np.ndarray,
) -> list[TrainingSession]:
    """One EM session per blocking rule, learning the comparisons on other columns."""
    sessions = []
    for k, rule in enumerate(blocking_rules):
        columns = {DERIVED_FROM.get(c, c) for c in rule}
        trained = tuple(i for i, spec in enumerate(comparisons) if spec.column not in columns)
        sessions.append(TrainingSession("+".join(rule), rule_flags[:, k], trained))
    return sessions


def first_name_from_mailbox(
    con: duckdb.DuckDBPyConnection, records_table: str, pairs: pd.DataFrame, config: IdentityConfig
) -> np.ndarray:
    """Per pair: one record has no first name, but its mailbox spells the other record's
    name - the other's surname preceded by its first name or initial (`jhopper@`,
    `denise.brorrwood@` for James / Denise Hopper / Brorrwood). Then the missing first name
    is not unknown: it is the other's, and the pair is no household of two people."""
    column = f"level_{config.household_guard_comparison}"
    spec = next(
        (c for c in config.comparisons if c.name == config.household_guard_comparison), None
    )
    if (
        spec is None
        or column not in pairs.columns
        or "email_local" not in _columns(con, records_table)
        or "last_name" not in _columns(con, records_table)
    ):
        return np.zeros(len(pairs), dtype=bool)
    missing = np.flatnonzero(pairs[column].to_numpy() == -1)
    result = np.zeros(len(pairs), dtype=bool)
    if not len(missing):
        return result
    first = spec.column
    con.register(
        "_identity_missing_first",
        pd.DataFrame(
            {
                "pos": missing,
                "rid_l": pairs["rid_l"].to_numpy()[missing],
                "rid_r": pairs["rid_r"].to_numpy()[missing],
            }
        ),
    )

    def spelt(nameless: str, named: str) -> str:
        mailbox = f"regexp_replace({nameless}.email_local, '[^a-z]', '', 'g')"
        surname = f"regexp_replace({named}.last_name, '[^a-z]', '', 'g')"
        prefix = f"split_part({mailbox}, {surname}, 1)"
        given = f"regexp_replace({named}.{first}, '[^a-z]', '', 'g')"
        return (
            f"({nameless}.{first} is null and {named}.{first} is not null "
            f"and length({surname}) >= 3 and contains({mailbox}, {surname}) "
            f"and ({prefix} = {given} or ({prefix} = left({given}, 1) and length({prefix}) = 1)))"
        )

    try:
        found = con.sql(f"""
            select m.pos
            from _identity_missing_first m
            join {records_table} l on l.rid = m.rid_l
            join {records_table} r on r.rid = m.rid_r
            where {spelt("l", "r")} or {spelt("r", "l")}
        """).fetchnumpy()["pos"]
    finally:
        con.unregister("_identity_missing_first")
    result[np.asarray(found, dtype=np.int64)] = True
    return result


def _household_mask(
    model, pairs, levels, term_frequencies, config, named_by_mailbox=None
) -> np.ndarray | None:
    """Pairs the household guard refuses: the guarded name comparison disagrees and the
    personal evidence - every comparison but what a household shares
    (`household_shared_comparisons`: surname, phone, address, city, postcode) - does not
    lean towards one person (its weights sum to <= 0). Partners at one address stay apart;
    one person whose first name was mistyped beyond recognition but whose own email or
    birth date agrees is linked."""
    if config.household_guard_comparison is None:
        return None
    disagree = household_pairs(pairs[f"level_{config.household_guard_comparison}"].to_numpy())
    if named_by_mailbox is not None:
        disagree = disagree & ~named_by_mailbox
    if not disagree.any():
        return disagree
    shared = [
        i
        for i, spec in enumerate(config.comparisons)
        if spec.name in config.household_shared_comparisons
    ]
    field = model.field_weights(levels, term_frequencies)
    personal = np.delete(field, shared, axis=1).sum(axis=1)
    return disagree & (personal <= 0)


SHARED_MAILBOX = "shared_mailbox"
SHARED_MAILBOX_NAME_SIMILARITY = 0.6
PREVIOUS_PAIRS = "_identity_previous_pairs"


def _still_supported_links(
    con: duckdb.DuckDBPyConnection,
    model: FellegiSunterModel,
    previous_links: pd.DataFrame | None,
    config: IdentityConfig,
    records_table: str,
    component_of: np.ndarray | None = None,
) -> pd.DataFrame:
    """Last run's probabilistic links whose weight under today's model is still at least
    `match_weight_threshold - keep_link_weight_margin` (and not a household pair), with
    today's weight. Deterministic links need no memory: their rule re-derives them."""
    columns = ["rid_l", "rid_r", "rule", "weight"]
    if previous_links is None or previous_links.empty:
        return pd.DataFrame(columns=columns)
    links = previous_links[previous_links["rule"] == PROBABILISTIC][["rid_l", "rid_r"]]
    links = links.drop_duplicates().reset_index(drop=True)
    if links.empty:
        return pd.DataFrame(columns=columns)
    con.register(PREVIOUS_PAIRS, links)
    try:
        compared = compare_pairs(con, records_table, PREVIOUS_PAIRS, config.comparisons)
    finally:
        con.unregister(PREVIOUS_PAIRS)
    if component_of is not None:
        fill_levels_from_components(con, records_table, compared, config, component_of)
    levels = compared[level_columns(config.comparisons)].to_numpy()
    weights = model.match_weights(levels, candidate_term_frequencies(compared, config.comparisons))
    keep = weights >= config.match_weight_threshold - config.keep_link_weight_margin
    household = _household_mask(
        model,
        compared,
        levels,
        candidate_term_frequencies(compared, config.comparisons),
        config,
        first_name_from_mailbox(con, records_table, compared, config)
        if config.household_guard_comparison
        else None,
    )
    if household is not None:
        keep &= ~household
    kept = compared.loc[keep, ["rid_l", "rid_r"]].assign(rule=PROBABILISTIC, weight=weights[keep])
    return kept.sort_values(["weight", "rid_l", "rid_r"], ascending=[False, True, True])


def rule_components(rule_edges: pd.DataFrame, n_records: int) -> np.ndarray:
    """The deterministic component of every record: records an exact identifier (a shared
    email key, a user id) already makes one customer."""
    if rule_edges.empty:
        return np.arange(n_records, dtype=np.int64)
    graph = coo_matrix(
        (
            np.ones(len(rule_edges), dtype=np.int8),
            (
                rule_edges["rid_l"].to_numpy(dtype=np.int64),
                rule_edges["rid_r"].to_numpy(dtype=np.int64),
            ),
        ),
        shape=(n_records, n_records),
    )
    return connected_components(graph, directed=False)[1].astype(np.int64)


MAILBOX_PAIRS = "_identity_mailbox_pairs"
# A surname (first name) read from a mailbox must be at least this long: `lee` or `li`
# turn up inside too many mailboxes to mean anything.
MIN_SPELT_SURNAME = 4
MIN_SPELT_FIRST_NAME = 3


def fill_names_from_mailboxes(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    pairs: pd.DataFrame,
    config: IdentityConfig,
) -> None:
    """In place: a name a record lacks is read from its own mailbox when the mailbox spells
    the other record's name. `astrid.glairnott@blackmesa.io` with first name Astrid and no
    surname agrees on the surname with Astrid Glairnott; `evellis.wovano@` with only the
    surname Wovano agrees on the first name with Evellis Wovano. The level becomes the
    exact one, term-frequency adjusted by the name's own frequency like any exact
    agreement. Run before scoring in full and incremental runs alike."""
    by_column = {spec.column: spec for spec in config.comparisons}
    first, last = by_column.get("first_name_key"), by_column.get("last_name")
    if (
        first is None
        or last is None
        or pairs.empty
        or "email_local" not in _columns(con, records_table)
    ):
        return
    first_level, last_level = f"level_{first.name}", f"level_{last.name}"
    if first_level not in pairs.columns or last_level not in pairs.columns:
        return
    missing = np.flatnonzero(
        (pairs[first_level].to_numpy() == -1) | (pairs[last_level].to_numpy() == -1)
    )
    if not len(missing):
        return
    con.register(
        MAILBOX_PAIRS,
        pd.DataFrame(
            {
                "pos": missing,
                "rid_l": pairs["rid_l"].to_numpy()[missing],
                "rid_r": pairs["rid_r"].to_numpy()[missing],
            }
        ),
    )

    # A shared mailbox (a family's, a shop's) spells its owner's name, not its users'.
    own_mailbox = (
        "({t}.email_key is not null and coalesce(not contains({t}.shared_values, 'email:'), true))"
        if "shared_values" in _columns(con, records_table)
        else "{t}.email_key is not null"
    )

    def spelt(column: str, minimum: int, nameless: str, named: str) -> str:
        mailbox = f"regexp_replace({nameless}.email_local, '[^a-z]', '', 'g')"
        name = f"regexp_replace({named}.{column}, '[^a-z]', '', 'g')"
        return (
            f"({nameless}.{column} is null and {named}.{column} is not null "
            f"and {own_mailbox.format(t=nameless)} "
            f"and length({name}) >= {minimum} and contains({mailbox}, {name}))"
        )

    try:
        found = to_pandas(
            con.sql(f"""
            select m.pos,
                   {spelt(last.column, MIN_SPELT_SURNAME, "l", "r")}
                       or {spelt(last.column, MIN_SPELT_SURNAME, "r", "l")} as last_spelt,
                   coalesce(l.{last.column}, r.{last.column}) as last_value,
                   {spelt(first.column, MIN_SPELT_FIRST_NAME, "l", "r")}
                       or {spelt(first.column, MIN_SPELT_FIRST_NAME, "r", "l")} as first_spelt,
                   coalesce(l.{first.column}, r.{first.column}) as first_value
            from {MAILBOX_PAIRS} m
            join {records_table} l on l.rid = m.rid_l
            join {records_table} r on r.rid = m.rid_r
        """)
        )
    finally:
        con.unregister(MAILBOX_PAIRS)
    for spec, column in ((last, "last"), (first, "first")):
        hit = found[found[f"{column}_spelt"].fillna(False).astype(bool)]
        if hit.empty:
            continue
        positions = hit["pos"].to_numpy(dtype=np.int64)
        levels = pairs[f"level_{spec.name}"].to_numpy().copy()
        levels[positions] = spec.n_levels - 1
        pairs[f"level_{spec.name}"] = levels.astype(np.int8)
        if spec.term_frequency and tf_column(spec) in pairs.columns:
            frequencies = dict(
                con.sql(f"select value, tf from {term_frequency_table(spec)}").fetchall()
            )
            tf = pairs[tf_column(spec)].to_numpy(dtype=float).copy()
            tf[positions] = [frequencies.get(v, np.nan) for v in hit[f"{column}_value"]]
            pairs[tf_column(spec)] = tf


COMPONENTS = "_identity_components"
COMPONENT_PAIRS = "_identity_component_pairs"


def fill_levels_from_components(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    pairs: pd.DataFrame,
    config: IdentityConfig,
    component_of: np.ndarray,
) -> None:
    """In place: a pair's missing level (-1) of each `component_evidence_comparisons`
    becomes "disagree" (0) when both records' deterministic components carry values of that
    column and none of them is shared. What a record's own components say is that person's
    evidence: an email contact without a phone, tied by its address to a billing account
    with one, is no longer silent about the phone. Two namesakes in one city (same name,
    different emails) are told apart by the phones and postcodes of their other records;
    a person's second address that nothing else contradicts keeps its missing levels.
    Agreement is not read this way: an accepted pair is always accepted on its own values."""
    names = set(config.component_evidence_comparisons)
    specs = [
        spec
        for spec in config.comparisons
        if spec.name in names and f"level_{spec.name}" in pairs.columns
    ]
    if not specs or pairs.empty:
        return
    left = pairs["rid_l"].to_numpy(dtype=np.int64)
    right = pairs["rid_r"].to_numpy(dtype=np.int64)
    missing = {spec.name: pairs[f"level_{spec.name}"].to_numpy() == -1 for spec in specs}
    rows = np.flatnonzero(np.logical_or.reduce(list(missing.values())))
    if not len(rows):
        return
    con.register(
        COMPONENTS,
        pd.DataFrame(
            {"rid": np.arange(len(component_of), dtype=np.int64), "component": component_of}
        ),
    )
    con.register(
        COMPONENT_PAIRS,
        pd.DataFrame(
            {"pos": rows, "cl": component_of[left[rows]], "cr": component_of[right[rows]]}
        ),
    )
    try:
        for spec in specs:
            found = con.sql(f"""
                with vals as (
                    select distinct c.component, r.{spec.column} as v
                    from {records_table} r join {COMPONENTS} c using (rid)
                    where r.{spec.column} is not null
                ),
                carriers as (select distinct component from vals),
                sharing as (
                    select distinct p.pos from {COMPONENT_PAIRS} p
                    join vals a on a.component = p.cl
                    join vals b on b.component = p.cr and b.v = a.v
                )
                select p.pos
                from {COMPONENT_PAIRS} p
                semi join carriers a on a.component = p.cl
                semi join carriers b on b.component = p.cr
                anti join sharing s on s.pos = p.pos
            """).fetchnumpy()["pos"]
            found = np.asarray(found, dtype=np.int64)
            found = found[missing[spec.name][found]]
            column = f"level_{spec.name}"
            levels = pairs[column].to_numpy().copy()
            levels[found] = 0
            pairs[column] = levels.astype(np.int8)
    finally:
        con.unregister(COMPONENTS)
        con.unregister(COMPONENT_PAIRS)


def _split_shared_mailboxes(
    con: duckdb.DuckDBPyConnection, rule_edges: pd.DataFrame, records_table: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept, refused) email-key edges: two records on one address whose first names both
    exist and clearly differ (Ada vs Byron) are a family sharing a mailbox, not one person -
    unless one record has the names the other way round ("Lovelace Ada")."""
    if rule_edges.empty or "first_name_key" not in _columns(con, records_table):
        return rule_edges, rule_edges.iloc[0:0]
    con.register(
        "_identity_rule_edges",
        rule_edges[["rid_l", "rid_r", "rule"]].assign(pos=np.arange(len(rule_edges))),
    )
    try:
        found = con.sql(f"""
            select e.pos, l.first_name_key, l.last_name, r.first_name_key, r.last_name
            from _identity_rule_edges e
            join {records_table} l on l.rid = e.rid_l
            join {records_table} r on r.rid = e.rid_r
            where e.rule = 'email_key'
              and l.first_name_key is not null and r.first_name_key is not null
              and jaro_winkler_similarity(l.first_name_key, r.first_name_key)
                  < {SHARED_MAILBOX_NAME_SIMILARITY}
        """).fetchall()
    finally:
        con.unregister("_identity_rule_edges")
    shared = np.zeros(len(rule_edges), dtype=bool)
    for pos, first_l, last_l, first_r, last_r in found:
        # "Ashondfield Michael" next to "Michael Ashondfield": one person's name written
        # the other way round, not a second person on the mailbox
        shared[pos] = not written_other_way_round(
            {"f": first_l, "l": last_l}, {"f": first_r, "l": last_r}
        )
    return rule_edges[~shared].reset_index(drop=True), rule_edges[shared].reset_index(drop=True)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {row[0] for row in con.sql(f"describe {table}").fetchall()}


def _field_evidence(model, candidates, levels, term_frequencies, accepted) -> pd.DataFrame:
    """Per-comparison level and log2 Bayes factor of every accepted probabilistic pair (long
    format), so `cdp explain` can show why two records were judged the same person."""
    rows = np.flatnonzero(accepted)
    weights = model.field_weights(levels[rows], {i: tf[rows] for i, tf in term_frequencies.items()})
    names = [spec.name for spec in model.comparisons]
    k = len(names)
    return pd.DataFrame(
        {
            "rid_l": np.repeat(candidates["rid_l"].to_numpy()[rows], k),
            "rid_r": np.repeat(candidates["rid_r"].to_numpy()[rows], k),
            "comparison": np.tile(np.array(names, dtype=object), len(rows)),
            "level": levels[rows].reshape(-1).astype(np.int64),
            "weight": weights.reshape(-1),
        }
    )


def candidate_term_frequencies(candidates: pd.DataFrame, comparisons) -> dict[int, np.ndarray]:
    return {
        i: candidates[tf_column(spec)].to_numpy(dtype=float)
        for i, spec in enumerate(comparisons)
        if spec.term_frequency
    }


def random_match_probability(
    rule_edges: pd.DataFrame, n_records: int, rule_recall: float
) -> float | None:
    """P(two random records are the same customer), as Splink estimates it from
    deterministic rules: the pairs inside the rules' connected components, divided by the
    share of true pairs the rules are believed to find, over all record pairs."""
    if rule_edges.empty or n_records < 2:
        return None
    graph = coo_matrix(
        (
            np.ones(len(rule_edges), dtype=np.int8),
            (rule_edges["rid_l"].to_numpy(), rule_edges["rid_r"].to_numpy()),
        ),
        shape=(n_records, n_records),
    )
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component).astype(float)
    linked_pairs = float((sizes * (sizes - 1) / 2).sum())
    all_pairs = n_records * (n_records - 1) / 2
    return float(np.clip(linked_pairs / rule_recall / all_pairs, 1e-12, 0.5))


def _labelled_levels(
    con: duckdb.DuckDBPyConnection,
    rule_edges: pd.DataFrame,
    config: IdentityConfig,
    records_table: str,
) -> dict[str, np.ndarray]:
    """Comparison levels of deterministic matches, per comparison, excluding the rules on its column."""
    if rule_edges.empty:
        return {}
    sample = rule_edges
    if len(sample) > MAX_TRAINING_LABELS:
        sample = sample.sample(MAX_TRAINING_LABELS, random_state=config.random_seed)
    con.register("_identity_label_pairs", sample[["rid_l", "rid_r"]])
    try:
        compared = compare_pairs(con, records_table, "_identity_label_pairs", config.comparisons)
    finally:
        con.unregister("_identity_label_pairs")
    merged = compared.merge(sample[["rid_l", "rid_r", "rule"]], on=["rid_l", "rid_r"], how="left")
    rule_column = {rule.name: rule.column for rule in config.deterministic_rules}
    result = {}
    for spec, column in zip(config.comparisons, level_columns(config.comparisons), strict=True):
        usable = merged["rule"].map(rule_column) != spec.column
        result[spec.name] = merged.loc[usable, column].to_numpy()
    return result
