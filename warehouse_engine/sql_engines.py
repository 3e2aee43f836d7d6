"""One way to run generated SQL on DuckDB or on Spark.

Domain code (identity/engine_linkage.py) writes its SQL once, in DuckDB's dialect, and
hands it to an engine: DuckDB runs it as written, Spark runs it after sqlglot has
transpiled it (as Splink does). Both engines materialise each step as a table, so the
next step (and an iteration of a loop such as connected components) reads data, not an
ever longer query plan.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import pandas as pd


class SqlEngine(Protocol):
    """What the identity SQL needs from an engine."""

    name: str

    def create_table(self, name: str, select_sql: str, materialize: bool = True) -> None:
        """(Re)create `name` from a DuckDB-dialect SELECT. `materialize=False`: a step read
        once, which an engine may leave as a view (Spark does; DuckDB's tables are cheap)."""

    def fetch_frame(self, select_sql: str) -> pd.DataFrame:
        """The result of a DuckDB-dialect SELECT on the driver, as pandas."""

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        """A small driver-side frame as a table the SQL can join."""

    def drop_table(self, name: str) -> None: ...

    def register_parquet(self, name: str, folder) -> None:
        """The Parquet files of `folder` as a table, read once (the folder may then go)."""

    def columns(self, name: str) -> list[str]:
        """The column names of a table (no query run)."""


@dataclass
class DuckDBEngine:
    """Runs the SQL as written, as temp tables of one DuckDB connection."""

    con: Any  # duckdb.DuckDBPyConnection
    name: str = "duckdb"

    def create_table(self, name: str, select_sql: str, materialize: bool = True) -> None:
        self.con.execute(f"create or replace temp table {name} as {select_sql}")

    def fetch_frame(self, select_sql: str) -> pd.DataFrame:
        return self.con.sql(select_sql).df()

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        view = f"_{name}_frame"
        self.con.register(view, frame)
        try:
            self.create_table(name, f"select * from {view}")
        finally:
            self.con.unregister(view)

    def drop_table(self, name: str) -> None:
        self.con.execute(f"drop table if exists {name}")

    def register_parquet(self, name: str, folder) -> None:
        self.con.execute(
            f"create or replace temp table {name} as select * from read_parquet('{folder}/*.parquet')"
        )

    def columns(self, name: str) -> list[str]:
        return [row[0] for row in self.con.sql(f"describe {name}").fetchall()]


@lru_cache(maxsize=4096)
def to_spark_sql(duckdb_sql: str) -> str:
    """DuckDB SQL in Spark's dialect (sqlglot), with the few rewrites sqlglot leaves:
    a row value `(a, b)` compared as a whole becomes `struct(a, b)`, `as materialized`
    (a DuckDB planner hint) goes."""
    import sqlglot
    from sqlglot import exp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sqlglot warns about its optional Rust tokenizer
        tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
    for cte in tree.find_all(exp.CTE):
        cte.set("materialized", None)
    for row in list(tree.find_all(exp.Tuple)):
        if not isinstance(row.parent, exp.In):
            row.replace(exp.Struct(expressions=list(row.expressions)))
    return tree.sql(dialect="spark")


def _jaro_winkler_udf():
    """Spark has no Jaro-Winkler: a vectorised (pandas) UDF with jellyfish, which gives
    DuckDB's `jaro_winkler_similarity` to the last bit (tests/identity/test_engine_linkage.py
    checks it on the comparison levels). It runs on the executors, like the SQL around it."""
    import jellyfish
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("double")
    def jaro_winkler(left: pd.Series, right: pd.Series) -> pd.Series:
        return pd.Series(
            [
                None if a is None or b is None else jellyfish.jaro_winkler_similarity(a, b)
                for a, b in zip(left, right, strict=True)
            ],
            dtype="float64",
        )

    return jaro_winkler


@dataclass
class SparkEngine:
    """Runs the SQL transpiled to Spark; each table is a temp view over an eagerly
    checkpointed DataFrame (lineage cut, so an iterative loop does not re-plan its past),
    a step read once a plain view (one job fewer)."""

    spark: Any  # pyspark.sql.SparkSession
    name: str = "spark"
    _frames: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spark.udf.register("jarowinkler_similarity", _jaro_winkler_udf())

    def create_table(self, name: str, select_sql: str, materialize: bool = True) -> None:
        frame = self.spark.sql(to_spark_sql(select_sql))
        if materialize:
            frame = frame.localCheckpoint(eager=True)
        frame.createOrReplaceTempView(name)
        previous = self._frames.pop(name, None)
        if previous is not None:
            previous.unpersist()
        if materialize:
            # Only checkpointed frames hold data to release. A plain view's frame is its
            # SQL text: through Spark Connect, unpersisting it re-analyses that text, which
            # fails once a view it reads has been dropped.
            self._frames[name] = frame

    def fetch_frame(self, select_sql: str) -> pd.DataFrame:
        return self.spark.sql(to_spark_sql(select_sql)).toPandas()

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        # local data: already materialised, nothing to checkpoint
        self.spark.createDataFrame(frame, schema=_spark_schema(frame)).createOrReplaceTempView(name)
        self._frames.pop(name, None)

    def register_parquet(self, name: str, folder) -> None:
        frame = self.spark.read.parquet(str(folder)).localCheckpoint(eager=True)
        frame.createOrReplaceTempView(name)
        previous = self._frames.pop(name, None)
        if previous is not None:
            previous.unpersist()
        self._frames[name] = frame

    def columns(self, name: str) -> list[str]:
        return list(self.spark.table(name).columns)

    def drop_table(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)
        previous = self._frames.pop(name, None)
        if previous is not None:
            previous.unpersist()


def _spark_schema(frame: pd.DataFrame) -> str:
    """A DDL schema from pandas dtypes, so an empty frame still has typed columns."""
    types = []
    for column, dtype in frame.dtypes.items():
        if pd.api.types.is_bool_dtype(dtype):
            spark_type = "boolean"
        elif pd.api.types.is_integer_dtype(dtype):
            spark_type = "int" if dtype.itemsize <= 4 else "bigint"
        elif pd.api.types.is_float_dtype(dtype):
            spark_type = "double"
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            spark_type = "timestamp_ntz"
        else:
            spark_type = _object_type(frame[column])
        types.append(f"`{column}` {spark_type}")
    return ", ".join(types)


def _object_type(values: pd.Series) -> str:
    """The Spark type of an object column, from its first non-null value (a nullable
    boolean or integer column comes out of DuckDB as objects)."""
    present = values.dropna()
    first = present.iloc[0] if len(present) else None
    if isinstance(first, bool):
        return "boolean"
    if isinstance(first, int):
        return "bigint"
    if isinstance(first, float):
        return "double"
    if isinstance(first, pd.Timestamp):
        return "timestamp_ntz"
    return "string"


def local_spark_session(
    master: str = "local[2]", shuffle_partitions: int = 4, app_name: str = "cdp-identity"
):
    """A local Spark session for identity SQL: UI off, few shuffle partitions, Arrow on,
    UTC, the driver's Python for the UDF workers. `getOrCreate` returns a running session
    unchanged, so a process has one master."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    return (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.default.parallelism", str(shuffle_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.timestampType", "TIMESTAMP_NTZ")
        .config("spark.driver.memory", os.environ.get("CDP_SPARK_DRIVER_MEMORY", "2g"))
        .getOrCreate()
    )
