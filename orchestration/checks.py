"""Great Expectations suites from `quality/` as Dagster asset checks.

One check per suite, on the asset that owns the suite's table. ERROR suites are
blocking: when one fails, nothing downstream of its asset runs in that run. WARN suites
are reported and the run goes on. The suites and their runner live in `quality/`.
"""

import dagster as dg

from orchestration.metadata import to_metadata_value
from orchestration.partitions import partition_dates
from orchestration.resources import WarehouseResource
from quality.runner import run_suite
from quality.suites import SUITES, SuiteSpec


def asset_key_for_table(table: str) -> dg.AssetKey:
    """`raw.billing_invoices` -> `raw/billing_invoices`: asset keys mirror the warehouse."""
    return dg.AssetKey(table.split("."))


def build_suite_check(spec: SuiteSpec) -> dg.AssetChecksDefinition:
    severity = (
        dg.AssetCheckSeverity.ERROR if spec.severity == "ERROR" else dg.AssetCheckSeverity.WARN
    )

    @dg.asset_check(
        asset=asset_key_for_table(spec.table),
        name=spec.name,
        description=f"[{spec.severity}] {spec.description}",
        blocking=spec.severity == "ERROR",
    )
    def _check(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        days = partition_dates(context) if spec.partitioned else []
        with warehouse.connect(context.log) as con:
            # A backfill's days are validated in one pass; the verdict names failing days.
            verdict = run_suite(
                con,
                spec,
                warehouse.quality_docs_dir,
                partition_range=(days[0], days[-1]) if days else None,
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
        return dg.AssetCheckResult(passed=verdict.success, severity=severity, metadata=metadata)

    return _check


def build_quality_checks(known_keys: set[dg.AssetKey]) -> list[dg.AssetChecksDefinition]:
    """Checks for every suite whose table is an asset of this code location."""
    return [build_suite_check(s) for s in SUITES if asset_key_for_table(s.table) in known_keys]
