"""The frames the GX suites validate, computed by Spark from Spark's tables.

On `CDP_ENGINE=spark` the tables a suite reads are Spark's: the Parquet folders the Python
steps hand over (`<spark warehouse>/handoff/<schema>/<table>/`: raw, identity, predictions)
and the tables dbt built (`<spark warehouse>/<schema>.db/<table>/`: staging, intermediate,
marts). Each suite's `frame_sql`, written once in DuckDB's dialect, has its table names
pointed at those folders and is transpiled by sqlglot (`to_spark_sql`, as the identity
SQL is), then Spark computes the frame: the joins, windows and aggregates of the derived
columns (conflicting keys, mapping counts, reconciliations) run on the engine, over the
whole table. Only the frame comes back to the driver, through Arrow, and DuckDB turns it
into pandas exactly as the DuckDB path does (the same dtypes, so the type expectations
mean the same). GX then validates it like any other frame: the same expectations, the
same verdicts, the same Data Docs.

A scope larger than the sample limit comes back as every row a derived SQL column flags
plus a seeded sample of the rest, drawn by Spark (`DataFrame.sample`); the driver holds
`sample_limit` rows plus the flagged ones. Spark's sample is not DuckDB's reservoir
sample: on such a scope the row-level expectations see other rows than on DuckDB (the
derived columns' counts stay exact on both).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from quality.spec import PartitionRange, SuiteSpec
from warehouse_engine.parquet_handoff import HANDOFF_SCHEMAS
from warehouse_engine.sql_engines import to_spark_sql

SAMPLE_SEED = 42
VIEW_PREFIX = "_quality"
#: Frames collected at once by `prefetch`: while one statement is planned on the driver,
#: another runs on the executors.
PREFETCH_THREADS = 4


class SparkFrameError(RuntimeError):
    """A table a suite reads has no folder on Spark; the message says which and what to do."""


@dataclass
class SparkFrames:
    """Builds suite frames on a Spark session from the tables under `spark_warehouse`.

    Tables of `locations` are read from the path given there (`raw.*`, from the days
    Spark loaded: a glob over day folders), other tables of `handoff_schemas` from their
    hand-off folder, every other table from the folder Spark's warehouse keeps it in (a
    table with no data file at all, which Spark does not write, falls back to the
    session's catalog). Each table is read as a temp view once per instance: make one per
    quality step, so a step sees the files as they are when it starts.
    """

    spark: Any  # pyspark.sql.SparkSession
    spark_warehouse: Path
    handoff_schemas: tuple[str, ...] = HANDOFF_SCHEMAS
    engine: str = "spark"
    locations: Mapping[str, str] = field(default_factory=dict)
    _views: dict[str, str] = field(default_factory=dict)
    _prefetched: dict[tuple[str, int], Future] = field(default_factory=dict)

    @property
    def handoff_root(self) -> Path:
        return self.spark_warehouse / "handoff"

    def table_folder(self, relation: str) -> Path:
        schema, table = relation.split(".", 1)
        if schema in self.handoff_schemas:
            return self.handoff_root / schema / table
        return self.spark_warehouse / f"{schema}.db" / table

    def spark_sql(self, duckdb_sql: str) -> str:
        """`duckdb_sql` in Spark's dialect, its `schema.table`s read from Spark's folders."""
        import sqlglot
        from sqlglot import exp

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sqlglot's optional Rust tokenizer
            tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
        for table in list(tree.find_all(exp.Table)):
            if not table.db or table.catalog:
                continue  # a CTE, or a name this module does not place
            view = self._view(f"{table.db}.{table.name}")
            alias = table.alias or table.name
            table.replace(exp.to_table(view).as_(alias))
        return to_spark_sql(tree.sql(dialect="duckdb"))

    def _view(self, relation: str) -> str:
        found = self._views.get(relation)
        if found is not None:
            return found
        view = f"{VIEW_PREFIX}__{relation.replace('.', '__')}"
        folder = self.table_folder(relation)
        if relation in self.locations:
            frame = self.spark.read.parquet(self.locations[relation])
        elif _has_data_files(folder):
            frame = self.spark.read.parquet(str(folder))
        elif folder.is_dir() and relation.split(".", 1)[0] not in self.handoff_schemas:
            frame = self.spark.table(relation)  # built empty: the catalog has its columns
        else:
            raise SparkFrameError(
                f"{relation} has no Parquet table at {folder}; materialise {relation} "
                "(on CDP_ENGINE=spark its step writes that folder) before running this check"
            )
        frame.createOrReplaceTempView(view)
        self._views[relation] = view
        return view

    def prefetch(
        self, suites: Sequence[tuple[SuiteSpec, PartitionRange | None]], sample_limit: int
    ) -> None:
        """Start collecting the frames of `suites` (spec, scope) on a few threads, so
        Spark runs one suite's statement while the driver plans the next; `load` then
        takes each from here. A suite whose SQL cannot even be placed (a missing table) is
        left to `load`, which reports it."""
        pool = ThreadPoolExecutor(max_workers=PREFETCH_THREADS, thread_name_prefix="quality")
        try:
            for spec, scope in suites:
                duckdb_sql = spec.render_frame_sql(scope)
                try:
                    spark_sql = self.spark_sql(duckdb_sql)
                except SparkFrameError:
                    continue
                self._prefetched[duckdb_sql, sample_limit] = pool.submit(
                    self._first_rows, spark_sql, sample_limit
                )
        finally:
            pool.shutdown(wait=False)

    def _first_rows(self, spark_sql: str, sample_limit: int) -> Any:
        """Up to `sample_limit + 1` rows of the frame, as Arrow: one Spark job."""
        return _naive_timestamps(self.spark.sql(spark_sql)).limit(sample_limit + 1).toArrow()

    def load(
        self, spec: SuiteSpec, scope: PartitionRange | None, sample_limit: int
    ) -> tuple[pd.DataFrame, int, bool]:
        """The frame to validate, the rows in scope, and whether it was sampled."""
        duckdb_sql = spec.render_frame_sql(scope)
        spark_sql = self.spark_sql(duckdb_sql)  # places the tables first
        prefetched = self._prefetched.pop((duckdb_sql, sample_limit), None)
        # One Spark job when the scope fits (the usual case): up to limit + 1 rows.
        if prefetched is not None:
            collected = prefetched.result()
        else:
            collected = self._first_rows(spark_sql, sample_limit)
        if collected.num_rows <= sample_limit:
            return _to_pandas(collected), collected.num_rows, False
        # Computed once for the count and the sample.
        frame = _naive_timestamps(self.spark.sql(spark_sql)).localCheckpoint(eager=True)
        try:
            rows_in_scope = frame.count()
            # Every row an exact SQL rule flagged, then a reproducible sample of the rest.
            flagged = " OR ".join(f"`{c}` IS NOT NULL" for c in spec.exact_columns) or "FALSE"
            kept = frame.where(flagged)
            rest_rows = rows_in_scope - kept.count()
            fraction = min(1.0, 1.05 * sample_limit / max(rest_rows, 1))
            sample = (
                frame.where(f"NOT ({flagged})")
                .sample(withReplacement=False, fraction=fraction, seed=SAMPLE_SEED)
                .limit(sample_limit)
            )
            return _to_pandas(kept.unionByName(sample).toArrow()), rows_in_scope, True
        finally:
            frame.unpersist()

    def explain_error(self, spec: SuiteSpec, exc: BaseException) -> str | None:
        """A sentence for a failed frame (missing table or column), None for other errors."""
        from pyspark.errors import AnalysisException

        if isinstance(exc, SparkFrameError):
            return str(exc)
        if not isinstance(exc, AnalysisException):
            return None
        condition = getattr(exc, "getCondition", lambda: None)() or type(exc).__name__
        if "TABLE" in condition:
            hint = (
                f"a table the check reads does not exist on Spark; materialise {spec.table} "
                "(and the tables its checks join to) before running this check"
            )
        elif "COLUMN" in condition:
            hint = f"{spec.table} does not have the columns suite {spec.name} expects; compare it with docs/data-model.md"
        else:
            hint = "Spark could not build the frame to validate"
        # Spark's analysis messages name tables and columns, never row values.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else condition
        return f"{hint} ({condition}: {first_line[:300]})"


def _has_data_files(folder: Path) -> bool:
    return folder.is_dir() and any(
        not p.name.startswith((".", "_")) for p in folder.glob("*.parquet")
    )


def _naive_timestamps(frame: Any) -> Any:
    """Spark's zoned TIMESTAMP columns as TIMESTAMP_NTZ (UTC session): the contract's
    timestamps are naive, and a zoned one would reach pandas with another dtype."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampType

    zoned = {f.name for f in frame.schema.fields if isinstance(f.dataType, TimestampType)}
    if not zoned:
        return frame
    return frame.select(
        *[
            F.col(f"`{name}`").cast("timestamp_ntz").alias(name) if name in zoned else f"`{name}`"
            for name in frame.columns
        ]
    )


def _to_pandas(arrow: Any) -> pd.DataFrame:
    """Spark's rows (Arrow) to pandas through DuckDB: DuckDB's conversion is the one the
    DuckDB path uses, so a column gets the same dtype whichever engine computed it."""
    with duckdb.connect() as con:
        return con.from_arrow(arrow).df()
