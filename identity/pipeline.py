"""resolve_identities: staging models in, identity.* tables out, in one transaction.

This module only runs the stages in order and times them: read + normalise records
(records.py), shared values (shared_values.py), previous state and affected records
(persistence.py, incremental.py), deterministic rules, blocking, comparison, training,
scoring and guarded clustering (linkage.py), stable ids (stable_ids.py), survivorship
(survivorship.py) and provenance (provenance.py), write (persistence.py). The previous
run's tables are read first; this run's changes are written in one transaction (a nightly
run deletes and inserts only the changed rows), so a failure leaves the previous tables as
they were.
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

from identity.config import IdentityConfig
from identity.engine_pipeline import link_on_engine
from identity.incremental import (
    FINGERPRINT_TABLE,
    GONE_TABLE,
    NEW_OR_CHANGED_TABLE,
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
    value_blocks_text,
)
from identity.persistence import (
    PATCH_AT_MOST,
    SCHEMA,
    TABLE_COLUMNS,
    ScopedRows,
    TablePatch,
    read_previous_state,
    write_identity_tables,
)
from identity.provenance import (
    CUSTOMER_CREATED_TABLE,
    EVIDENCE_TABLE,
    RESOLVED_TABLE,
    UNTOUCHED_TABLE,
    create_customer_created_table,
    create_resolved_table,
    customer_map_sql,
    match_evidence_sql,
    record_age,
    refused_merge_rows,
    registry_sql,
    rows_between,
)
from identity.provenance import previous_links as previous_links_of
from identity.records import build_identity_records_table
from identity.shared_values import MATCH_RECORDS_TABLE, detect_shared_values
from identity.stable_ids import assign_customer_ids
from identity.survivorship import (
    ASSIGNED_TABLE,
    CHANGED_CUSTOMERS_TABLE,
    CHANGED_RECORDS_TABLE,
    GOLDEN_TABLE,
    MAYBE_CHANGED_TABLE,
    add_changed_customers_records,
    add_kept_golden_rows,
    create_assigned_table,
    create_golden_table,
    create_maybe_changed_table,
)
from warehouse_engine.frames import to_pandas

__all__ = ["SCHEMA", "TABLE_COLUMNS", "ResolutionSummary", "resolve_identities"]


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
    # CPU seconds (all threads) per stage this module times, and of link_records as a whole:
    # on a busy machine wall seconds say more about the neighbours than about the engine.
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    # records normalised this run (a nightly run only new and changed source rows), golden
    # records built (only changed customers'), rows written per identity table (only
    # changed rows)
    golden_recomputed: int = 0
    records_normalised: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)
    # where blocking, comparison, scoring and components ran: "duckdb" (link_records) or
    # the engine of identity/engine_pipeline.py ("spark"; "duckdb" engine SQL in tests)
    linkage_engine: str = "duckdb"

    def to_metadata(self) -> dict[str, Any]:
        """Plain values (ints, floats, str, markdown) for Dagster asset metadata."""
        rules = "\n".join(f"| {k} | {v:,} |" for k, v in sorted(self.matches_by_rule.items()))
        guards = "\n".join(f"| {k} | {v:,} |" for k, v in sorted(self.refused_by_guard.items()))
        stages = "\n".join(
            f"| {k} | {v:.2f} | "
            + (f"{self.cpu_seconds[k]:.2f}" if k in self.cpu_seconds else "")
            + " |"
            for k, v in self.seconds.items()
        )
        return {
            "identity_mode": self.mode,
            "linkage_engine": self.linkage_engine,
            "records_reclustered": self.records_reclustered,
            "golden_recomputed": self.golden_recomputed,
            "records_normalised": self.records_normalised,
            "rows_written": "\n".join(
                ["| table | rows written |", "|---|---|"]
                + [f"| {k} | {v:,} |" for k, v in self.rows_written.items()]
            )
            if self.rows_written
            else "none",
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
            "seconds_by_stage": f"| stage | seconds | CPU seconds |\n|---|---|---|\n{stages}",
            **{f"steward/{k}": v for k, v in self.steward.items()},
        }


def resolve_identities(
    con: duckdb.DuckDBPyConnection,
    config: IdentityConfig | None = None,
    run_at: datetime | None = None,
    overrides_file: Path | None = None,
    full_identity: bool | None = None,
    reuse_model: bool = False,
    linkage_engine=None,
    engine_scratch_dir: Path | None = None,
) -> ResolutionSummary:
    """Resolve the staging records into golden customers and (re)write the identity.* tables.

    `overrides_file`: the stewards' reviewable CSV (identity/overrides.py), kept in step with
    `identity.overrides`; None = the table only.
    `full_identity`: True re-resolves everything and retrains the model; False or None
    (the nightly default) runs incrementally (identity/incremental.py) when a previous
    state and a model younger than `config.full_identity_every_days` exist, else in full.
    `reuse_model`: a full run that keeps the stored model instead of retraining it (the
    incremental-equals-full proof compares the two with one model).
    `linkage_engine`: a warehouse_engine.sql_engines engine (the run's Spark session with
    `CDP_ENGINE=spark`) that links the records instead of `link_records`
    (identity/engine_pipeline.py): always a full run (model trained, every record
    re-resolved, last run's links not kept), with steward overrides; stable ids, logs,
    survivorship and the tables as below. `engine_scratch_dir`: where the records are
    written as Parquet for an engine other than this connection."""
    config = config or IdentityConfig()
    if linkage_engine is not None:
        if reuse_model:
            raise ValueError("reuse_model is for the DuckDB path; the engine path trains")
        full_identity = True
    run_ts = pd.Timestamp(run_at or datetime.now(UTC))
    if run_ts.tzinfo is not None:
        run_ts = run_ts.tz_convert("UTC").tz_localize(None)
    seconds: dict[str, float] = {}
    cpu_seconds: dict[str, float] = {}
    clock, cpu = time.perf_counter(), time.process_time()

    def stage_done(name: str) -> None:
        nonlocal clock, cpu
        seconds[name] = round(time.perf_counter() - clock, 3)
        cpu_seconds[name] = round(time.process_time() - cpu, 3)
        clock, cpu = time.perf_counter(), time.process_time()

    steward_rows = synchronise(con, overrides_file) if overrides_file else read_table(con)
    # a nightly run normalises only new and changed source rows; a full one all of them
    records_normalised = build_identity_records_table(
        con,
        config,
        reuse_previous=full_identity is not True,
        steward_blocks=value_blocks_text(steward_rows),
    )
    steward_blocked = apply_value_blocks(con, RECORDS_TABLE, steward_rows)
    stage_done("read_and_normalise")
    # a nightly run re-examines only the values the day's records touch
    shared = detect_shared_values(
        con, RECORDS_TABLE, config, changed_only=full_identity is not True
    )
    # Only the columns Python needs (keys, guard attributes, audit flags): the rest of the
    # record stays in DuckDB.
    records = to_pandas(
        con.sql(
            "select record_key, source_system, source_record_id, user_id, email_key, phone_e164, "
            f"blocked_values, shared_values from {MATCH_RECORDS_TABLE} order by rid"
        )
    )
    stage_done("shared_values")

    previous = read_previous_state(con, MATCH_RECORDS_TABLE)
    steward = overrides_for_records(steward_rows, records["record_key"])
    keys = records["record_key"]
    previous_ids = previous.customer_of_record
    create_fingerprints(con, MATCH_RECORDS_TABLE, config)
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
    # the engine path re-decides every link (no hysteresis on it yet)
    previous_links = (
        None if linkage_engine is not None else previous_links_of(con, MATCH_RECORDS_TABLE)
    )
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
    stage_done("previous_state_and_affected")
    if linkage_engine is not None:
        linkage = link_on_engine(
            linkage_engine,
            con,
            records,
            config,
            MATCH_RECORDS_TABLE,
            overrides=steward,
            scratch_dir=engine_scratch_dir,
        )
    else:
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
    cpu_seconds["linkage"] = round(time.process_time() - cpu, 3)
    seconds.update(linkage.seconds)
    clock, cpu = time.perf_counter(), time.process_time()
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
        within=within,
    )
    if len(steward.cannot_links):
        assignment = settle_unlink_splits(
            assignment, keys, previous_ids, steward, record_age(previous.first_assigned_at, run_ts)
        )
    customer_ids = assignment.customer_of_record.to_numpy()
    stage_done("stable_ids")

    first_assigned = pd.Series(previous.first_assigned_at).fillna(run_ts).to_numpy()
    create_resolved_table(
        con,
        customer_ids,
        first_assigned,
        linkage.clustering.cluster_of,
        linkage.clustering.tree_edges,
    )
    create_customer_created_table(con, assignment.customer_created_at)
    scoped = within is not None and create_maybe_changed_table(
        con, np.flatnonzero(within | (previous_ids.to_numpy() != customer_ids))
    )
    # a nightly run holds (and compares) only the records that may have changed
    all_assigned = create_assigned_table(con, scoped=scoped)
    golden_recomputed = create_golden_table(
        con, run_ts, only_changed=within is not None, scoped=scoped
    )
    customer_map: str | ScopedRows = customer_map_sql(con, MATCH_RECORDS_TABLE, run_ts)
    registry: str | ScopedRows = registry_sql(con, MATCH_RECORDS_TABLE, run_ts)
    if scoped and golden_recomputed is not None:
        # only the rows of records that may have changed are compared and rewritten
        add_changed_customers_records(con)
        customer_map = ScopedRows(
            full=customer_map,
            rows=customer_map_sql(con, MATCH_RECORDS_TABLE, run_ts, only=MAYBE_CHANGED_TABLE),
            scope=MAYBE_CHANGED_TABLE,
        )
        registry = ScopedRows(
            full=registry,
            rows=registry_sql(con, MATCH_RECORDS_TABLE, run_ts, only=MAYBE_CHANGED_TABLE),
            scope=MAYBE_CHANGED_TABLE,
        )
    merges = assignment.merges.assign(merged_at=run_ts)
    splits = assignment.splits.assign(split_at=run_ts)
    refused = refused_merge_rows(
        records, customer_ids, linkage.clustering.refused, previous.refused, run_ts
    )
    if within is not None:
        # customers left alone keep the refusals and evidence recorded when last resolved
        refused = pd.concat(
            [refused, rows_between(previous.refused, keys, ~within)], ignore_index=True
        )
    match_evidence = match_evidence_sql(
        con, MATCH_RECORDS_TABLE, linkage.evidence, linkage.prior_weight, within
    )
    identity_records: str | TablePatch = (
        f"select * exclude (rid) from ({all_assigned}) order by rid"
    )
    golden: str | TablePatch = f"select * from {GOLDEN_TABLE} order by customer_id"
    changed_records = (
        con.sql(f"select count(*) from {CHANGED_RECORDS_TABLE}").fetchall()[0][0]
        if golden_recomputed is not None
        else None
    )
    if changed_records is not None and changed_records <= len(records) * PATCH_AT_MOST:
        # a nightly run knows which records and customers changed: only their rows are
        # deleted and written again (unless most changed, e.g. the first night after an
        # upgrade re-stamped every record: then replacing the tables is cheaper)
        identity_records = TablePatch(
            full=identity_records,
            delete_where=f"p.record_key in (select record_key from {CHANGED_RECORDS_TABLE})",
            rows=f"select a.* exclude (rid) from {ASSIGNED_TABLE} a "
            f"semi join {CHANGED_RECORDS_TABLE} c using (record_key) order by a.rid",
        )
        # `_identity_golden` holds only the changed customers' rows; a customer that is
        # gone held a record that left or vanished, so it is among them (the second
        # condition guards against a previous table that held rows of no record)
        golden = TablePatch(
            full=golden,
            delete_where=f"p.customer_id in (select customer_id from {CHANGED_CUSTOMERS_TABLE}) "
            f"or p.customer_id not in (select customer_id from {RESOLVED_TABLE})",
            rows=f"select g.* from {GOLDEN_TABLE} g order by g.customer_id",
        )
    elif golden_recomputed is not None:
        # most records changed: the whole table is written, last run's rows of unchanged
        # customers included
        add_kept_golden_rows(con)
    stage_done("survivorship")

    rows_written = write_identity_tables(
        con,
        {
            "identity_records": identity_records,
            "customer_map": customer_map,
            "golden_customers": golden,
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
    for table in (
        ASSIGNED_TABLE,
        GOLDEN_TABLE,
        CHANGED_RECORDS_TABLE,
        CHANGED_CUSTOMERS_TABLE,
        RECORDS_TABLE,
        MATCH_RECORDS_TABLE,
        FINGERPRINT_TABLE,
        RESOLVED_TABLE,
        CUSTOMER_CREATED_TABLE,
        EVIDENCE_TABLE,
        UNTOUCHED_TABLE,
        MAYBE_CHANGED_TABLE,
        NEW_OR_CHANGED_TABLE,
        GONE_TABLE,
    ):
        con.execute(f"drop table if exists {table}")
    stage_done("write")

    changed = int(
        np.sum((previous_ids.notna().to_numpy()) & (previous_ids.to_numpy() != customer_ids))
    )
    singletons = con.sql(
        f"select count(*) from {SCHEMA}.customer_map where match_rule = 'singleton'"
    ).fetchall()[0][0]
    matches = Counter(linkage.clustering.tree_edges["rule"])
    return ResolutionSummary(
        records_in=len(records),
        customers_out=len(set(customer_ids)),
        new_customers=len(assignment.new_customer_ids),
        merged_customers=len(merges),
        split_customers=int(splits["original_customer_id"].nunique()) if len(splits) else 0,
        matches_by_rule={
            **{k: int(v) for k, v in matches.items()},
            "singleton": singletons,
        },
        refused_by_guard={k: int(v) for k, v in refused["guard"].value_counts().items()},
        candidate_pairs=linkage.blocking.candidate_pairs,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
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
        golden_recomputed=len(set(customer_ids))
        if golden_recomputed is None
        else golden_recomputed,
        rows_written=rows_written,
        records_normalised=records_normalised,
        linkage_engine=linkage_engine.name if linkage_engine is not None else "duckdb",
    )
