"""resolve_identities: staging models in, identity.* tables out, in one transaction.

Stages: read + normalise records, deterministic rules, blocking, comparison, training,
scoring, guarded clustering, stable ids, survivorship, write. The previous run's tables
(id registry, golden customers, merge log) are read first; the new ones replace them
atomically, so a failure leaves the previous tables as they were.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order

from identity.config import IdentityConfig
from identity.incremental import (
    FINGERPRINT_TABLE,
    affected_records,
    config_fingerprint,
    create_fingerprints,
    load_frozen_model,
    restore_term_frequency_tables,
    term_frequencies_sql,
)
from identity.linkage import RECORDS_TABLE, link_records
from identity.overrides import (
    apply_value_blocks,
    overrides_for_records,
    read_table,
    settle_unlink_splits,
    steward_seed_rids,
    synchronise,
)
from identity.records import build_identity_records_table
from identity.shared_values import MATCH_RECORDS_TABLE, SHARED_COLUMNS, detect_shared_values
from identity.stable_ids import assign_customer_ids
from identity.survivorship import golden_customers_sql

SCHEMA = "identity"

TABLE_COLUMNS: dict[str, dict[str, str]] = {
    "customer_map": {
        "source_system": "VARCHAR",
        "source_record_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "match_rule": "VARCHAR",
        "match_weight": "DOUBLE",
        "matched_record": "VARCHAR",
        "first_assigned_at": "TIMESTAMP",
        "updated_at": "TIMESTAMP",
    },
    "golden_customers": {
        "customer_id": "VARCHAR",
        "first_name": "VARCHAR",
        "last_name": "VARCHAR",
        "full_name": "VARCHAR",
        "name_source_record": "VARCHAR",
        "email": "VARCHAR",
        "email_source_record": "VARCHAR",
        "phone": "VARCHAR",
        "phone_source_record": "VARCHAR",
        "address_line1": "VARCHAR",
        "address_city": "VARCHAR",
        "address_postal_code": "VARCHAR",
        "address_country": "VARCHAR",
        "address_source_record": "VARCHAR",
        "billing_user_id": "VARCHAR",
        "n_source_records": "BIGINT",
        "n_emails": "BIGINT",
        "n_phones": "BIGINT",
        "first_seen_at": "TIMESTAMP",
        "last_seen_at": "TIMESTAMP",
        "created_at": "TIMESTAMP",
        "updated_at": "TIMESTAMP",
    },
    "id_registry": {
        "record_key": "VARCHAR",
        "source_system": "VARCHAR",
        "source_record_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "first_assigned_at": "TIMESTAMP",
        "updated_at": "TIMESTAMP",
        "customer_created_at": "TIMESTAMP",
    },
    "merge_log": {
        "merged_at": "TIMESTAMP",
        "surviving_customer_id": "VARCHAR",
        "retired_customer_id": "VARCHAR",
        "record_a": "VARCHAR",
        "record_b": "VARCHAR",
        "match_rule": "VARCHAR",
        "match_weight": "DOUBLE",
    },
    "split_log": {
        "split_at": "TIMESTAMP",
        "original_customer_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "n_records_moved": "BIGINT",
        "example_record": "VARCHAR",
    },
    "shared_values": {**SHARED_COLUMNS, "resolved_at": "TIMESTAMP"},
    "refused_merges": {
        "refused_at": "TIMESTAMP",
        "customer_a": "VARCHAR",
        "customer_b": "VARCHAR",
        "record_a": "VARCHAR",
        "record_b": "VARCHAR",
        "guard": "VARCHAR",
        "detail": "VARCHAR",
        "match_rule": "VARCHAR",
        "match_weight": "DOUBLE",
    },
}


@dataclass
class ResolutionSummary:
    records_in: int
    customers_out: int
    new_customers: int
    merged_customers: int
    matches_by_rule: dict[str, int]
    refused_by_guard: dict[str, int]
    candidate_pairs: int
    seconds: dict[str, float] = field(default_factory=dict)
    records_changing_customer: int = 0
    blocked_value_records: int = 0
    split_customers: int = 0
    shared_values: dict[str, int] = field(default_factory=dict)
    shared_value_records: int = 0
    steward: dict[str, int] = field(default_factory=dict)
    mode: str = "full"  # "full" (model trained, everything re-resolved) or "incremental"
    records_reclustered: int = 0
    model_trained_at: str = ""

    def to_metadata(self) -> dict[str, Any]:
        """Plain values (ints, floats, str, markdown) for Dagster asset metadata."""
        rules = "\n".join(f"| {k} | {v:,} |" for k, v in sorted(self.matches_by_rule.items()))
        guards = "\n".join(f"| {k} | {v:,} |" for k, v in sorted(self.refused_by_guard.items()))
        stages = "\n".join(f"| {k} | {v:.2f} |" for k, v in self.seconds.items())
        return {
            "identity_mode": self.mode,
            "records_reclustered": self.records_reclustered,
            "model_trained_at": self.model_trained_at,
            "records_in": self.records_in,
            "customers_out": self.customers_out,
            "new_customers": self.new_customers,
            "merged_customers": self.merged_customers,
            "split_customers": self.split_customers,
            "records_changing_customer": self.records_changing_customer,
            "candidate_pairs": self.candidate_pairs,
            "blocked_value_records": self.blocked_value_records,
            "shared_value_records": self.shared_value_records,
            "shared_values": "\n".join(
                ["| identifier | shared values |", "|---|---|"]
                + [f"| {k} | {v:,} |" for k, v in sorted(self.shared_values.items())]
            )
            if self.shared_values
            else "none",
            "seconds_total": round(sum(self.seconds.values()), 2),
            "matches_by_rule": f"| rule | links |\n|---|---|\n{rules}",
            "refused_by_guard": f"| guard | refused merges |\n|---|---|\n{guards}"
            if guards
            else "none",
            "seconds_by_stage": f"| stage | seconds |\n|---|---|\n{stages}",
            **{f"steward/{k}": v for k, v in self.steward.items()},
        }


def resolve_identities(
    con: duckdb.DuckDBPyConnection,
    config: IdentityConfig | None = None,
    run_at: datetime | None = None,
    overrides_file: Path | None = None,
    full_identity: bool | None = None,
    reuse_model: bool = False,
) -> ResolutionSummary:
    """Resolve the staging records into golden customers and (re)write the identity.* tables.

    `overrides_file`: the stewards' reviewable CSV (identity/overrides.py), kept in step with
    `identity.overrides`; None = the table only.
    `full_identity`: True re-resolves everything and retrains the model; False or None
    (the nightly default) runs incrementally (identity/incremental.py) when a previous
    state and a model younger than `config.full_identity_every_days` exist, else in full.
    `reuse_model`: a full run that keeps the stored model instead of retraining it (the
    incremental-equals-full proof compares the two with one model)."""
    config = config or IdentityConfig()
    run_ts = pd.Timestamp(run_at or datetime.now(UTC))
    if run_ts.tzinfo is not None:
        run_ts = run_ts.tz_convert("UTC").tz_localize(None)
    clock = time.perf_counter()
    seconds: dict[str, float] = {}

    build_identity_records_table(con, config)
    steward_rows = synchronise(con, overrides_file) if overrides_file else read_table(con)
    steward_blocked = apply_value_blocks(con, RECORDS_TABLE, steward_rows)
    seconds["read_and_normalise"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()
    shared = detect_shared_values(con, RECORDS_TABLE, config)
    # Only the columns Python needs (keys, guard attributes, audit flags): the rest of the
    # record stays in DuckDB.
    records = con.sql(
        "select record_key, source_system, source_record_id, user_id, email_key, phone_e164, "
        f"blocked_values, shared_values from {MATCH_RECORDS_TABLE} order by rid"
    ).df()
    seconds["shared_values"] = round(time.perf_counter() - clock, 3)

    previous = _read_previous_state(con)
    steward = overrides_for_records(steward_rows, records["record_key"])
    keys = records["record_key"]
    previous_ids = keys.map(previous.registry_customer).astype(object)
    previous_ids = previous_ids.where(previous_ids.notna(), None)
    create_fingerprints(con, MATCH_RECORDS_TABLE)
    frozen = load_frozen_model(con, config) if (full_identity is not True or reuse_model) else None
    incremental = (
        full_identity is not True
        and frozen is not None
        and "match_fingerprint" in previous.identity_record_columns
        and run_ts - frozen.trained_at < pd.Timedelta(days=config.full_identity_every_days)
        and len(records) <= frozen.trained_on_records * (1 + config.full_identity_growth)
    )
    model = frozen.model if frozen is not None and (incremental or reuse_model) else None
    if model is not None:
        restore_term_frequency_tables(con, config)
    previous_links = _previous_links(records, previous.customer_map)
    within = fixed_edges = None
    if incremental:
        within = affected_records(
            con,
            records,
            MATCH_RECORDS_TABLE,
            previous_ids.to_numpy(),
            previous.refused,
            model,
            config,
            # A steward's link or unlink re-clusters the records it names, whatever changed.
            extra_seeds=steward_seed_rids(steward),
        )
        outside = ~within
        fixed_edges = previous_links[
            outside[previous_links["rid_l"].to_numpy(dtype=np.int64)]
            & outside[previous_links["rid_r"].to_numpy(dtype=np.int64)]
        ]
    seconds["previous_state_and_affected"] = round(time.perf_counter() - clock, 3)
    linkage = link_records(
        con,
        records,
        config,
        records_table_loaded=True,
        previous_links=previous_links,
        records_table=MATCH_RECORDS_TABLE,
        overrides=steward,
        model=model,
        within=within,
        fixed_edges=fixed_edges,
    )
    seconds.update(linkage.seconds)
    clock = time.perf_counter()
    trained_at = frozen.trained_at if model is not None else run_ts
    trained_on_records = frozen.trained_on_records if model is not None else len(records)
    assignment = assign_customer_ids(
        keys,
        linkage.clustering.cluster_of,
        previous_ids,
        previous.customer_created_at,
        previous.known_ids,
        linkage.clustering.tree_edges,
        run_ts,
    )
    if len(steward.cannot_links):
        assignment = settle_unlink_splits(
            assignment, keys, previous_ids, steward, _record_age(keys, previous.registry, run_ts)
        )
    customer_ids = assignment.customer_of_record.to_numpy()
    seconds["stable_ids"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()

    customer_map = _customer_map(records, customer_ids, linkage.clustering, previous, run_ts)
    registry = _registry(records, customer_ids, previous, assignment.customer_created_at, run_ts)
    con.register(
        "_identity_customer_ids",
        pd.DataFrame({"rid": np.arange(len(records)), "customer_id": customer_ids}),
    )
    con.execute(
        f"create or replace temp table _identity_assigned as "
        f"select r.*, m.shared_values, c.customer_id, f.match_fingerprint from {RECORDS_TABLE} r "
        f"join {MATCH_RECORDS_TABLE} m using (rid) join _identity_customer_ids c using (rid) "
        f"join {FINGERPRINT_TABLE} f using (rid)"
    )
    con.unregister("_identity_customer_ids")
    _create_golden_table(con, assignment.customer_created_at, run_ts)
    merges = assignment.merges.assign(merged_at=run_ts)
    splits = assignment.splits.assign(split_at=run_ts)
    refused = _refused_merges(
        records, customer_ids, linkage.clustering.refused, previous.refused, run_ts
    )
    if within is not None:
        # customers left alone keep the refusals and evidence recorded when last resolved
        untouched = set(keys[~within])
        refused = pd.concat(
            [refused, _rows_between(previous.refused, untouched)], ignore_index=True
        )
    keys_array = records["record_key"].to_numpy()
    evidence = linkage.evidence
    match_evidence = pd.DataFrame(
        {
            "record_a": keys_array[evidence["rid_l"].to_numpy()],
            "record_b": keys_array[evidence["rid_r"].to_numpy()],
            "comparison": evidence["comparison"].to_numpy(),
            "level": evidence["level"].to_numpy(),
            "log2_bayes_factor": evidence["weight"].to_numpy(),
            "prior_weight": linkage.prior_weight,
        }
    )
    if within is not None and _table_exists(con, "match_evidence"):
        match_evidence = pd.concat(
            [
                match_evidence,
                _rows_between(con.sql(f"select * from {SCHEMA}.match_evidence").df(), untouched),
            ],
            ignore_index=True,
        )
    seconds["survivorship"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()

    write_identity_tables(
        con,
        {
            "identity_records": "select * exclude (rid) from _identity_assigned order by rid",
            "customer_map": customer_map,
            "golden_customers": f"select * from {GOLDEN_TABLE}",
            "id_registry": registry,
            "refused_merges": refused,
            "match_evidence": match_evidence,
            "shared_values": shared.assign(resolved_at=run_ts),
            "model_parameters": linkage.model.describe().assign(
                position=lambda d: d["comparison"].map(
                    {spec.name: i for i, spec in enumerate(config.comparisons)}
                ),
                prior_weight=linkage.prior_weight,
                match_weight_threshold=float(config.match_weight_threshold),
                resolved_at=run_ts,
                trained_at=trained_at,
                config_fingerprint=config_fingerprint(config),
                trained_on_records=trained_on_records,
            ),
            "term_frequencies": term_frequencies_sql(config),
        },
        new_merges=merges,
        new_splits=splits,
    )
    con.execute("drop table if exists _identity_assigned")
    con.execute(f"drop table if exists {GOLDEN_TABLE}")
    con.execute(f"drop table if exists {RECORDS_TABLE}")
    con.execute(f"drop table if exists {MATCH_RECORDS_TABLE}")
    con.execute(f"drop table if exists {FINGERPRINT_TABLE}")
    seconds["write"] = round(time.perf_counter() - clock, 3)

    changed = int(
        np.sum((previous_ids.notna().to_numpy()) & (previous_ids.to_numpy() != customer_ids))
    )
    matches = Counter(linkage.clustering.tree_edges["rule"])
    return ResolutionSummary(
        records_in=len(records),
        customers_out=len(set(customer_ids)),
        new_customers=len(assignment.new_customer_ids),
        merged_customers=len(merges),
        split_customers=int(splits["original_customer_id"].nunique()) if len(splits) else 0,
        matches_by_rule={
            **{k: int(v) for k, v in matches.items()},
            "singleton": int((customer_map["match_rule"] == "singleton").sum()),
        },
        refused_by_guard={k: int(v) for k, v in refused["guard"].value_counts().items()},
        candidate_pairs=linkage.blocking.candidate_pairs,
        seconds=seconds,
        records_changing_customer=changed,
        blocked_value_records=int(records["blocked_values"].notna().sum()),
        shared_values={k: int(v) for k, v in shared["identifier"].value_counts().items()},
        shared_value_records=int(records["shared_values"].notna().sum()),
        steward={
            "links": len(steward.must_links),
            "unlinks": len(steward.cannot_links),
            "blocked_values": len(steward.blocked),
            "blocked_value_records": steward_blocked,
            "overrides_naming_absent_records": steward.missing_records,
        },
        mode="incremental" if incremental else "full",
        records_reclustered=int(within.sum()) if within is not None else len(records),
        model_trained_at=str(trained_at),
    )


def _record_age(keys: pd.Series, registry: pd.DataFrame, run_ts: pd.Timestamp) -> np.ndarray:
    """Rank of each record by age: first assigned to a customer, then record key."""
    first = keys.map(dict(zip(registry["record_key"], registry["first_assigned_at"], strict=True)))
    first = pd.to_datetime(first).fillna(run_ts).to_numpy()
    order = np.lexsort((keys.to_numpy(), first))
    age = np.empty(len(keys), dtype=np.int64)
    age[order] = np.arange(len(keys))
    return age


def _rows_between(frame: pd.DataFrame, keys: set[str]) -> pd.DataFrame:
    """Rows of a previous table whose record_a and record_b are both among `keys`."""
    if frame.empty or not {"record_a", "record_b"} <= set(frame.columns):
        return frame.iloc[0:0]
    return frame[frame["record_a"].isin(keys) & frame["record_b"].isin(keys)]


@dataclass
class _PreviousState:
    registry: pd.DataFrame
    registry_customer: dict[str, str]
    customer_created_at: dict[str, pd.Timestamp]
    known_ids: set[str]
    customer_map: pd.DataFrame
    golden: pd.DataFrame
    refused: pd.DataFrame
    identity_record_columns: set[str]


def _table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [SCHEMA, table],
        ).fetchall()[0][0]
    )


def _read_previous(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    if _table_exists(con, table):
        return con.sql(f"select * from {SCHEMA}.{table}").df()
    return pd.DataFrame({c: pd.Series(dtype=object) for c in TABLE_COLUMNS[table]})


def _read_previous_state(con: duckdb.DuckDBPyConnection) -> _PreviousState:
    registry = _read_previous(con, "id_registry")
    golden = (
        con.sql(f"select customer_id, created_at from {SCHEMA}.golden_customers").df()
        if _table_exists(con, "golden_customers")
        else pd.DataFrame({"customer_id": [], "created_at": []})
    )
    merge_log = _read_previous(con, "merge_log")
    created: dict[str, pd.Timestamp] = {}
    if len(registry):
        created.update(
            registry.groupby("customer_id")["customer_created_at"].min().dropna().to_dict()
        )
    if len(golden):
        created.update(golden.set_index("customer_id")["created_at"].dropna().to_dict())
    known = set(registry["customer_id"].dropna()) | set(merge_log["retired_customer_id"].dropna())
    return _PreviousState(
        registry=registry,
        registry_customer=dict(zip(registry["record_key"], registry["customer_id"], strict=True)),
        customer_created_at=created,
        known_ids=known,
        customer_map=_read_previous(con, "customer_map"),
        golden=golden,
        refused=_read_previous(con, "refused_merges"),
        identity_record_columns=(
            {c for c, *_ in con.sql(f"describe {SCHEMA}.identity_records").fetchall()}
            if _table_exists(con, "identity_records")
            else set()
        ),
    )


def _customer_map(
    records: pd.DataFrame,
    customer_ids: np.ndarray,
    clustering,
    previous: _PreviousState,
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
    match_rule, match_weight, matched = _walk_spanning_trees(
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
    return _keep_previous_updated_at(
        frame, previous.customer_map, ["source_system", "source_record_id"], run_ts
    )


def _walk_spanning_trees(
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


def _keep_previous_updated_at(
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


def _registry(
    records: pd.DataFrame,
    customer_ids: np.ndarray,
    previous: _PreviousState,
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


def _refused_merges(
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


GOLDEN_TABLE = "_identity_golden"


def _create_golden_table(
    con: duckdb.DuckDBPyConnection,
    customer_created_at: dict[str, pd.Timestamp],
    run_ts: pd.Timestamp,
) -> None:
    """`_identity_golden`: survivorship in SQL over `_identity_assigned`, plus created_at
    (when the id was first minted) and updated_at (kept from last run when no value of the
    golden record changed, else the run time)."""
    con.register(
        "_identity_created_frame",
        pd.DataFrame(
            {
                "customer_id": list(customer_created_at),
                "created_at": pd.to_datetime(list(customer_created_at.values())),
            }
        ),
    )
    value_columns = [
        c for c in TABLE_COLUMNS["golden_customers"] if c not in ("created_at", "updated_at")
    ]
    run_literal = f"timestamp '{run_ts.isoformat(sep=' ')}'"
    if _table_exists(con, "golden_customers"):
        unchanged = " and ".join(f"g.{c} is not distinct from p.{c}" for c in value_columns)
        updated = f"case when p.customer_id is not null and {unchanged} then p.updated_at else {run_literal} end"
        previous_join = f"left join {SCHEMA}.golden_customers p on p.customer_id = g.customer_id"
    else:
        updated, previous_join = run_literal, ""
    try:
        con.execute(f"""
            create or replace temp table {GOLDEN_TABLE} as
            select g.*, coalesce(c.created_at::timestamp, {run_literal}) as created_at,
                   {updated} as updated_at
            from ({golden_customers_sql("_identity_assigned")}) g
            left join _identity_created_frame c on c.customer_id = g.customer_id
            {previous_join}
            order by g.customer_id
        """)
    finally:
        con.unregister("_identity_created_frame")


def _previous_links(records: pd.DataFrame, previous_map: pd.DataFrame) -> pd.DataFrame:
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


def write_identity_tables(
    con: duckdb.DuckDBPyConnection,
    tables: dict[str, pd.DataFrame | str],
    new_merges: pd.DataFrame,
    new_splits: pd.DataFrame | None = None,
) -> None:
    """Replace the identity tables and append to the merge and split logs in one transaction.
    A table's source is a DataFrame or a SELECT over temp tables (kept in DuckDB)."""
    con.execute("begin transaction")
    try:
        con.execute(f"create schema if not exists {SCHEMA}")
        for name, source in tables.items():
            if isinstance(source, str):
                relation = f"({source})"
                columns = [c for c, *_ in con.sql(f"describe {source}").fetchall()]
            else:
                relation = f"_identity_write_{name}"
                con.register(relation, source)
                columns = list(source.columns)
            typed = TABLE_COLUMNS.get(name)
            if typed:
                extras = [c for c in columns if c not in typed]
                select = ", ".join([f"cast({c} as {t}) as {c}" for c, t in typed.items()] + extras)
            else:
                select = "*"
            con.execute(
                f"create or replace table {SCHEMA}.{name} as select {select} from {relation}"
            )
            if not isinstance(source, str):
                con.unregister(relation)
        merge_columns = TABLE_COLUMNS["merge_log"]
        con.execute(
            f"create table if not exists {SCHEMA}.merge_log ("
            + ", ".join(f"{c} {t}" for c, t in merge_columns.items())
            + ")"
        )
        if len(new_merges):
            con.register("_identity_write_merges", new_merges[list(merge_columns)])
            con.execute(f"insert into {SCHEMA}.merge_log select * from _identity_write_merges")
            con.unregister("_identity_write_merges")
        split_columns = TABLE_COLUMNS["split_log"]
        con.execute(
            f"create table if not exists {SCHEMA}.split_log ("
            + ", ".join(f"{c} {t}" for c, t in split_columns.items())
            + ")"
        )
        if new_splits is not None and len(new_splits):
            con.register("_identity_write_splits", new_splits[list(split_columns)])
            con.execute(
                f"insert into {SCHEMA}.split_log select "
                + ", ".join(f"cast({c} as {t})" for c, t in split_columns.items())
                + " from _identity_write_splits"
            )
            con.unregister("_identity_write_splits")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
