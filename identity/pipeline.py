"""resolve_identities: staging models in, identity.* tables out, in one transaction.

Stages: read + normalise records, deterministic rules, blocking, comparison, training,
scoring, guarded clustering, stable ids, survivorship, write. The previous run's tables
(id registry, golden customers, merge log) are read first; the new ones replace them
atomically, so a failure leaves the previous tables as they were.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from identity.config import IdentityConfig
from identity.linkage import RECORDS_TABLE, link_records
from identity.records import build_identity_records_table
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

    def to_metadata(self) -> dict[str, Any]:
        """Plain values (ints, floats, str, markdown) for Dagster asset metadata."""
        rules = "\n".join(f"| {k} | {v:,} |" for k, v in sorted(self.matches_by_rule.items()))
        guards = "\n".join(f"| {k} | {v:,} |" for k, v in sorted(self.refused_by_guard.items()))
        stages = "\n".join(f"| {k} | {v:.2f} |" for k, v in self.seconds.items())
        return {
            "records_in": self.records_in,
            "customers_out": self.customers_out,
            "new_customers": self.new_customers,
            "merged_customers": self.merged_customers,
            "records_changing_customer": self.records_changing_customer,
            "candidate_pairs": self.candidate_pairs,
            "blocked_value_records": self.blocked_value_records,
            "seconds_total": round(sum(self.seconds.values()), 2),
            "matches_by_rule": f"| rule | links |\n|---|---|\n{rules}",
            "refused_by_guard": f"| guard | refused merges |\n|---|---|\n{guards}"
            if guards
            else "none",
            "seconds_by_stage": f"| stage | seconds |\n|---|---|\n{stages}",
        }


def resolve_identities(
    con: duckdb.DuckDBPyConnection,
    config: IdentityConfig | None = None,
    run_at: datetime | None = None,
) -> ResolutionSummary:
    """Resolve the staging records into golden customers and (re)write the identity.* tables."""
    config = config or IdentityConfig()
    run_ts = pd.Timestamp(run_at or datetime.now(UTC))
    if run_ts.tzinfo is not None:
        run_ts = run_ts.tz_convert("UTC").tz_localize(None)
    clock = time.perf_counter()
    seconds: dict[str, float] = {}

    build_identity_records_table(con, config)
    records = con.sql(f"select * exclude (rid) from {RECORDS_TABLE} order by rid").df()
    seconds["read_and_normalise"] = round(time.perf_counter() - clock, 3)

    linkage = link_records(con, records, config, records_table_loaded=True)
    seconds.update(linkage.seconds)
    clock = time.perf_counter()

    previous = _read_previous_state(con)
    keys = records["record_key"]
    previous_ids = keys.map(previous.registry_customer).astype(object)
    previous_ids = previous_ids.where(previous_ids.notna(), None)
    assignment = assign_customer_ids(
        keys,
        linkage.clustering.cluster_of,
        previous_ids,
        previous.customer_created_at,
        previous.known_ids,
        linkage.clustering.tree_edges,
        run_ts,
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
        f"create or replace temp table _identity_assigned as select r.*, c.customer_id "
        f"from {RECORDS_TABLE} r join _identity_customer_ids c using (rid)"
    )
    con.unregister("_identity_customer_ids")
    golden = con.sql(golden_customers_sql("_identity_assigned")).df()
    golden["created_at"] = golden["customer_id"].map(assignment.customer_created_at).fillna(run_ts)
    golden = _keep_previous_updated_at(golden, previous.golden, "customer_id", run_ts)
    merges = assignment.merges.assign(merged_at=run_ts)
    refused = _refused_merges(
        records, customer_ids, linkage.clustering.refused, previous.refused, run_ts
    )
    identity_records = records.assign(customer_id=customer_ids)
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
    seconds["survivorship"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()

    write_identity_tables(
        con,
        {
            "identity_records": identity_records,
            "customer_map": customer_map,
            "golden_customers": golden,
            "id_registry": registry,
            "refused_merges": refused,
            "match_evidence": match_evidence,
        },
        new_merges=merges,
    )
    con.execute("drop table if exists _identity_assigned")
    con.execute(f"drop table if exists {RECORDS_TABLE}")
    seconds["write"] = round(time.perf_counter() - clock, 3)

    changed = int(
        np.sum((previous_ids.notna().to_numpy()) & (previous_ids.to_numpy() != customer_ids))
    )
    matches = Counter(linkage.clustering.tree_edges["rule"])
    return ResolutionSummary(
        records_in=len(records),
        customers_out=int(golden.shape[0]),
        new_customers=len(assignment.new_customer_ids),
        merged_customers=len(merges),
        matches_by_rule={
            **{k: int(v) for k, v in matches.items()},
            "singleton": int((customer_map["match_rule"] == "singleton").sum()),
        },
        refused_by_guard={k: int(v) for k, v in refused["guard"].value_counts().items()},
        candidate_pairs=linkage.blocking.candidate_pairs,
        seconds=seconds,
        records_changing_customer=changed,
        blocked_value_records=int(records["blocked_values"].notna().sum()),
    )


@dataclass
class _PreviousState:
    registry: pd.DataFrame
    registry_customer: dict[str, str]
    customer_created_at: dict[str, pd.Timestamp]
    known_ids: set[str]
    customer_map: pd.DataFrame
    golden: pd.DataFrame
    refused: pd.DataFrame


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
    golden = _read_previous(con, "golden_customers")
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
    n = len(records)
    keys = records["record_key"].to_numpy()
    first_assigned = records["record_key"].map(
        dict(
            zip(
                previous.registry["record_key"], previous.registry["first_assigned_at"], strict=True
            )
        )
    )
    first_assigned = first_assigned.astype("datetime64[us]").fillna(run_ts)
    adjacency: dict[int, list[tuple[int, str, float]]] = defaultdict(list)
    for a, b, rule, weight in clustering.tree_edges[
        ["rid_l", "rid_r", "rule", "weight"]
    ].itertuples(index=False):
        adjacency[a].append((b, rule, weight))
        adjacency[b].append((a, rule, weight))

    match_rule = np.full(n, "singleton", dtype=object)
    match_weight = np.full(n, np.nan)
    matched = np.full(n, None, dtype=object)
    order = np.lexsort((keys, first_assigned.to_numpy()))
    visited = np.zeros(n, dtype=bool)
    for anchor in order:
        if visited[anchor] or anchor not in adjacency:
            visited[anchor] = True
            continue
        visited[anchor] = True
        queue = deque([anchor])
        first_edge = True
        while queue:
            node = queue.popleft()
            for neighbour, rule, weight in adjacency[node]:
                if visited[neighbour]:
                    continue
                visited[neighbour] = True
                match_rule[neighbour], match_weight[neighbour], matched[neighbour] = (
                    rule,
                    weight,
                    keys[node],
                )
                if first_edge:
                    match_rule[anchor], match_weight[anchor] = rule, weight
                    first_edge = False
                queue.append(neighbour)

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
    previous_updated = dict(
        zip(
            zip(*(previous[k] for k in key), previous_fingerprint, strict=True),
            previous["updated_at"],
            strict=True,
        )
    )
    lookup = pd.Series(list(zip(*(frame[k] for k in key), fingerprint, strict=True))).map(
        previous_updated
    )
    frame["updated_at"] = lookup.where(lookup.notna(), run_ts).to_numpy()
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


def write_identity_tables(
    con: duckdb.DuckDBPyConnection, tables: dict[str, pd.DataFrame], new_merges: pd.DataFrame
) -> None:
    """Replace the identity tables and append to the merge log in one transaction."""
    con.execute("begin transaction")
    try:
        con.execute(f"create schema if not exists {SCHEMA}")
        for name, frame in tables.items():
            view = f"_identity_write_{name}"
            con.register(view, frame)
            typed = TABLE_COLUMNS.get(name)
            if typed:
                extras = [c for c in frame.columns if c not in typed]
                select = ", ".join([f"cast({c} as {t}) as {c}" for c, t in typed.items()] + extras)
            else:
                select = "*"
            con.execute(f"create or replace table {SCHEMA}.{name} as select {select} from {view}")
            con.unregister(view)
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
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
