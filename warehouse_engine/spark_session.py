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
from typing import Any

from warehouse_engine.settings import EngineSettings


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
        builder = builder.remote(settings.spark_remote)
    else:
        builder = builder.master(settings.spark_master).enableHiveSupport()
        for name, value in spark_session_parameters(settings).items():
            builder = builder.config(name, value)
    return builder.getOrCreate()
