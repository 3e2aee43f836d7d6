"""Daily partitions keyed by the landing zone's `dt=` folder."""

from datetime import date, timedelta

import dagster as dg

from orchestration.settings import apply_environment_defaults, partitions_start

apply_environment_defaults()

# end_offset=1: today's partition exists as soon as the day starts, so the landing-zone
# sensor can load a delivery that arrives during the day it is dated.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=partitions_start().isoformat(), end_offset=1, timezone="UTC"
)


def partition_dates(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> list[date]:
    """The landing days a run covers: one key, or a range for a single-run backfill."""
    op_context = getattr(context, "op_execution_context", context)
    if not op_context.has_partition_key_range and not op_context.has_partition_key:
        return []
    key_range = op_context.partition_key_range
    first, last = date.fromisoformat(key_range.start), date.fromisoformat(key_range.end)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def run_step_flags(run: dg.DagsterRun) -> set[str]:
    """The config fields set (truthy) on any step of `run`: `full_identity` for
    `cdp run --full-identity`, `full_refresh` for `--full-refresh`, and so on."""
    return {
        name
        for op_config in (run.run_config.get("ops") or {}).values()
        for name, value in ((op_config or {}).get("config") or {}).items()
        if value
    }
