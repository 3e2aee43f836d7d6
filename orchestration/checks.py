"""Great Expectations suites from `quality/` as Dagster asset checks.

One check per suite, on the asset that owns the suite's table, run in one step per
schema (`quality_raw`, `quality_identity`, ...). ERROR suites are
blocking: when one fails, nothing downstream of its asset runs in that run. WARN suites
are reported and the run goes on. The suites and their runner live in `quality/`.

A nightly run (one day, no `--full-identity` / `--full-refresh`) asks the whole-table
suites to validate the rows the run rewrote (`run_suite(changed_only=True)`; the runner
decides per suite whether that is possible); a backfill range validates whole tables.

On `CDP_ENGINE=spark` the frames are computed by Spark from Spark's tables
(`quality.spark_frames.SparkFrames`, on the run's one Spark session); GX validates them
as on DuckDB.
"""

from collections.abc import Iterator
from typing import TYPE_CHECKING

import dagster as dg
import duckdb

from orchestration.metadata import to_metadata_value
from orchestration.partitions import partition_dates, run_step_flags
from orchestration.resources import WarehouseResource
from quality.suites import SUITES, SuiteSpec

if TYPE_CHECKING:
    from quality.runner import FrameSource


def asset_key_for_table(table: str) -> dg.AssetKey:
    """`raw.billing_invoices` -> `raw/billing_invoices`: asset keys mirror the warehouse."""
    return dg.AssetKey(table.split("."))


def _severity(spec: SuiteSpec) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if spec.severity == "ERROR" else dg.AssetCheckSeverity.WARN


def _check_spec(spec: SuiteSpec) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name=spec.name,
        asset=asset_key_for_table(spec.table),
        description=f"[{spec.severity}] {spec.description}",
        blocking=spec.severity == "ERROR",
    )


def _spark_frames(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    """On Spark, the step's frame source: Spark's tables, on the run's Spark session."""
    from quality.spark_frames import SparkFrames
    from warehouse_engine.spark_session import pipeline_spark_session

    settings = warehouse.engine
    context.log.info(f"Quality suites computed by {settings.describe()}; GX validates them here")
    return SparkFrames(
        pipeline_spark_session(settings),
        settings.spark_warehouse,
        locations=warehouse.spark_source_locations(),
    )


def _partition_range(context: dg.AssetCheckExecutionContext, spec: SuiteSpec):
    """A backfill's days are validated in one pass; the verdict names failing days."""
    days = partition_dates(context) if spec.partitioned else []
    return (days[0], days[-1]) if days else None


def is_nightly_run(context: dg.AssetCheckExecutionContext) -> bool:
    """One landing day, neither `--full-identity` nor `--full-refresh`: the whole-table
    suites validate the rows the run rewrote (quality.runner, `changed_only`)."""
    run = context.run
    if "dagster/partition" not in run.tags:
        return False  # a backfill range or an unpartitioned run: validate as a full run
    return not run_step_flags(run) & {"full_identity", "full_refresh"}


def _suite_result(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    source: "duckdb.DuckDBPyConnection | FrameSource",
    spec: SuiteSpec,
    changed_only: bool = False,
) -> dg.AssetCheckResult:
    from quality.runner import run_suite  # imports GX: the first suite validated pays for it

    verdict = run_suite(
        source,
        spec,
        warehouse.quality_docs_dir,
        partition_range=_partition_range(context, spec),
        changed_only=changed_only,
    )
    metadata = {}
    for key, value in verdict.to_metadata().items():
        if value is None or value == []:
            continue
        if key == "results_markdown":
            metadata[key] = dg.MetadataValue.md(value)
        elif key == "data_docs":
            metadata[key] = dg.MetadataValue.path(value)
        else:
            metadata[key] = to_metadata_value(value)
    if not verdict.success:
        where = ", ".join(str(d) for d in verdict.failed_partitions) or verdict.scope
        context.log.warning(f"{spec.name} ({spec.severity}) failed on {where}")
    return dg.AssetCheckResult(
        asset_key=asset_key_for_table(spec.table),
        check_name=spec.name,
        passed=verdict.success,
        severity=_severity(spec),
        metadata=metadata,
    )


def build_schema_checks(schema: str, specs: list[SuiteSpec]) -> dg.AssetChecksDefinition:
    """Every suite on the tables of one schema, as one step of checks.

    One step per schema rather than per suite: each Dagster step costs its start, its
    events and its bookkeeping (about as much CPU as a small suite's validation), and the
    order is the same, since everything downstream of a schema waits for all its tables.
    A failing blocking check still fails the step (and so stops what is downstream) after
    every selected suite has reported; a run of a few assets runs only their suites.
    """

    @dg.multi_asset_check(
        specs=[_check_spec(s) for s in specs],
        name=f"quality_{schema}",
        can_subset=True,
        description=f"Great Expectations suites (quality/suites/) on the {schema}.* tables.",
    )
    def _checks(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[dg.AssetCheckResult]:
        selected = {key.name for key in context.selected_asset_check_keys}
        if warehouse.engine.is_spark:
            from quality.runner import DEFAULT_SAMPLE_LIMIT, validation_scope

            frames = _spark_frames(context, warehouse)
            chosen = [spec for spec in specs if spec.name in selected]
            # Spark computes the next frames while GX validates the first ones.
            frames.prefetch(
                [
                    (spec, validation_scope(spec, None, _partition_range(context, spec)))
                    for spec in chosen
                ],
                DEFAULT_SAMPLE_LIMIT,
            )
            for spec in chosen:
                yield _suite_result(context, warehouse, frames, spec)
            return
        # One connection for the step's suites: opening the warehouse reads its catalog.
        changed_only = is_nightly_run(context)
        with warehouse.connect(context.log) as con:
            for spec in specs:
                if spec.name in selected:
                    yield _suite_result(context, warehouse, con, spec, changed_only)

    return _checks


def build_quality_checks(known_keys: set[dg.AssetKey]) -> list[dg.AssetChecksDefinition]:
    """Checks for every suite whose table is an asset of this code location, one step per schema."""
    by_schema: dict[str, list[SuiteSpec]] = {}
    for spec in SUITES:
        if asset_key_for_table(spec.table) in known_keys:
            by_schema.setdefault(spec.table.split(".")[0], []).append(spec)
    return [build_schema_checks(schema, specs) for schema, specs in by_schema.items()]
