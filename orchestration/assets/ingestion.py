"""Raw ingestion assets: one per source table, partitioned by landing day.

Each asset asks `ingestion.load` to replace its days in `raw.<table>` and reports what
landed. How a file is read, typed and rejected lives in `ingestion/`, not here.
"""

from datetime import timedelta

import dagster as dg

from ingestion.contract import RAW_TABLES, RawTable
from ingestion.errors import PartitionLoadError
from ingestion.load import ensure_raw_schema, load_partitions
from orchestration.partitions import daily_partitions, partition_dates
from orchestration.resources import LandingZoneResource, WarehouseResource

OWNER = "team:data-platform"
SOURCE_SYSTEMS = {
    "email": "email service provider",
    "billing": "billing system",
    "web": "web tracker",
    "support": "helpdesk",
    "surveys": "NPS survey tool",
}

# DuckDB lock contention and flaky network filesystems under a landing zone are the
# transient failures we see; three tries with backoff ride them out.
INGEST_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)


# A source that delivers daily is late after a day and a bit; the UI flags it then.
RAW_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=48), warn_window=timedelta(hours=28)
)


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
    lines = ["| day | file | read | loaded | rejected |", "|---|---|---:|---:|---:|"]
    for result in results:
        for f in result.files:
            lines.append(
                f"| {result.dt} | `{f.source_file}` | {f.rows_read:,} | {f.rows_loaded:,} | {f.rows_rejected:,} |"
            )
    if len(lines) == 2:
        lines.append("| | no files delivered | 0 | 0 | 0 |")
    return "\n".join(lines[:202])


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
                description=f"[WARN] Every day of the run has at least one file under `{spec.landing_path}`.",
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
        warehouse: WarehouseResource,
        landing: LandingZoneResource,
    ):
        with warehouse.connect(context.log) as con:
            ensure_raw_schema(con)
            try:
                # A backfill loads two days at a time (one per core); each day is still
                # its own atomic, idempotent load.
                results = load_partitions(
                    con, spec.name, partition_dates(context), landing.root, max_workers=2
                )
            except PartitionLoadError as exc:
                raise dg.Failure(description=str(exc)) from None
            for result in results:
                for warning in result.warnings:
                    context.log.warning(warning)
            table_rows = con.execute(f"select count(*) from raw.{spec.name}").fetchone()[0]
        loaded = sum(r.rows_loaded for r in results)
        rejected = sum(r.rows_rejected for r in results)
        read = sum(f.rows_read for r in results for f in r.files)
        context.log.info(
            f"raw.{spec.name}: {len(results)} day(s), {read:,} rows read, {loaded:,} loaded, {rejected:,} rejected"
        )
        yield dg.MaterializeResult(
            metadata={
                "rows_read": dg.MetadataValue.int(read),
                "rows_loaded": dg.MetadataValue.int(loaded),
                "rows_rejected": dg.MetadataValue.int(rejected),
                "files": dg.MetadataValue.int(sum(len(r.files) for r in results)),
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
        missing = [str(r.dt) for r in results if not r.files]
        yield dg.AssetCheckResult(
            check_name="delivery_arrived",
            passed=not missing,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"days_without_files": dg.MetadataValue.text(", ".join(missing) or "none")},
        )

    return _raw_asset


raw_assets = [build_raw_asset(spec) for spec in RAW_TABLES.values()]
