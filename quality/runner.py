"""Run one quality suite on a table, one `_dt` partition, or a range of them.

The engine builds the frame (including the derived columns only SQL can compute
exactly): DuckDB on the warehouse file, or Spark from Spark's tables
(quality/spark_frames.py, the same SQL transpiled). GX validates it through its pandas data source with the suite's ValidationDefinition,
and quality.docs_site renders that one result into Data Docs. A range of partitions is
validated in one pass (one GX validation, one page), which is what keeps a 14-day
backfill cheap; the verdict still names the days whose rows failed. Bad data never
raises: a missing table or column becomes a failed verdict whose message says what is
missing and what to do.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import duckdb
import numpy as np
import pandas as pd

from quality.gx_import import import_great_expectations

import_great_expectations()  # before any other GX import (quality/gx_import.py)

from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402

from quality.docs_site import IndexEntry, run_time_label  # noqa: E402
from quality.gx_context import RegisteredSuite, quality_context  # noqa: E402
from quality.masking import mask_validation_result  # noqa: E402
from quality.spec import PartitionRange, SuiteSpec, scope_label  # noqa: E402

log = logging.getLogger(__name__)

#: Scopes with more rows than this are sampled (row-level rules) while the derived SQL
#: columns (`SuiteSpec.exact_columns`) stay exact. 100k rows validate in a few seconds.
DEFAULT_SAMPLE_LIMIT = 200_000
SAMPLE_SEED = 42
EXAMPLES_PER_EXPECTATION = 5
#: Failing values (with their row keys) kept per expectation in results and Data Docs.
PARTIAL_UNEXPECTED_COUNT = 20
PARTITION_COLUMN = "_dt"
FRAME_TABLE = "_quality_frame"


class FrameSource(Protocol):
    """Where a suite's frame is computed: the engine that runs its `frame_sql`."""

    engine: str

    def load(
        self, spec: SuiteSpec, scope: PartitionRange | None, sample_limit: int
    ) -> tuple[pd.DataFrame, int, bool]:
        """The frame to validate, the number of rows in scope, and whether it was sampled."""

    def explain_error(self, spec: SuiteSpec, exc: BaseException) -> str | None:
        """What to tell the user when the frame could not be built (a missing table or
        column); None for an error that is not the data's, which then propagates."""


@dataclass
class DuckDBFrames:
    """Frames computed by DuckDB on one connection (the warehouse file or a step store).

    Also validates by change (`run_suite(changed_only=True)`): `load_changed` keeps the
    rows rewritten since a time plus every flagged row, and `version` is the newest
    `changed_column` value of the last frame loaded (the table's state it validated)."""

    con: duckdb.DuckDBPyConnection
    engine: str = "duckdb"
    version: datetime | None = None

    def load(
        self, spec: SuiteSpec, scope: PartitionRange | None, sample_limit: int
    ) -> tuple[pd.DataFrame, int, bool]:
        frame, rows, sampled, self.version = _load_frame(self.con, spec, scope, sample_limit)
        return frame, rows, sampled

    def load_changed(
        self, spec: SuiteSpec, since: datetime, sample_limit: int
    ) -> tuple[pd.DataFrame, int, bool]:
        frame, rows, sampled, self.version = _load_frame(
            self.con, spec, None, sample_limit, changed_since=since
        )
        return frame, rows, sampled

    def whole_scope_reason(self, spec: SuiteSpec) -> str | None:
        """Why this run must validate `spec` whole although it asked for the change."""
        if not spec.whole_scope_sql:
            return None
        cursor = self.con.cursor()
        try:
            rewritten = cursor.execute(spec.whole_scope_sql).fetchone()[0]
        except duckdb.Error as exc:
            return f"could not tell whether {spec.table} was rewritten whole ({type(exc).__name__})"
        finally:
            cursor.close()
        return f"{spec.table} was rewritten whole (a full run)" if rewritten else None

    def explain_error(self, spec: SuiteSpec, exc: BaseException) -> str | None:
        return _explain_sql_error(spec, exc) if isinstance(exc, duckdb.Error) else None


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's result, reduced to what a human and Dagster metadata need."""

    expectation_type: str
    column: str | None
    success: bool
    unexpected_count: int | None
    unexpected_percent: float | None
    examples: list[Any] = field(default_factory=list)
    observed_value: Any = None
    description: str | None = None
    exception: str | None = None


@dataclass(frozen=True)
class SuiteVerdict:
    """The outcome of one suite run: pass/fail, statistics, and where to read the details.

    `partition_range` is the inclusive (first, last) `_dt` validated, None for a whole
    table; `failed_partitions` the days (within it) that have at least one failing row, or
    every day of the scope when a table-level expectation (columns, types) failed.
    """

    suite: str
    table: str
    severity: str
    success: bool
    rows_evaluated: int
    results: list[ExpectationOutcome]
    docs_path: Path
    partition_range: PartitionRange | None = None
    failed_partitions: list[date] = field(default_factory=list)
    rows_in_scope: int = 0
    sampled: bool = False
    #: Set when a nightly run validated by change: the rows rewritten after this time
    #: (plus every row an exact whole-table SQL rule flagged) of `rows_in_scope` rows.
    changed_since: datetime | None = None
    error: str | None = None
    duration_seconds: float = 0.0
    #: The engine that computed the frame GX validated (duckdb or spark).
    engine: str = "duckdb"

    @property
    def partition_dt(self) -> date | None:
        """The day validated when the scope is a single partition, else None."""
        if self.partition_range is None or self.partition_range[0] != self.partition_range[1]:
            return None
        return self.partition_range[0]

    @property
    def scope(self) -> str:
        """`dt=2026-10-01`, `dt=2026-10-01..2026-10-14`, `whole_table` or `changed_since=...`."""
        return scope_label(self.partition_range, self.changed_since)

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [r for r in self.results if not r.success]

    @property
    def unexpected_count(self) -> int:
        return sum(r.unexpected_count or 0 for r in self.failed)

    def summary(self) -> str:
        scope = f" {self.scope}" if self.partition_range or self.changed_since else ""
        if self.error:
            return f"{self.suite} on {self.table}{scope}: could not validate: {self.error}"
        state = (
            "passed"
            if self.success
            else f"failed {len(self.failed)} of {len(self.results)} expectations"
        )
        if self.failed_partitions and self.partition_range and self.partition_dt is None:
            state += f" (partitions {', '.join(d.isoformat() for d in self.failed_partitions)})"
        return f"{self.suite} ({self.severity}) on {self.table}{scope}: {state}, {self.rows_evaluated} rows evaluated"

    def markdown_table(self) -> str:
        lines = [
            "| expectation | column | ok | unexpected | % | examples |",
            "|---|---|---|---|---|---|",
        ]
        for r in sorted(self.results, key=lambda r: r.success):
            percent = "" if r.unexpected_percent is None else f"{r.unexpected_percent:.2f}"
            count = "" if r.unexpected_count is None else str(r.unexpected_count)
            examples = ", ".join(_short(e) for e in r.examples[:EXAMPLES_PER_EXPECTATION])
            if r.exception:
                examples = f"error: {_short(r.exception, 120)}"
            examples = examples.replace("|", "\\|")
            lines.append(
                f"| {r.expectation_type} | {r.column or ''} | {'yes' if r.success else '**no**'} "
                f"| {count} | {percent} | {examples} |"
            )
        return "\n".join(lines)

    def to_metadata(self) -> dict[str, Any]:
        """Plain JSON-able values for Dagster check metadata (wrap `results_markdown` in
        MetadataValue.md and `data_docs` in MetadataValue.path/url on the Dagster side)."""
        worst = max((r.unexpected_percent or 0.0 for r in self.failed), default=0.0)
        first, last = self.partition_range or (None, None)
        return {
            "suite": self.suite,
            "table": self.table,
            "severity": self.severity,
            "scope": self.scope,
            # One day as `2026-10-01`, a range as `2026-10-01..2026-10-14`.
            "partition_dt": self.scope.removeprefix("dt=") if self.partition_range else None,
            "partition_first": first.isoformat() if first else None,
            "partition_last": last.isoformat() if last else None,
            "partitions_in_scope": (last - first).days + 1 if first and last else None,
            "failed_partitions": [d.isoformat() for d in self.failed_partitions],
            "success": self.success,
            "rows_evaluated": self.rows_evaluated,
            "rows_in_scope": self.rows_in_scope,
            "sampled": self.sampled,
            "changed_since": self.changed_since.isoformat() if self.changed_since else None,
            "expectations_evaluated": len(self.results),
            "expectations_failed": len(self.failed),
            "unexpected_count": self.unexpected_count,
            "unexpected_percent_max": round(worst, 4),
            "failed_expectations": [
                {
                    "expectation": r.expectation_type,
                    "column": r.column,
                    "unexpected_count": r.unexpected_count,
                    "unexpected_percent": r.unexpected_percent,
                    "examples": r.examples[:EXAMPLES_PER_EXPECTATION],
                    "observed_value": r.observed_value,
                    "exception": r.exception,
                }
                for r in self.failed
            ],
            "results_markdown": self.markdown_table(),
            "data_docs": str(self.docs_path),
            "error": self.error,
            "duration_seconds": round(self.duration_seconds, 3),
            "frame_computed_by": self.engine,
        }

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["docs_path"] = str(self.docs_path)
        data["partition_range"] = (
            [d.isoformat() for d in self.partition_range] if self.partition_range else None
        )
        data["failed_partitions"] = [d.isoformat() for d in self.failed_partitions]
        data["partition_dt"] = self.partition_dt.isoformat() if self.partition_dt else None
        data["scope"] = self.scope
        data["changed_since"] = self.changed_since.isoformat() if self.changed_since else None
        return data


def run_suite(
    source: duckdb.DuckDBPyConnection | FrameSource,
    spec: SuiteSpec,
    docs_dir: Path,
    partition_dt: date | None = None,
    *,
    partition_range: PartitionRange | None = None,
    sample_limit: int = DEFAULT_SAMPLE_LIMIT,
    changed_only: bool = False,
) -> SuiteVerdict:
    """Validate `spec` on its table and render the result into Data Docs.

    Partitioned suites validate one day (`partition_dt`), every day in the inclusive
    `partition_range=(first, last)` in a single pass, or the whole table when neither is
    given. Whole-table suites ignore both. `source` computes the frame: a DuckDB
    connection, or a `FrameSource` such as `quality.spark_frames.SparkFrames`.

    `changed_only` (a nightly run): a whole-table suite with a `changed_column` validates
    the rows rewritten since its last passing validation plus every row its exact
    whole-table SQL columns flag, so its verdict is the whole table's for those rules and
    the day's change for the row-level ones. It validates the whole table instead when no
    passing validation is recorded yet, when the table was rewritten whole
    (`whole_scope_sql`), or when the engine cannot scope by change (Spark).
    """
    frames = DuckDBFrames(source) if isinstance(source, duckdb.DuckDBPyConnection) else source
    started = time.perf_counter()
    docs_dir = Path(docs_dir)
    scope = validation_scope(spec, partition_dt, partition_range)
    index_path = docs_dir / "index.html"
    context = quality_context(docs_dir)
    changed_since = _changed_since(frames, spec, context) if changed_only else None

    try:
        if changed_since is not None:
            frame, rows_in_scope, sampled = frames.load_changed(spec, changed_since, sample_limit)
        else:
            frame, rows_in_scope, sampled = frames.load(spec, scope, sample_limit)
    except Exception as exc:
        explained = frames.explain_error(spec, exc)
        if explained is None:
            raise
        return SuiteVerdict(
            suite=spec.name,
            table=spec.table,
            severity=spec.severity,
            success=False,
            rows_evaluated=0,
            results=[],
            docs_path=index_path,
            partition_range=scope,
            changed_since=changed_since,
            error=explained,
            duration_seconds=time.perf_counter() - started,
            engine=frames.engine,
        )

    label = scope_label(scope, changed_since)
    run_id = RunIdentifier(run_name=label, run_time=datetime.now(UTC))
    with context.in_process():
        registered = context.registered(spec)
        validation_result = context.validate(registered, frame, _result_format(spec, frame), run_id)
        # Before anything shows, stores or reduces the failing values: masked everywhere.
        mask_validation_result(validation_result)
        # Stored with the result: which engine computed the frame GX validated, and which
        # rows of the table it held (also shown on the page, with the batch parameters).
        validation_result.meta["frame_computed_by"] = frames.engine
        validation_result.meta["batch_parameters"]["validation_scope"] = _scope_description(
            label, changed_since, len(frame), rows_in_scope, sampled
        )
        results = [_outcome(r) for r in validation_result.results]
        failed_partitions = (
            []
            if validation_result.success
            else _failed_partitions(registered, frame, validation_result.results, scope)
        )

    site = context.site
    page = site.validation_page_path(spec.name, run_id, validation_result.batch_id)
    version = getattr(frames, "version", None) if spec.changed_column else None
    with context.exclusive():
        context.store_result(spec.name, run_id, validation_result.batch_id, validation_result)
        suite_page = site.write_suite_page(registered.suite)
        site.write_validation_page(validation_result, page)
        site.record_and_write_index(
            IndexEntry(
                suite=spec.name,
                table=spec.table,
                severity=spec.severity,
                scope=label,
                success=bool(validation_result.success),
                run_time=run_time_label(run_id),
                page=site.relative(page),
                suite_page=site.relative(suite_page),
                failed_partitions=[d.isoformat() for d in failed_partitions],
            )
        )
        if validation_result.success and version is not None:
            # Every row rewritten up to `version` has now passed: the next nightly check
            # validates what is rewritten after it. A failure keeps the older mark, so the
            # failing rows are validated again until they are fixed.
            context.record_validated_version(spec.name, version)

    return SuiteVerdict(
        suite=spec.name,
        table=spec.table,
        severity=spec.severity,
        success=bool(validation_result.success),
        rows_evaluated=len(frame),
        results=results,
        docs_path=page,
        partition_range=scope,
        failed_partitions=failed_partitions,
        rows_in_scope=rows_in_scope,
        sampled=sampled,
        changed_since=changed_since,
        duration_seconds=time.perf_counter() - started,
        engine=frames.engine,
    )


def _changed_since(frames: Any, spec: SuiteSpec, context: Any) -> datetime | None:
    """The time after which rewritten rows are validated, or None: validate whole (and why)."""
    if spec.partitioned or not spec.changed_column:
        return None
    if not hasattr(frames, "load_changed"):
        log.info(
            "%s: %s frames cannot be scoped by change; validating whole", spec.name, frames.engine
        )
        return None
    since = context.validated_version(spec.name)
    if since is None:
        log.info("%s: no passing validation recorded yet; validating the whole table", spec.name)
        return None
    reason = frames.whole_scope_reason(spec)
    if reason is not None:
        log.info("%s: %s; validating the whole table", spec.name, reason)
        return None
    return since


def _scope_description(
    label: str, changed_since: datetime | None, rows: int, rows_in_scope: int, sampled: bool
) -> str:
    """What the Data Docs page says about the rows validated."""
    if changed_since is not None:
        text = (
            f"{rows} of {rows_in_scope} rows: those rewritten after {changed_since.isoformat()} "
            "(the last passing validation) and every row the suite's exact whole-table SQL "
            "columns flag"
        )
    else:
        text = f"{rows} of {rows_in_scope} rows in scope {label}"
    return text + (" (sampled: every flagged row kept)" if sampled else "")


def validation_scope(
    spec: SuiteSpec, partition_dt: date | None, partition_range: PartitionRange | None
) -> PartitionRange | None:
    """The `_dt` range `run_suite` validates (None: the whole table)."""
    if partition_dt is not None and partition_range is not None:
        raise ValueError(f"run_suite({spec.name}): pass partition_dt or partition_range, not both")
    if partition_dt is not None:
        partition_range = (partition_dt, partition_dt)
    if partition_range is not None and partition_range[0] > partition_range[1]:
        raise ValueError(
            f"run_suite({spec.name}): partition_range {partition_range[0]}..{partition_range[1]} "
            "ends before it starts; pass (first, last)"
        )
    if not spec.partitioned:
        return None
    if partition_range is None:
        log.info(
            "%s is partitioned but no partition was given: validating every partition", spec.name
        )
    return partition_range


def _result_format(spec: SuiteSpec, frame: pd.DataFrame) -> dict[str, Any]:
    """SUMMARY with the row keys of failing values; `_dt` too, to name failing partitions."""
    index_columns = [c for c in spec.key_columns if c in frame.columns]
    if PARTITION_COLUMN in frame.columns and PARTITION_COLUMN not in index_columns:
        index_columns.append(PARTITION_COLUMN)
    return {
        "result_format": "SUMMARY",
        "partial_unexpected_count": PARTIAL_UNEXPECTED_COUNT,
        "unexpected_index_column_names": index_columns,
        "return_unexpected_index_query": False,
    }


def _failed_partitions(
    registered: RegisteredSuite,
    frame: pd.DataFrame,
    results: list[Any],
    scope: PartitionRange | None,
) -> list[date]:
    """The `_dt` days of the rows that failed (all days of the scope for table-level failures).

    Row-level failures name their rows' `_dt` in the SUMMARY examples; when an expectation
    failed on more rows than the examples hold, only it is re-run with COMPLETE results
    (on the failure path only, so a passing run never pays for this).
    """
    if PARTITION_COLUMN not in frame.columns:
        return []
    if scope is not None:
        all_days = {scope[0] + timedelta(days=i) for i in range((scope[1] - scope[0]).days + 1)}
    else:
        all_days = {d.date() for d in pd.to_datetime(frame[PARTITION_COLUMN]).dropna()}
    if len(all_days) == 1:
        return sorted(all_days)
    days: set[date] = set()
    batch = None
    for result in results:
        if result.success:
            continue
        details = result.result or {}
        unexpected_count = details.get("unexpected_count")
        raised = (result.exception_info or {}).get("raised_exception")
        if raised or unexpected_count is None:
            return sorted(all_days)  # columns, types: the whole scope is affected
        rows = details.get("partial_unexpected_index_list") or []
        if len(rows) < unexpected_count:
            if batch is None:
                batch = registered.batch_definition.get_batch(batch_parameters={"dataframe": frame})
            complete = batch.validate(
                result.expectation_config.to_domain_obj(),
                result_format={
                    "result_format": "COMPLETE",
                    "unexpected_index_column_names": [PARTITION_COLUMN],
                    "return_unexpected_index_query": False,
                    "exclude_unexpected_values": True,
                },
            )
            rows = (complete.result or {}).get("unexpected_index_list") or []
        days.update(_partition_days(rows))
    return sorted(days)


def _partition_days(index_rows: list[dict[str, Any]]) -> set[date]:
    """`_dt` values of GX unexpected-index rows. SUMMARY gives one dict per row; COMPLETE on
    pandas gives one dict of per-column lists."""
    days: set[date] = set()
    for row in index_rows:
        value = row.get(PARTITION_COLUMN)
        for day in value if isinstance(value, list) else [value]:
            if day is not None and not pd.isna(day):
                days.add(pd.Timestamp(day).date())
    return days


def _load_frame(
    con: duckdb.DuckDBPyConnection,
    spec: SuiteSpec,
    scope: PartitionRange | None,
    sample_limit: int,
    changed_since: datetime | None = None,
) -> tuple[pd.DataFrame, int, bool, datetime | None]:
    """The frame to validate, the number of rows in scope, whether it was sampled, and the
    newest `changed_column` value of the scope (None without one).

    With `changed_since`, the frame is still computed over the whole table (so the exact
    columns are), then only its flagged rows and the rows rewritten after that time (or
    with no time) are fetched."""
    frame_sql = spec.render_frame_sql(scope)
    # A cursor keeps our queries off any transaction or result the caller holds open, and
    # its temp tables (computed once, then counted and fetched) die with it.
    cursor = con.cursor()
    try:
        cursor.execute(f"CREATE TEMP TABLE {FRAME_TABLE} AS {frame_sql}")
        if spec.changed_column:
            rows_in_scope, version = cursor.execute(
                f"SELECT count(*), max({spec.changed_column}) FROM {FRAME_TABLE}"
            ).fetchone()
        else:
            rows_in_scope = cursor.execute(f"SELECT count(*) FROM {FRAME_TABLE}").fetchone()[0]
            version = None
        flagged = " OR ".join(f"{c} IS NOT NULL" for c in spec.exact_columns) or "FALSE"
        source, rows = FRAME_TABLE, rows_in_scope
        if changed_since is not None:
            source = f"{FRAME_TABLE}_changed"
            column = spec.changed_column
            cursor.execute(
                f"CREATE TEMP TABLE {source} AS SELECT * FROM {FRAME_TABLE} "
                f"WHERE ({flagged}) OR {column} IS NULL OR {column} > ?",
                [changed_since],
            )
            rows = cursor.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
        if rows <= sample_limit:
            return cursor.execute(f"SELECT * FROM {source}").df(), rows_in_scope, False, version
        # Keep every row an exact SQL rule flagged, fill the rest with a reproducible sample.
        sampled_sql = f"""
            SELECT * FROM {source} WHERE {flagged}
            UNION ALL
            SELECT * FROM (SELECT * FROM {source} WHERE NOT ({flagged}))
                USING SAMPLE reservoir({int(sample_limit)} ROWS) REPEATABLE ({SAMPLE_SEED})
        """
        return cursor.execute(sampled_sql).df(), rows_in_scope, True, version
    finally:
        cursor.close()


def _explain_sql_error(spec: SuiteSpec, exc: duckdb.Error) -> str:
    if isinstance(exc, duckdb.CatalogException):
        hint = (
            f"the table or one of its columns does not exist; materialise {spec.table} "
            "(and the tables its checks join to) before running this check"
        )
    elif isinstance(exc, duckdb.BinderException):
        hint = f"{spec.table} does not have the columns suite {spec.name} expects; compare it with docs/data-model.md"
    else:
        hint = "DuckDB could not build the frame to validate"
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{hint} ({type(exc).__name__}: {first_line})"


def _outcome(result: Any) -> ExpectationOutcome:
    config = result.expectation_config
    details = result.result or {}
    exception = None
    info = result.exception_info or {}
    if info.get("raised_exception"):
        exception = info.get("exception_message")
    return ExpectationOutcome(
        expectation_type=config.type,
        column=config.kwargs.get("column") or config.kwargs.get("column_A"),
        success=bool(result.success),
        unexpected_count=_plain(details.get("unexpected_count")),
        unexpected_percent=_plain(details.get("unexpected_percent")),
        examples=_examples(details),
        observed_value=_plain(details.get("observed_value")),
        description=config.description,
        exception=exception,
    )


def _examples(details: dict[str, Any]) -> list[Any]:
    """A few failing values, with the row keys when GX returned them."""
    indexed = details.get("partial_unexpected_index_list")
    if indexed and isinstance(indexed[0], dict):
        return [_plain(row) for row in indexed[:EXAMPLES_PER_EXPECTATION]]
    counts = details.get("partial_unexpected_counts")
    if counts:
        return [_plain(c["value"]) for c in counts[:EXAMPLES_PER_EXPECTATION]]
    return [
        _plain(v) for v in (details.get("partial_unexpected_list") or [])[:EXAMPLES_PER_EXPECTATION]
    ]


def _plain(value: Any) -> Any:
    """JSON-able version of values GX hands back (numpy scalars, Timestamps, NaN)."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float | Decimal):
        number = float(value)
        return None if math.isnan(number) else number
    if value is pd.NA:
        return None
    return value


def _short(value: Any, limit: int = 60) -> str:
    if isinstance(value, dict):
        text = ", ".join(f"{k}={v}" for k, v in value.items())
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
