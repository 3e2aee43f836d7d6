"""The engine setting, read from the environment in one place.

`CDP_ENGINE=duckdb|spark` (default duckdb) picks where dbt builds the models; with spark,
`CDP_SPARK_REMOTE` (a Spark Connect URL) or `CDP_SPARK_MASTER` (default `local[*]`) picks
the session, and `CDP_SPARK_WAREHOUSE` where its Parquet tables and metastore live
(default: `spark_warehouse/` next to the DuckDB warehouse). dbt's profile
(`dbt_project/profiles.yml`) reads the same variables; `dbt_environment()` is the one
place that writes them for a dbt subprocess, so dbt and Python cannot disagree.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENGINES = ("duckdb", "spark")
DEFAULT_SPARK_MASTER = "local[*]"
# Spark's default of 200 shuffle partitions turns every small join into 200 tasks; the
# adaptive planner coalesces them, but planning them still costs. Raise it on a cluster.
DEFAULT_SHUFFLE_PARTITIONS = 8
SPARK_WAREHOUSE_FOLDER = "spark_warehouse"
# Tables the Python steps hand to Spark (raw.*, identity.*, predictions.*) are Parquet
# folders under <spark warehouse>/handoff/<schema>/<table>/.
HANDOFF_FOLDER = "handoff"
# What Spark loads from the landing zone (ingestion/spark_reading.py): one folder per day,
# <spark warehouse>/raw/<table>/dt=<day>/{rows,rejects,load_audit}/.
RAW_FOLDER = "raw"


class EngineSettingError(ValueError):
    """A CDP_ENGINE / CDP_SPARK_* value that cannot work; the message says which and why."""


@dataclass(frozen=True)
class EngineSettings:
    engine: str
    duckdb_warehouse: Path
    spark_warehouse: Path
    spark_remote: str | None
    spark_master: str
    shuffle_partitions: int

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, duckdb_warehouse: str | Path | None = None
    ) -> EngineSettings:
        """Read CDP_ENGINE and CDP_SPARK_*; `duckdb_warehouse` overrides CDP_WAREHOUSE
        (the CLI's --warehouse)."""
        env = os.environ if environ is None else environ
        engine = (env.get("CDP_ENGINE") or "duckdb").strip().lower()
        if engine not in ENGINES:
            raise EngineSettingError(
                f"CDP_ENGINE={env.get('CDP_ENGINE')!r} is not an engine; use one of "
                f"{', '.join(ENGINES)} (unset means duckdb)"
            )
        warehouse = Path(
            duckdb_warehouse or env.get("CDP_WAREHOUSE") or "data/warehouse.duckdb"
        ).expanduser()
        warehouse = warehouse.resolve()
        spark_warehouse = env.get("CDP_SPARK_WAREHOUSE")
        spark_path = (
            Path(spark_warehouse).expanduser().resolve()
            if spark_warehouse
            else warehouse.parent / SPARK_WAREHOUSE_FOLDER
        )
        remote = (env.get("CDP_SPARK_REMOTE") or "").strip() or None
        if remote is not None and not remote.startswith("sc://"):
            raise EngineSettingError(
                f"CDP_SPARK_REMOTE={remote!r} is not a Spark Connect URL; "
                "use the form sc://host:15002 (unset runs a local Spark)"
            )
        raw_partitions = env.get("CDP_SPARK_SHUFFLE_PARTITIONS") or str(DEFAULT_SHUFFLE_PARTITIONS)
        if not raw_partitions.isdigit() or int(raw_partitions) < 1:
            raise EngineSettingError(
                f"CDP_SPARK_SHUFFLE_PARTITIONS={raw_partitions!r} is not a positive whole number"
            )
        return cls(
            engine=engine,
            duckdb_warehouse=warehouse,
            spark_warehouse=spark_path,
            spark_remote=remote,
            spark_master=(env.get("CDP_SPARK_MASTER") or DEFAULT_SPARK_MASTER).strip(),
            shuffle_partitions=int(raw_partitions),
        )

    @property
    def is_spark(self) -> bool:
        return self.engine == "spark"

    @property
    def dbt_target(self) -> str:
        """The output of dbt_project/profiles.yml this engine builds with."""
        return self.engine

    @property
    def handoff_root(self) -> Path:
        return self.spark_warehouse / HANDOFF_FOLDER

    @property
    def raw_root(self) -> Path:
        """Where `CDP_ENGINE=spark cdp run` commits the days Spark loaded."""
        return self.spark_warehouse / RAW_FOLDER

    def dbt_environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a dbt subprocess that builds on this engine: `base` (default
        this process's) with the engine's variables set.

        A local session gets its master through MASTER (spark-submit's own variable), a
        cluster its URL through SPARK_REMOTE: pyspark refuses a session given both, and a
        profile cannot leave a key out, so neither is in the profile, and the one not
        wanted is removed here.
        """
        env = dict(os.environ if base is None else base)
        env["CDP_ENGINE"] = self.engine
        env["CDP_WAREHOUSE"] = env.get("CDP_WAREHOUSE") or str(self.duckdb_warehouse)
        if not self.is_spark:
            return env
        env["CDP_SPARK_WAREHOUSE"] = str(self.spark_warehouse)
        env["CDP_SPARK_SHUFFLE_PARTITIONS"] = str(self.shuffle_partitions)
        if self.spark_remote:
            env["SPARK_REMOTE"] = self.spark_remote
            env.pop("MASTER", None)
        else:
            env["MASTER"] = self.spark_master
            env.pop("SPARK_REMOTE", None)
            # Python UDF workers (identity's Jaro-Winkler) must run this interpreter, which
            # has the project's packages: pyspark takes it when the session is created
            # (by dbt, in-process), else "python3" from PATH
            env.setdefault("PYSPARK_PYTHON", sys.executable)
        return env

    def describe(self) -> str:
        """One line for logs and the CLI: where the SQL runs (no personal data)."""
        if not self.is_spark:
            return f"duckdb ({self.duckdb_warehouse})"
        where = self.spark_remote or self.spark_master
        return f"spark {where} (tables in {self.spark_warehouse})"
