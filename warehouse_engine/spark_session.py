"""The pipeline's one Spark session, opened the way dbt-spark's profile opens it.

dbt runs inside the Dagster process (orchestration/dbt_in_process.py), and dbt-spark's
`session` method takes `SparkSession.builder.enableHiveSupport()` with the profile's
`server_side_parameters` and calls `getOrCreate()`. A Python step that needs Spark (the
quality suites) may run before any dbt step of the run, so it must open the session dbt
would have opened, with the same warehouse folder and Derby metastore, or dbt would
later be handed a session configured differently (`getOrCreate` returns a running
session as it is). `spark_session_parameters` is that parameter list;
tests/warehouse_engine checks it against dbt_project/profiles.yml.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from warehouse_engine.settings import EngineSettingError, EngineSettings


def spark_session_parameters(settings: EngineSettings) -> dict[str, str]:
    """The profile's `server_side_parameters` (dbt_project/profiles.yml, output `spark`)."""
    warehouse = str(settings.spark_warehouse)
    return {
        "spark.sql.warehouse.dir": warehouse,
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={warehouse}/metastore_db;create=true"
        ),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={warehouse}",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.log.level": "ERROR",
    }


def pipeline_spark_session(settings: EngineSettings) -> Any:
    """The running session of this process, or a new one as dbt-spark would open it
    (a local master or a Spark Connect URL, from the settings)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder
    if settings.spark_remote:
        spark = builder.remote(settings.spark_remote).getOrCreate()
        configure_remote_session(spark, settings)
        return spark
    builder = builder.master(settings.spark_master).enableHiveSupport()
    for name, value in spark_session_parameters(settings).items():
        builder = builder.config(name, value)
    return builder.getOrCreate()


# What a Spark Connect client may set on its own session; the rest of
# `spark_session_parameters` is the server's (static) configuration.
REMOTE_SESSION_PARAMETERS = (
    "spark.sql.session.timeZone",
    "spark.sql.timestampType",
    "spark.sql.shuffle.partitions",
)


def configure_remote_session(spark: Any, settings: EngineSettings) -> None:
    """A Connect session gets the pipeline's runtime settings (UTC, naive timestamps, the
    shuffle partitions), and must write its tables where the pipeline reads them: the
    steps that stay local (identity's bookkeeping, erasure, publishing) read and write
    Spark's tables as files under CDP_SPARK_WAREHOUSE, so the server's warehouse folder
    has to be that folder, seen at the same path. Checked here, at the run's first Spark
    step, rather than found missing after dbt built its first table."""
    wanted = spark_session_parameters(settings)
    for name in REMOTE_SESSION_PARAMETERS:
        spark.conf.set(name, wanted[name])
    served = str(spark.conf.get("spark.sql.warehouse.dir"))
    if local_path_of(served) != settings.spark_warehouse:
        raise EngineSettingError(
            f"the Spark Connect server at {settings.spark_remote} writes its tables to "
            f"{served} (its spark.sql.warehouse.dir), but this pipeline reads them from "
            f"{settings.spark_warehouse}; set CDP_SPARK_WAREHOUSE to the server's folder (a "
            "path this machine sees at the same place), or start the server with "
            f"--conf spark.sql.warehouse.dir={settings.spark_warehouse} (docs/spark.md)"
        )


def local_path_of(location: str) -> Path | None:
    """`file:/x`, `file:///x` or `/x` as a resolved local path; None for any other scheme
    (hdfs:, s3a:, dbfs:), which this machine cannot read as files."""
    if location.startswith("file:"):
        location = "/" + location[len("file:") :].lstrip("/")
    elif "://" in location or not location.startswith("/"):
        return None
    return Path(location).resolve()
