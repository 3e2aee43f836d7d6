"""What a quality suite is: a named set of GX expectations over one SQL-built frame.

GX has no DuckDB data source, so every suite validates a pandas DataFrame that DuckDB
builds. The frame is the table's rows (some `_dt` partitions or the whole table) plus derived
columns that only SQL can compute exactly over the whole table (latest-wins conflicts,
mapping counts, reconciliation differences). Expectations then run on that frame through
GX's pandas data source, so they show up in Data Docs like any other expectation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

from quality.gx_import import import_great_expectations

if TYPE_CHECKING:  # GX is imported when a suite is built (`SuiteSpec.build`), not before
    import great_expectations as gx
    from great_expectations.expectations import Expectation

Severity = Literal["ERROR", "WARN"]

#: Inclusive first and last `_dt` of a partitioned validation; a single day is (d, d).
PartitionRange = tuple[date, date]

#: Lineage columns every raw table ends with (docs/data-model.md); never part of a payload.
RAW_LINEAGE_COLUMNS = ("_dt", "_source_file", "_line_number", "_loaded_at")

#: Nothing this business holds happened before this instant.
EARLIEST_PLAUSIBLE_TIMESTAMP = datetime(2000, 1, 1)

#: A delivery for day D cannot contain events on or after D + this many days (D + 1 day of
#: clock skew allowed). Compared per row against the row's own `_dt`, in SQL.
FUTURE_TIMESTAMP_DAYS_AFTER_DELIVERY = 2


def scope_label(
    partition_range: PartitionRange | None, changed_since: datetime | None = None
) -> str:
    """How a validation scope is named in run names, Data Docs and metadata: `whole_table`,
    `dt=<day>`, `dt=<first>..<last>`, or `changed_since=<time>` (the rows rewritten after
    that time plus every row an exact whole-table SQL rule flagged)."""
    if changed_since is not None:
        return f"changed_since={changed_since.strftime('%Y%m%dT%H%M%S.%f')}"
    if partition_range is None:
        return "whole_table"
    first, last = partition_range
    return (
        f"dt={first.isoformat()}"
        if first == last
        else f"dt={first.isoformat()}..{last.isoformat()}"
    )


@dataclass(frozen=True)
class SuiteSpec:
    """One GX expectation suite, the table it guards and how failures are treated.

    `frame_sql` is a DuckDB SELECT whose placeholders `{table}` and `{scope}` are filled by
    the runner: `{scope}` is a boolean SQL condition restricting `{table}` to the
    partition validated (`TRUE` for whole-table suites). When omitted, the frame is
    `SELECT * FROM {table} WHERE {scope}`.

    `exact_columns` are derived columns computed by SQL over the whole scope; when the
    runner has to sample a big scope it still keeps every row where one of them is
    non-NULL, so their unexpected counts and examples stay exact.

    `changed_column` (whole-table suites only) is a frame column holding when the row was
    last rewritten (the identity step's `updated_at`, which moves only when a row's values
    change). With it, a nightly run may validate only the rows rewritten since the suite's
    last passing validation plus every row an exact column flagged over the whole table
    (`run_suite(changed_only=True)`); the suite's table-level guarantees (uniqueness,
    coverage, reconciliation) must then be exact columns too. `whole_scope_sql`, when
    given, is a DuckDB query returning one boolean: true means the table was rewritten as
    a whole (a full identity resolution) and the run validates it whole.
    """

    name: str
    table: str
    severity: Severity
    description: str
    partitioned: bool
    expectations: Callable[[], Sequence[Expectation]] = field(repr=False)
    frame_sql: str | None = field(default=None, repr=False)
    key_columns: tuple[str, ...] = ()
    exact_columns: tuple[str, ...] = ()
    changed_column: str | None = None
    whole_scope_sql: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.severity not in ("ERROR", "WARN"):
            raise ValueError(
                f"suite {self.name!r}: severity must be 'ERROR' or 'WARN', got {self.severity!r}"
            )
        if self.changed_column and (self.partitioned or not self.exact_columns):
            raise ValueError(
                f"suite {self.name!r}: changed_column is for whole-table suites whose "
                "table-level rules are exact_columns"
            )

    @property
    def blocking(self) -> bool:
        """An ERROR suite that fails must stop everything downstream of its table."""
        return self.severity == "ERROR"

    def build(self) -> gx.ExpectationSuite:
        """A fresh GX suite object (not yet registered with any context)."""
        gx = import_great_expectations()
        return gx.ExpectationSuite(
            name=self.name,
            expectations=list(self.expectations()),
            meta={
                "table": self.table,
                "severity": self.severity,
                "description": self.description,
                "partitioned": self.partitioned,
            },
        )

    def scope_condition(self, partition_range: PartitionRange | None) -> str:
        """SQL condition selecting the rows of `table` this run validates."""
        if not self.partitioned or partition_range is None:
            return "TRUE"
        first, last = partition_range
        if first == last:
            return f"_dt = DATE '{first.isoformat()}'"
        return f"_dt BETWEEN DATE '{first.isoformat()}' AND DATE '{last.isoformat()}'"

    def render_frame_sql(self, partition_range: PartitionRange | None) -> str:
        template = self.frame_sql or "SELECT * FROM {table} WHERE {scope}"
        # Plain replacement, not str.format: frame SQL holds regexes with literal braces.
        return template.replace("{table}", self.table).replace(
            "{scope}", self.scope_condition(partition_range)
        )
