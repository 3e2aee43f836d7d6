"""Build the dbt project on Spark from a DuckDB warehouse's Python-written tables.

The slice of issue 15 that runs on Spark: raw.*, identity.* and predictions.* are handed
off as Parquet (`parquet_handoff`), then `dbt build` runs on the `spark` target, building
staging, intermediate and marts with their contracts and data tests. The Dagster pipeline
(ingestion, identity, quality, publishing) still runs on DuckDB; docs/spark.md says what
is left.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from warehouse_engine.dbt_cli import dbt_command
from warehouse_engine.parquet_handoff import HandedOffTable, export_handoff_tables
from warehouse_engine.settings import EngineSettings


@dataclass(frozen=True)
class SparkBuild:
    handed_off: list[HandedOffTable]
    returncode: int
    # dbt's own console output (Spark's JVM log goes to stderr and is dropped).
    output: str
    handoff_seconds: float
    dbt_seconds: float

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0


def build_on_spark(
    settings: EngineSettings,
    work_dir: Path,
    dbt_args: tuple[str, ...] = ("build", "--exclude-resource-type", "unit_test"),
) -> SparkBuild:
    """Hand the DuckDB warehouse's raw, identity and predictions tables to Spark, then run
    dbt (`dbt_args`) on the spark target; dbt's target/ and logs/ go under `work_dir`."""
    if not settings.is_spark:
        raise ValueError("build_on_spark needs CDP_ENGINE=spark settings")
    if not settings.duckdb_warehouse.exists():
        raise FileNotFoundError(
            f"{settings.duckdb_warehouse} does not exist: run `cdp run` on DuckDB first, "
            "its raw, identity and predictions tables are what Spark reads in this slice"
        )
    started = time.monotonic()
    handed_off = export_handoff_tables(settings.duckdb_warehouse, settings.handoff_root)
    handoff_seconds = time.monotonic() - started
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    completed = subprocess.run(
        dbt_command(dbt_args, work_dir),
        cwd=work_dir,
        env=settings.dbt_environment(),
        capture_output=True,
        text=True,
    )
    return SparkBuild(
        handed_off=handed_off,
        returncode=completed.returncode,
        output=completed.stdout,
        handoff_seconds=handoff_seconds,
        dbt_seconds=time.monotonic() - started,
    )
