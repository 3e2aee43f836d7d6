"""Incremental identity: re-cluster only what the day's records can touch.

A nightly run normalises only new and changed source rows (identity/records.py) but still
detects shared values over all records (a data-wide statistic); it neither retrains the
match model nor blocks and compares every pair. It keeps the model of the last full run (m, u, prior and the
term-frequency tables, `identity.model_parameters` / `identity.term_frequencies`) and:

1. seeds: records that are new, whose matching row changed (its fingerprint differs from
   last run's, e.g. an edited email or a value that became shared), plus every record of
   a customer that held a changed or vanished record;
2. closes the seeds over the match graph: records sharing a deterministic-rule value with
   them, records whose pair with them the model accepts (same blocking, same comparison,
   same threshold), whole previous customers of everything reached, and customers that a
   guard kept apart from them last time - until nothing new is reached. The result is a
   union of whole components of the match graph, so clustering it alone gives what a
   full run with the same model gives on it;
3. re-clusters that set through the same rules, blocking, comparison, guards and the one
   clustering function (`clusters.cluster_records`) as a full run; every other customer is
   passed in as its previous spanning tree and so stays as it was.

A full run (`cdp run --full-identity`, and automatically once the model is older than
`full_identity_every_days`) retrains the model and re-resolves everything.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from identity.blocking import block_candidate_pairs, create_block_tables, drop_block_tables
from identity.classify import FellegiSunterModel
from identity.compare import compare_pairs, term_frequency_table
from identity.config import IdentityConfig
from identity.linkage import fill_names_from_mailboxes, score_candidates
from warehouse_engine.frames import to_pandas

SCHEMA = "identity"
FRONTIER = "_identity_frontier"
TOUCHING_PAIRS = "_identity_touching_pairs"
FINGERPRINT_TABLE = "_identity_fingerprints"
# records new since last run or whose source or matching row changed (rid, customer_id,
# match_changed), made when the seeds are found (not when last run's records have no
# source fingerprints)
NEW_OR_CHANGED_TABLE = "_identity_new_or_changed"
# last run's identity records that are gone from this run (record_key, source_system,
# source_record_id, customer_id), made when the seeds are found
GONE_TABLE = "_identity_gone"
# Columns of the matching copy that only survivorship and display read: no rule, blocking
# rule, comparison, guard or shared-value statistic looks at them. A web identity's
# `source_updated_at` moves every day its visitor is active; were it in the fingerprint,
# every active visitor's whole customer would be re-clustered each night (3,900 of the
# 9,950 "new or changed" records of a measured 100,000-people night changed only there).
# Survivorship still sees every change: a customer holding a record changed in any column
# gets its golden record rebuilt (identity/survivorship.py).
SURVIVORSHIP_ONLY_COLUMNS = frozenset(
    {
        "source_created_at",
        "source_updated_at",
        "is_deleted",
        "display_first_name",
        "display_last_name",
        "display_address_line1",
        "display_city",
        "phone_display",
    }
)


@dataclass
class FrozenModel:
    model: FellegiSunterModel
    trained_at: pd.Timestamp
    trained_on_records: int


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [SCHEMA, table],
        ).fetchall()
    }


def load_frozen_model(con: duckdb.DuckDBPyConnection, config: IdentityConfig) -> FrozenModel | None:
    """The last full run's model, or None when there is none or its comparisons are not the
    configured ones (a changed config needs a full run)."""
    if not {
        "trained_at",
        "trained_on_records",
        "prior_weight",
        "m",
        "u",
        "config_fingerprint",
    } <= _table_columns(con, "model_parameters"):
        return None
    if "comparison" not in _table_columns(con, "term_frequencies"):
        return None
    rows = con.sql(
        f"select comparison, level, m, u, m_source, prior_weight, trained_at, config_fingerprint, "
        f"trained_on_records "
        f"from {SCHEMA}.model_parameters order by comparison, level"
    ).df()
    if rows.empty or set(rows["config_fingerprint"]) != {config_fingerprint(config)}:
        return None
    m, u, sources = [], [], {}
    for spec in config.comparisons:
        mine = rows[rows["comparison"] == spec.name].sort_values("level")
        if len(mine) != spec.n_levels or list(mine["level"]) != list(range(spec.n_levels)):
            return None
        m.append(mine["m"].to_numpy(dtype=float))
        u.append(mine["u"].to_numpy(dtype=float))
        sources[spec.name] = str(mine["m_source"].iloc[0] or "")
    if set(rows["comparison"]) != {spec.name for spec in config.comparisons}:
        return None
    prior_odds = 2.0 ** float(rows["prior_weight"].iloc[0])
    model = FellegiSunterModel(config.comparisons, m, u, prior_odds / (1 + prior_odds), sources)
    return FrozenModel(
        model, pd.Timestamp(rows["trained_at"].max()), int(rows["trained_on_records"].max())
    )


def config_fingerprint(config: IdentityConfig) -> str:
    """A hash of every setting that changes who is merged (not the full-run schedule): a
    model kept from a run under other settings would not give what a full run gives."""
    settings = dataclasses.asdict(config)
    settings.pop("full_identity_every_days", None)
    settings.pop("full_identity_growth", None)
    return hashlib.sha256(repr(sorted(settings.items())).encode()).hexdigest()[:16]


def term_frequencies_sql(config: IdentityConfig) -> str | None:
    """SELECT of every term-frequency table in long form, to keep with the model."""
    parts = [
        f"select '{spec.name}' as comparison, value::varchar as value, tf::double as tf "
        f"from {term_frequency_table(spec)}"
        for spec in config.comparisons
        if spec.term_frequency
    ]
    if not parts:
        return "select null::varchar as comparison, null::varchar as value, null::double as tf where false"
    return " union all ".join(parts)


def restore_term_frequency_tables(con: duckdb.DuckDBPyConnection, config: IdentityConfig) -> None:
    """The frozen model's term frequencies as the temp tables `compare_pairs` joins (a value
    first seen since gets no frequency: the level's plain u applies)."""
    for spec in config.comparisons:
        if spec.term_frequency:
            con.execute(
                f"create or replace temp table {term_frequency_table(spec)} as "
                f"select value, tf from {SCHEMA}.term_frequencies where comparison = ?",
                [spec.name],
            )


def config_columns(config: IdentityConfig) -> set[str]:
    """Every record column the config's rules, blocking rules and comparisons name."""
    columns = {rule.column for rule in config.deterministic_rules}
    columns |= {c for rule in config.blocking_rules for c in rule}
    for spec in config.comparisons:
        columns.add(spec.column)
        if spec.swap_column:
            columns.add(spec.swap_column)
    return columns


def create_fingerprints(
    con: duckdb.DuckDBPyConnection, match_table: str, config: IdentityConfig | None = None
) -> None:
    """`_identity_fingerprints(rid, match_fingerprint)`: a hash of everything matching reads
    from a record (its matching copy, shared values qualified), to tell a changed record
    (not its source fingerprint, which also moves with survivorship-only columns).
    A column the config matches on is hashed even when it is normally display-only."""
    matched = config_columns(config) if config is not None else set()
    columns = [
        row[0]
        for row in con.sql(f"describe {match_table}").fetchall()
        if row[0] not in ("rid", "shared_values", "source_fingerprint")
        and (row[0] not in SURVIVORSHIP_ONLY_COLUMNS or row[0] in matched)
    ]
    hashed = ", ".join(f"coalesce(cast({c} as varchar), '\u2205')" for c in columns)
    con.execute(
        f"create or replace temp table {FINGERPRINT_TABLE} as "
        f"select rid, md5(concat_ws('\u241f', {hashed})) as match_fingerprint from {match_table}"
    )


def affected_records(
    con: duckdb.DuckDBPyConnection,
    records: pd.DataFrame,
    match_table: str,
    previous_customer: np.ndarray,
    previous_refused: pd.DataFrame,
    model: FellegiSunterModel,
    config: IdentityConfig,
    extra_seeds: np.ndarray | None = None,
) -> np.ndarray:
    """Mask of the records an incremental run re-clusters (see the module docstring).
    `previous_customer`: last run's customer id per rid (None for a new record).
    `extra_seeds`: rids that must be re-clustered whatever changed (e.g. the records a
    steward's new link / unlink / block-value override names)."""
    n = len(records)
    seeds = _seed_rids(con, records, previous_customer)
    if extra_seeds is not None and len(extra_seeds):
        seeds = np.unique(np.concatenate([seeds, np.asarray(extra_seeds, dtype=np.int64)]))
    prev = pd.Series(previous_customer, dtype=object)
    partners: dict[str, set[str]] = {}
    for a, b in zip(
        previous_refused.get("customer_a", []), previous_refused.get("customer_b", []), strict=True
    ):
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    rule_columns = sorted({rule.column for rule in config.deterministic_rules})

    in_set = np.zeros(n, dtype=bool)
    customers_done: set[str] = set()
    frontier = seeds
    create_block_tables(con, match_table, config.blocking_rules)
    try:
        _close_over_match_graph(
            con,
            match_table,
            frontier,
            in_set,
            customers_done,
            partners,
            prev,
            previous_customer,
            rule_columns,
            model,
            config,
        )
    finally:
        drop_block_tables(con, config.blocking_rules)
    return in_set


def _close_over_match_graph(
    con: duckdb.DuckDBPyConnection,
    match_table: str,
    frontier: np.ndarray,
    in_set: np.ndarray,
    customers_done: set[str],
    partners: dict[str, set[str]],
    prev: pd.Series,
    previous_customer: np.ndarray,
    rule_columns: list[str],
    model: FellegiSunterModel,
    config: IdentityConfig,
) -> None:
    """Grow `in_set` from `frontier` until nothing new is reached (see the module docstring)."""
    while len(frontier):
        in_set[frontier] = True
        reached = np.concatenate(
            [
                frontier,
                _rule_neighbours(con, match_table, frontier, rule_columns),
                _accepted_neighbours(con, match_table, frontier, model, config),
            ]
        )
        customers = {c for c in previous_customer[reached] if c is not None} - customers_done
        grown = set(customers)
        for customer in customers:
            grown |= partners.get(customer, set())
        grown -= customers_done
        customers_done |= grown
        whole = np.flatnonzero(prev.isin(grown).to_numpy()) if grown else reached[:0]
        reached = np.unique(np.concatenate([reached, whole]).astype(np.int64))
        frontier = reached[~in_set[reached]]


def _seed_rids(
    con: duckdb.DuckDBPyConnection, records: pd.DataFrame, previous_customer: np.ndarray
) -> np.ndarray:
    """New records, changed records, and every record of a customer that lost or changed one."""
    # with the records whose matching row changed, those whose source row changed (their
    # source fingerprint: normalised this run, the others' columns are last run's)
    source_changed = (
        "or p.source_fingerprint is distinct from k.source_fingerprint"
        if {"source_fingerprint"} <= _table_columns(con, "identity_records")
        and "source_fingerprint"
        in {c for c, *_ in con.sql("describe _identity_match_records").fetchall()}
        else ""
    )
    con.execute(f"""
        create or replace temp table {NEW_OR_CHANGED_TABLE} as
        select f.rid, p.customer_id,
               p.record_key is null
               or p.match_fingerprint is distinct from f.match_fingerprint as match_changed
        from {FINGERPRINT_TABLE} f
        join (select rid, record_key, {"source_fingerprint" if source_changed else "null as source_fingerprint"}
              from _identity_match_records) k using (rid)
        left join {SCHEMA}.identity_records p on p.record_key = k.record_key
        where p.record_key is null or p.match_fingerprint is distinct from f.match_fingerprint
              {source_changed}
    """)
    changed = to_pandas(
        con.sql(f"select rid, customer_id from {NEW_OR_CHANGED_TABLE} where match_changed")
    )
    if not source_changed:
        # records whose source changed are not known: no table, so nothing relies on it
        con.execute(f"drop table {NEW_OR_CHANGED_TABLE}")
    con.execute(f"""
        create or replace temp table {GONE_TABLE} as
        select p.record_key, p.source_system, p.source_record_id, p.customer_id
        from {SCHEMA}.identity_records p
        anti join _identity_match_records k on k.record_key = p.record_key
    """)
    gone = con.sql(f"select distinct customer_id from {GONE_TABLE}").df()
    touched = set(changed["customer_id"].dropna()) | set(gone["customer_id"].dropna())
    of_touched = np.flatnonzero(pd.Series(previous_customer, dtype=object).isin(touched))
    return np.unique(np.concatenate([changed["rid"].to_numpy(dtype=np.int64), of_touched]))


def _register_frontier(con: duckdb.DuckDBPyConnection, frontier: np.ndarray) -> None:
    con.register(FRONTIER, pd.DataFrame({"rid": frontier.astype(np.int32)}))


def _rule_neighbours(
    con: duckdb.DuckDBPyConnection, match_table: str, frontier: np.ndarray, columns: list[str]
) -> np.ndarray:
    """Records sharing any deterministic-rule value with a frontier record."""
    if not columns:
        return np.zeros(0, dtype=np.int64)
    _register_frontier(con, frontier)
    try:
        parts = [
            f"select r.rid from {match_table} r join (select distinct f.{c} as v "
            f"from {match_table} f semi join {FRONTIER} x on x.rid = f.rid "
            f"where f.{c} is not null) s on r.{c} = s.v"
            for c in columns
        ]
        found = con.sql(" union ".join(parts)).fetchnumpy()["rid"]
    finally:
        con.unregister(FRONTIER)
    return np.asarray(found, dtype=np.int64)


def _accepted_neighbours(
    con: duckdb.DuckDBPyConnection,
    match_table: str,
    frontier: np.ndarray,
    model: FellegiSunterModel,
    config: IdentityConfig,
) -> np.ndarray:
    """Records whose candidate pair with a frontier record the model accepts (the household
    guard aside: a guarded pair still belongs to the same component)."""
    _register_frontier(con, frontier)
    try:
        block_candidate_pairs(
            con,
            match_table,
            config.blocking_rules,
            config.max_block_size,
            TOUCHING_PAIRS,
            touching=FRONTIER,
            blocks_ready=True,
        )
    finally:
        con.unregister(FRONTIER)
    try:
        candidates = compare_pairs(con, match_table, TOUCHING_PAIRS, config.comparisons)
    finally:
        con.execute(f"drop table if exists {TOUCHING_PAIRS}")
    if candidates.empty:
        return np.zeros(0, dtype=np.int64)
    fill_names_from_mailboxes(con, match_table, candidates, config)
    _, accepted, _ = score_candidates(model, candidates, config)
    # previous probabilistic links kept within the margin are whole previous customers,
    # which the caller adds; a pair within the margin but new is not a link.
    chosen = candidates.loc[accepted]
    return np.concatenate(
        [chosen["rid_l"].to_numpy(dtype=np.int64), chosen["rid_r"].to_numpy(dtype=np.int64)]
    )
