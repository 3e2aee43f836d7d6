"""Raw ingestion assets: one per source table, partitioned by landing day.

Each asset asks `ingestion.load` to replace its days in `raw.<table>` and reports what
landed; with `CDP_ENGINE=spark`, `ingestion.spark_days` loads them on the run's Spark
session instead. How a file is read, typed and rejected lives in `ingestion/`, not here.
"""

from datetime import timedelta

import dagster as dg
from pydantic import Field

from ingestion.contract import RAW_TABLES, RawTable
from ingestion.errors import DeliveryNotReadyError, PartitionLoadError
from ingestion.load import ensure_raw_schema, load_partitions
from ingestion.spark_days import load_partitions_through_spark
from orchestration.partitions import daily_partitions, partition_dates
from orchestration.resources import LandingZoneResource, WarehouseResource

OWNER = "team:data-platform"
SOURCE_SYSTEMS = {
    "email": "email service provider",
    "billing": "billing system",
    "web": "web tracker",
    "support": "helpdesk",
    "surveys": "NPS survey tool",
    "privacy": "data-subject request intake (GDPR / CCPA)",
}
# Tables that deliver only when something happens: a day without files is normal there.
SPORADIC_TABLES = {"privacy_requests"}

# DuckDB lock contention and flaky network filesystems under a landing zone are the
# transient failures we see; three tries with backoff ride them out.
INGEST_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)


# A source that delivers daily is late after a day and a bit; the UI flags it then.
RAW_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=48), warn_window=timedelta(hours=28)
)


class RawLoadConfig(dg.Config):
    """Run config of a raw asset (Launchpad: ops -> raw__<table> -> config)."""

    allow_shrink: bool = Field(
        default=False,
        description=(
            "Replace a loaded day even when its landing folder now yields fewer records than "
            "raw holds for it (an empty or unmounted folder looks exactly like that, so this "
            "is refused unless set). `cdp run --allow-shrink` sets it for every raw table."
        ),
    )


def allow_shrink_run_config() -> dict:
    """The `ops` run config that lets every raw asset shrink its days (`--allow-shrink`)."""
    return {asset.op.name: {"config": {"allow_shrink": True}} for asset in raw_assets}


def landing_asset_key(spec: RawTable) -> dg.AssetKey:
    return dg.AssetKey(["landing", *spec.landing_path.split("/")])


def landing_specs() -> list[dg.AssetSpec]:
    """The landing folders, as external assets: lineage starts at the delivered file."""
    return [
        dg.AssetSpec(
            key=landing_asset_key(spec),
            description=(
                f"Files the {SOURCE_SYSTEMS[spec.landing_path.split('/')[0]]} delivers to "
                f"`{spec.landing_path}/dt=YYYY-MM-DD/` ({spec.file_format}, optionally gzipped)."
            ),
            group_name="landing",
            kinds={spec.file_format},
            owners=[OWNER],
            metadata={"landing_path": spec.landing_path},
        )
        for spec in RAW_TABLES.values()
    ]


def _files_table(results) -> str:
    lines = [
        "| day | file | lines | read | loaded | rejected | note |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for result in results:
        if result.status != "loaded":
            lines.append(f"| {result.dt} | | | | | | not loaded: no `_SUCCESS` marker yet |")
        for f in result.files:
            n_lines = "" if f.lines_in_file is None else f"{f.lines_in_file:,}"
            note = (f.note or "").replace("|", "\\|")
            lines.append(
                f"| {result.dt} | `{f.source_file}` | {n_lines} | {f.rows_read:,} "
                f"| {f.rows_loaded:,} | {f.rows_rejected:,} | {note} |"
            )
    if len(lines) == 2:
        lines.append("| | no files delivered | | 0 | 0 | 0 | |")
    return "\n".join(lines[:202])


def _failure(exc: PartitionLoadError) -> dg.Failure:
    """One Dagster failure for every day that failed, each with its own message."""
    errors = [exc, *exc.others]
    description = "\n\n".join(str(e) for e in errors)
    return dg.Failure(
        description=description,
        metadata={
            "failed_days": dg.MetadataValue.text(", ".join(str(e.dt) for e in errors)),
            "failed_files": dg.MetadataValue.text(
                ", ".join(sorted({e.source_file for e in errors if e.source_file})) or "none"
            ),
            "days_committed": dg.MetadataValue.text(
                ", ".join(str(r.dt) for r in exc.completed) or "none"
            ),
        },
        # Only a delivery still being written can fix itself; the rest needs a person.
        allow_retries=all(isinstance(e, DeliveryNotReadyError) for e in errors),
    )


def _spark_session(warehouse: WarehouseResource):
    """The run's one Spark session (dbt's, the quality frames', identity's)."""
    from warehouse_engine.spark_session import pipeline_spark_session

    return pipeline_spark_session(warehouse.engine)


def build_raw_asset(spec: RawTable) -> dg.AssetsDefinition:
    @dg.asset(
        key=["raw", spec.name],
        deps=[landing_asset_key(spec)],
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="ingestion",
        kinds={"duckdb", "python"},
        owners=[OWNER],
        description=(
            f"Every delivered row of `{spec.landing_path}` that meets the contract's types and "
            f"domains, one landing day per partition, duplicates included; the others are in "
            f"`raw.rejects` with file, line, column and reason."
        ),
        retry_policy=INGEST_RETRY,
        freshness_policy=RAW_FRESHNESS,
        check_specs=[
            dg.AssetCheckSpec(
                "delivery_arrived",
                asset=dg.AssetKey(["raw", spec.name]),
                description=(
                    f"[WARN] Every day of the run has at least one file under "
                    f"`{spec.landing_path}` and, for a source that writes `_SUCCESS` markers, "
                    "its marker (a day without one is not loaded yet)."
                ),
            )
        ],
        metadata={
            "landing_path": spec.landing_path,
            "table": f"raw.{spec.name}",
            "dagster/table_name": f"raw.{spec.name}",
        },
    )
    def _raw_asset(
        context: dg.AssetExecutionContext,
        config: RawLoadConfig,
        warehouse: WarehouseResource,
        landing: LandingZoneResource,
    ):
        on_spark = warehouse.engine.is_spark
        spark = _spark_session(warehouse) if on_spark else None
        with warehouse.connect(context.log) as con:
            ensure_raw_schema(con)
            try:
                if on_spark:
                    # Spark reads, types and commits the days under its raw root (dbt and
                    # the quality frames read them there); each committed day is copied
                    # into the step store for the Python steps.
                    results = load_partitions_through_spark(
                        con,
                        spark,
                        spec.name,
                        partition_dates(context),
                        landing.root,
                        warehouse.engine.raw_root,
                        allow_shrink=config.allow_shrink,
                    )
                else:
                    # A backfill loads two days at a time (one per core); each day is
                    # still its own atomic, idempotent load.
                    results = load_partitions(
                        con,
                        spec.name,
                        partition_dates(context),
                        landing.root,
                        max_workers=2,
                        allow_shrink=config.allow_shrink,
                    )
            except PartitionLoadError as exc:
                for error in [exc, *exc.others]:
                    context.log.error(str(error))
                raise _failure(exc) from None
            for result in results:
                for warning in result.warnings:
                    context.log.warning(warning)
            table_rows = con.execute(f"select count(*) from raw.{spec.name}").fetchone()[0]
        if on_spark:
            context.log.info(
                f"raw.{spec.name}: read, typed and committed by {warehouse.engine.describe()} "
                f"under {warehouse.engine.raw_root / spec.name}; the days copied into the "
                "local step store for the Python steps"
            )
        else:
            context.log.info(f"raw.{spec.name}: the loader {warehouse.where_steps_run()}")
        loaded = sum(r.rows_loaded for r in results)
        rejected = sum(r.rows_rejected for r in results)
        suppressed = sum(r.rows_suppressed for r in results)
        read = sum(f.rows_read for r in results for f in r.files)
        n_lines = sum(f.lines_in_file or 0 for r in results for f in r.files)
        context.log.info(
            f"raw.{spec.name}: {len(results)} day(s), {read:,} rows read, {loaded:,} loaded, {rejected:,} rejected, {suppressed:,} suppressed (erased people)"
        )
        yield dg.MaterializeResult(
            metadata={
                "lines_in_files": dg.MetadataValue.int(n_lines),
                "rows_read": dg.MetadataValue.int(read),
                "rows_loaded": dg.MetadataValue.int(loaded),
                "rows_rejected": dg.MetadataValue.int(rejected),
                "rows_suppressed": dg.MetadataValue.int(suppressed),
                "files": dg.MetadataValue.int(sum(len(r.data_files) for r in results)),
                "entries_skipped": dg.MetadataValue.int(
                    sum(len(r.files) - len(r.data_files) for r in results)
                ),
                "days": dg.MetadataValue.text(
                    ", ".join(str(r.dt) for r in results)
                    if len(results) <= 7
                    else f"{results[0].dt} .. {results[-1].dt} ({len(results)} days)"
                ),
                "warnings": dg.MetadataValue.int(sum(len(r.warnings) for r in results)),
                "files_loaded": dg.MetadataValue.md(_files_table(results)),
                "dagster/row_count": dg.MetadataValue.int(table_rows),
            }
        )
        incomplete = [str(r.dt) for r in results if r.status == "incomplete"]
        missing = [
            str(r.dt)
            for r in results
            if r.status == "loaded" and not r.data_files and spec.name not in SPORADIC_TABLES
        ]
        yield dg.AssetCheckResult(
            check_name="delivery_arrived",
            passed=not missing and not incomplete,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "days_without_files": dg.MetadataValue.text(", ".join(missing) or "none"),
                "days_incomplete": dg.MetadataValue.text(", ".join(incomplete) or "none"),
            },
        )

    return _raw_asset


raw_assets = [build_raw_asset(spec) for spec in RAW_TABLES.values()]
