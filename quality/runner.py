"""Run one quality suite on a DuckDB table (or one `_dt` partition) and return its verdict.

DuckDB builds the frame (including the derived columns only SQL can compute exactly),
GX validates it through its pandas data source with a ValidationDefinition run by a
Checkpoint, and the Checkpoint's UpdateDataDocsAction renders the result into Data Docs.
Bad data never raises: a missing table or column becomes a failed verdict whose message
says what is missing and what to do.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb
import numpy as np
import pandas as pd
from great_expectations.core.run_identifier import RunIdentifier

from quality.gx_context import DOCS_SITE_NAME, quality_context
from quality.spec import SuiteSpec

log = logging.getLogger(__name__)

#: Scopes with more rows than this are sampled (row-level rules) while the derived SQL
#: columns (`SuiteSpec.exact_columns`) stay exact. 100k rows validate in a few seconds.
DEFAULT_SAMPLE_LIMIT = 200_000
SAMPLE_SEED = 42
EXAMPLES_PER_EXPECTATION = 5


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
    """The outcome of one suite run: pass/fail, statistics, and where to read the details."""

    suite: str
    table: str
    severity: str
    success: bool
    rows_evaluated: int
    results: list[ExpectationOutcome]
    docs_path: Path
    partition_dt: date | None = None
    rows_in_scope: int = 0
    sampled: bool = False
    error: str | None = None
    duration_seconds: float = 0.0

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [r for r in self.results if not r.success]

    @property
    def unexpected_count(self) -> int:
        return sum(r.unexpected_count or 0 for r in self.failed)

    def summary(self) -> str:
        scope = f" partition {self.partition_dt}" if self.partition_dt else ""
        if self.error:
            return f"{self.suite} on {self.table}{scope}: could not validate: {self.error}"
        state = (
            "passed"
            if self.success
            else f"failed {len(self.failed)} of {len(self.results)} expectations"
        )
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
        return {
            "suite": self.suite,
            "table": self.table,
            "severity": self.severity,
            "partition_dt": self.partition_dt.isoformat() if self.partition_dt else None,
            "success": self.success,
            "rows_evaluated": self.rows_evaluated,
            "rows_in_scope": self.rows_in_scope,
            "sampled": self.sampled,
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
        }

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["docs_path"] = str(self.docs_path)
        data["partition_dt"] = self.partition_dt.isoformat() if self.partition_dt else None
        return data


def run_suite(
    con: duckdb.DuckDBPyConnection,
    spec: SuiteSpec,
    docs_dir: Path,
    partition_dt: date | None = None,
    *,
    sample_limit: int = DEFAULT_SAMPLE_LIMIT,
) -> SuiteVerdict:
    """Validate `spec` on its table (or the `partition_dt` partition) and render Data Docs."""
    started = time.perf_counter()
    docs_dir = Path(docs_dir)
    if spec.partitioned and partition_dt is None:
        log.info(
            "%s is partitioned but no partition_dt was given: validating every partition", spec.name
        )
    scope_dt = partition_dt if spec.partitioned else None
    index_path = docs_dir / "index.html"

    try:
        frame, rows_in_scope, sampled = _load_frame(con, spec, scope_dt, sample_limit)
    except duckdb.Error as exc:
        return SuiteVerdict(
            suite=spec.name,
            table=spec.table,
            severity=spec.severity,
            success=False,
            rows_evaluated=0,
            results=[],
            docs_path=index_path,
            partition_dt=scope_dt,
            error=_explain_sql_error(spec, exc),
            duration_seconds=time.perf_counter() - started,
        )

    context = quality_context(docs_dir)
    with context.exclusive():
        checkpoint = context.checkpoint_for(spec)
        checkpoint_result = checkpoint.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=spec.expectation_parameters(scope_dt),
            run_id=RunIdentifier(
                run_name=f"dt={scope_dt.isoformat()}" if scope_dt else "whole_table"
            ),
        )
        ((validation_id, validation_result),) = checkpoint_result.run_results.items()
        docs_path = _validation_page(context.gx, validation_id) or index_path

    results = [_outcome(r) for r in validation_result.results]
    return SuiteVerdict(
        suite=spec.name,
        table=spec.table,
        severity=spec.severity,
        success=bool(validation_result.success),
        rows_evaluated=len(frame),
        results=results,
        docs_path=docs_path,
        partition_dt=scope_dt,
        rows_in_scope=rows_in_scope,
        sampled=sampled,
        duration_seconds=time.perf_counter() - started,
    )


def _load_frame(
    con: duckdb.DuckDBPyConnection, spec: SuiteSpec, partition_dt: date | None, sample_limit: int
) -> tuple[pd.DataFrame, int, bool]:
    """The frame to validate, the number of rows in scope, and whether it was sampled."""
    frame_sql = spec.render_frame_sql(partition_dt)
    # A cursor keeps our queries off any transaction or result the caller holds open.
    cursor = con.cursor()
    try:
        rows_in_scope = cursor.execute(f"SELECT count(*) FROM ({frame_sql})").fetchone()[0]
        if rows_in_scope <= sample_limit:
            return cursor.execute(frame_sql).df(), rows_in_scope, False
        # Keep every row an exact SQL rule flagged, fill the rest with a reproducible sample.
        flagged = " OR ".join(f"{c} IS NOT NULL" for c in spec.exact_columns) or "FALSE"
        sampled_sql = f"""
            WITH frame AS ({frame_sql})
            SELECT * FROM frame WHERE {flagged}
            UNION ALL
            SELECT * FROM (SELECT * FROM frame WHERE NOT ({flagged}))
                USING SAMPLE reservoir({int(sample_limit)} ROWS) REPEATABLE ({SAMPLE_SEED})
        """
        return cursor.execute(sampled_sql).df(), rows_in_scope, True
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


def _validation_page(context: Any, validation_id: Any) -> Path | None:
    for site in context.get_docs_sites_urls(
        resource_identifier=validation_id, site_name=DOCS_SITE_NAME
    ):
        url = site.get("site_url")
        if url and url.startswith("file://"):
            path = Path(unquote(urlparse(url).path))
            if path.exists():
                return path
    return None


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
