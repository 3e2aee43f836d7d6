"""Erasure requests, carried out once the marts are built and before they are published.

The work is `privacy/`'s; this asset only says when: after every table of the run exists
(so the person is removed from all of them, marts included), before the BI files are
written (so they never contain the person), in the run's private copy (so a failure
leaves the request pending for the next run).
"""

import os
import shutil
from pathlib import Path

import dagster as dg

from ingestion.spark_days import raw_relation_locations, rewrite_days_from_step_store
from ingestion.suppression import PrivacyKeyError, privacy_salt
from orchestration.assets.dbt import mart_keys
from orchestration.resources import WarehouseResource
from orchestration.settings import DBT_PROJECT_DIR
from privacy.erasure import erase_pending_requests, pending_requests, purge_processed_requests
from privacy.storage import (
    rewrite_database,
    scrub_dagster_home,
    scrub_quality_docs,
    scrub_text_files,
)
from warehouse_engine.spark_tables import (
    hand_off_schemas,
    spark_built_relations,
    write_back_spark_tables,
)

ERASURE_ASSET = dg.AssetKey(["privacy", "erasure"])
# The schemas dbt builds tables in on Spark (seeds hold no personal data).
SPARK_BUILT_SCHEMAS = ("staging", "intermediate", "marts")


def _erase_on_spark(con, warehouse: WarehouseResource, log) -> int:
    """The erasure ran in the local step store; Spark still holds the person in the raw
    days it loaded, the tables handed to it and every table dbt built there. All are
    rewritten from the erased copies (each raw day by one rename, the hand-off whole,
    each built table's data files replaced)."""
    settings = warehouse.engine
    raw_days = 0
    if raw_relation_locations(settings.raw_root):
        # raw.* is what Spark loaded (ingestion/spark_days.py): its day folders are
        # rewritten, and a hand-off copy of raw an earlier version wrote is removed.
        raw_days = rewrite_days_from_step_store(con, settings.raw_root)
        shutil.rmtree(settings.handoff_root / "raw", ignore_errors=True)
        handed = hand_off_schemas(con, settings.handoff_root, ("identity", "predictions"))
    else:
        handed = hand_off_schemas(con, settings.handoff_root)
    in_store = {
        f"{schema}.{table}"
        for schema, table in con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE'"
        ).fetchall()
    }
    built = [
        r
        for r in spark_built_relations(settings.spark_warehouse, SPARK_BUILT_SCHEMAS)
        if r in in_store
    ]
    rewritten = write_back_spark_tables(con, settings.spark_warehouse, built)
    log.info(
        f"Erasure carried to Spark: {raw_days} raw day(s) Spark loaded, {len(handed)} "
        f"hand-off tables and {len(rewritten)} tables dbt built there rewritten from the "
        "erased step store"
    )
    return raw_days + len(handed) + len(rewritten)


@dg.asset(
    key=ERASURE_ASSET,
    deps=mart_keys(),
    group_name="privacy",
    kinds={"duckdb", "python"},
    owners=["team:data-platform"],
    description=(
        "Carries out pending erasure requests (`raw.privacy_requests`, `cdp forget`): deletes "
        "the person from every table, rewrites the warehouse file so no byte of them is "
        "left, scrubs quality results, Data Docs, dbt logs and Dagster storage, and keeps "
        "keyed hashes for suppression plus `privacy.erasure_log` (no personal values)."
    ),
)
def privacy_erasure(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    outcomes = []
    values: set[str] = set()
    spark_rewritten = 0
    context.log.info(f"Erasure {warehouse.where_steps_run()}")
    with warehouse.connect(context.log) as con:
        requests = pending_requests(con)
        # Re-delivered rows of requests already carried out: only their id may stay.
        redelivered = purge_processed_requests(con)
        if requests:
            try:
                salt = privacy_salt(create=True)
            except PrivacyKeyError as exc:
                raise dg.Failure(description=f"Erasure requests are pending but {exc}") from None
            outcomes, needles = erase_pending_requests(con, salt)
            values = needles.file_values()
        if (requests or redelivered) and warehouse.engine.is_spark:
            spark_rewritten = _erase_on_spark(con, warehouse, context.log)
    if not requests and not redelivered:
        return dg.MaterializeResult(metadata={"requests_erased": dg.MetadataValue.int(0)})
    # Deleted rows keep their bytes in the file until it is rewritten.
    with warehouse.holding_run_lock(context.log), warehouse.writer_lock(context.log):
        rewrite_database(warehouse.file)
    docs_removed = scrub_quality_docs(warehouse.quality_docs_dir, values)
    # dbt writes its logs and artifacts next to the warehouse (WarehouseResource.dbt_target_dir).
    dbt_files = sum(
        len(scrub_text_files(folder, values))
        for folder in (
            DBT_PROJECT_DIR / "logs",
            DBT_PROJECT_DIR / "target",
            # One target folder per engine (WarehouseResource.dbt_target_dir): both.
            warehouse.dbt_dir / "target",
            warehouse.dbt_dir / "target_spark",
        )
    )
    dagster_rows = 0
    if values and os.environ.get("DAGSTER_HOME"):
        try:
            dagster_rows = scrub_dagster_home(Path(os.environ["DAGSTER_HOME"]), values)
        except Exception as exc:  # noqa: BLE001 - reported; the values stay until scrubbed
            context.log.warning(f"Dagster storage could not be scrubbed completely: {exc}")
    ambiguous = [o.request_id for o in outcomes if o.ambiguous]
    for outcome in outcomes:
        context.log.info(
            f"Erasure request {outcome.request_id}: {outcome.rows_erased:,} rows erased from "
            f"{len(outcome.rows_per_table)} tables, {len(outcome.customer_ids)} customer(s)"
            + (
                f"; ambiguous: {outcome.customers_left} customers share the identifier"
                if outcome.ambiguous
                else ""
            )
        )
    table = "\n".join(
        ["| request | rows erased | customers | ambiguous |", "|---|---:|---:|---|"]
        + [
            f"| {o.request_id} | {o.rows_erased:,} | {len(o.customer_ids)} | "
            f"{'yes' if o.ambiguous else 'no'} |"
            for o in outcomes
        ]
    )
    return dg.MaterializeResult(
        metadata={
            "requests_erased": dg.MetadataValue.int(len(outcomes)),
            "redelivered_request_rows_removed": dg.MetadataValue.int(redelivered),
            "rows_erased": dg.MetadataValue.int(sum(o.rows_erased for o in outcomes)),
            "ambiguous_requests": dg.MetadataValue.text(", ".join(ambiguous) or "none"),
            "requests": dg.MetadataValue.md(table),
            "quality_files_removed": dg.MetadataValue.int(docs_removed),
            "dbt_files_scrubbed": dg.MetadataValue.int(dbt_files),
            "dagster_rows_scrubbed": dg.MetadataValue.int(dagster_rows),
            "spark_tables_rewritten": dg.MetadataValue.int(spark_rewritten),
        }
    )
