"""Load one landing partition (one source table, one `dt=` folder) into `raw.<table>`.

How, and why this way:

* Every file is first read as *physical lines* by DuckDB's CSV reader with delimiters and
  quoting switched off (`file_reading._read_lines`). That gives the exact 1-based physical line number
  of every record (`WITH ORDINALITY`), never gives up on a file because of one broken
  quote, and turns non-UTF-8 lines into line-level read errors instead of a failed file.
* CSV records are split into fields in SQL: `string_split` for lines without a quote
  character, a quote-parity split (validated by an RFC 4180 regular expression) for the
  others. A quoted field with an embedded newline joins its physical lines into one
  record: the record's line number is its first line and it counts once in `rows_read`.
  An unterminated quote costs only the line it is on (`group_multiline_records`), so the
  good rows after it still load.
* JSON lines are parsed once each, by `json_transform` into a struct shaped like the
  contract; nested fields (context.page.url, ...) map to the flat raw columns.
* Typing is plain SQL per column (TRY_CAST and friends), and so are the contract's domain
  rules (allowed values, non-negative amounts, currency and contact-email formats: see
  `Column` in ingestion/contract.py). A row that cannot be typed or breaks a rule goes to
  `raw.rejects` with a sentence naming the column, the value and what was expected.
* Files are parsed into temp tables first (outside any transaction, because a DuckDB error
  aborts the surrounding transaction); then ONE transaction deletes the day's previous rows
  from `raw.<table>`, `raw.rejects` and `raw.load_audit` and inserts the new ones. A failure
  anywhere leaves the partition exactly as it was.
* Before any of that, `ingestion.delivery` decides what the day's delivery is: which
  entries are data files (dotfiles, symlinks, foreign suffixes are skipped and audited),
  whether the day is complete (`_SUCCESS` markers, files left to settle), and how many
  physical lines each file has, counted from its bytes. A file that cannot be read whole
  (truncated gzip, wrong compression, no permission) fails the partition: nothing of it
  is loaded, the day keeps its previous contents. DuckDB reads each file through a link
  with a plain name in a scratch folder, so no character of a delivered name is a glob;
  bytes its line reader gets wrong (NUL, stray CR, mixed line endings) are first
  normalised into a clean copy, the lines that held them becoming rejects.
* A re-load never shrinks a loaded day by accident: when the new files yield fewer
  records than raw (loaded + rejected) holds for the day, the partition fails unless the
  caller passes `allow_shrink=True`.

Where each step lives (this module is the public API and the order of the steps):

    ingestion/delivery.py          what the day's delivery is (files, markers, settling, line counts)
    ingestion/file_reading.py      a file's header and physical lines, line accounting
    ingestion/record_parsing.py    CSV fields and JSON lines into contract columns
    ingestion/column_typing.py     typing and domain rules; the reject reasons
    ingestion/partition_commit.py  the one transaction: raw rows, raw.rejects, raw.load_audit
    ingestion/load_results.py      FileLoadStats, PartitionLoadResult (what callers get back)
    ingestion/load_session.py      session settings and the shared small conversions

Counting rules, both enforced per file before COMMIT and kept in `raw.load_audit`:

    rows_read     = rows_loaded + rows_rejected + rows_suppressed   (ingestion/suppression.py)
    lines_in_file = header_lines + blank_lines + continuation_lines + rows_read

A *record* is a non-blank CSV data line (header excluded), a multi-line quoted record
counting once (its further lines are continuation lines), or a non-blank JSON line. Blank
lines carry no data and are not records. `lines_in_file` comes from the bytes
(`ingestion.delivery.scan_file`), the other terms from the parse, so a line that vanished
in the reader fails the partition instead of going missing.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from ingestion.contract import (
    LOAD_AUDIT_COLUMNS,
    RAW_SCHEMA,
    RAW_TABLES,
    REJECTS_COLUMNS,
    RawTable,
    create_table_sql,
)
from ingestion.delivery import (
    DEFAULT_SETTLE_MAX_WAIT_SECONDS,
    DEFAULT_SETTLE_SECONDS,
    DayDelivery,
    SettlingTimeout,
    SkippedEntry,
    discover_day,
    scan_file,
    settle_seconds_from_env,
    table_uses_markers,
    wait_until_settled,
)
from ingestion.errors import DeliveryNotReadyError, PartitionLoadError, UnknownTableError
from ingestion.file_reading import ParsedFile, check_header, parse_file
from ingestion.load_results import FileLoadStats, PartitionLoadResult
from ingestion.load_session import as_utc_naive, loader_session, relative_path, sql_literal
from ingestion.partition_commit import LOAD_AUDIT_TABLE, replace_partition
from ingestion.suppression import has_suppression_list

__all__ = [
    "RAW_TABLES",
    "FileLoadStats",
    "PartitionLoadResult",
    "configure_connection",
    "ensure_raw_schema",
    "load_partition",
    "load_partitions",
    "partition_dir",
    "plan_day",
    "table_spec",
]


log = logging.getLogger(__name__)


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema `raw`, every raw table, `raw.rejects` and `raw.load_audit` (idempotent).

    Only missing tables are created, so concurrent loads on other cursors (which would
    conflict on catalog writes) never issue DDL once the schema exists.
    """
    existing = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = ?", [RAW_SCHEMA]
        ).fetchall()
    }
    wanted = {t.name: create_table_sql(t) for t in RAW_TABLES.values()}
    for name, columns in (("rejects", REJECTS_COLUMNS), ("load_audit", LOAD_AUDIT_COLUMNS)):
        body = ", ".join(f"{col} {ddl}" for col, ddl in columns)
        wanted[name] = f"CREATE TABLE IF NOT EXISTS {RAW_SCHEMA}.{name} ({body})"
    missing = [ddl for name, ddl in wanted.items() if name not in existing]
    if missing:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
        for ddl in missing:
            con.execute(ddl)
    if "load_audit" in existing:
        _add_new_audit_columns(con)


def _add_new_audit_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Bring a warehouse written before the line counts existed up to LOAD_AUDIT_COLUMNS."""
    # The table's own description, not duckdb_columns(): that lists every column of every
    # table in the warehouse first, and this runs for every day a load writes.
    present = {
        column[0] for column in con.execute(f"SELECT * FROM {LOAD_AUDIT_TABLE} LIMIT 0").description
    }
    for name, ddl in LOAD_AUDIT_COLUMNS:
        if name not in present:
            con.execute(f"ALTER TABLE {LOAD_AUDIT_TABLE} ADD COLUMN {name} {ddl}")


def configure_connection(
    con: duckdb.DuckDBPyConnection,
    memory_limit: str = "3GB",
    threads: int | None = None,
    temp_directory: str | None = None,
) -> None:
    """Resource settings for a loading process: bounded memory, spill to disk beyond it.

    Not called by `load_partition` itself (the connection belongs to the caller); the
    orchestration resource and the benchmark call it once per connection.
    """
    con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if temp_directory:
        con.execute(f"SET temp_directory = {sql_literal(temp_directory)}")


def partition_dir(landing_dir: Path, table: str, dt: date) -> Path:
    """`<landing>/<source>/<entity>/dt=YYYY-MM-DD` for a raw table."""
    return Path(landing_dir) / table_spec(table).landing_path / f"dt={dt.isoformat()}"


def load_partition(
    con: duckdb.DuckDBPyConnection,
    table: str,
    dt: date,
    landing_dir: Path,
    loaded_at: datetime | None = None,
    allow_shrink: bool = False,
    settle_seconds: float | None = None,
    settle_max_wait_seconds: float | None = None,
    raw_schema_ready: bool = False,
    suppression_listed: bool | None = None,
) -> PartitionLoadResult:
    """Replace partition `dt` of `raw.<table>` with the files in its landing folder.

    Bad rows go to `raw.rejects`; per-file counts (and skipped entries) go to
    `raw.load_audit`. Raises `PartitionLoadError`, before writing anything, when the
    delivery cannot be loaded whole: a contract column missing from a CSV header, a file
    that cannot be read to its end, files still being written after the settling wait,
    or (`ShrinkRefusedError`) fewer records than raw holds for the day while
    `allow_shrink` is False. A day never delivered loads zero rows; a day of a table that
    uses `_SUCCESS` markers and has none is left untouched (status `incomplete`).
    `settle_seconds` defaults to $CDP_SETTLE_SECONDS, else 10 s; the wait is bounded by
    `settle_max_wait_seconds` ($CDP_SETTLE_MAX_WAIT_SECONDS, else 300 s).
    The connection must not be inside an open transaction. `raw_schema_ready` and
    `suppression_listed` are what `load_partitions` found once for all its days: raw's
    tables exist, and whether there is a suppression list (None: look it up).
    """
    started = time.perf_counter()
    spec = table_spec(table)
    landing_dir = Path(landing_dir)
    loaded_at_utc = as_utc_naive(loaded_at or datetime.now(UTC))
    plan = plan_day(spec, dt, landing_dir, settle_seconds, settle_max_wait_seconds, started)
    if plan.incomplete is not None:
        return plan.incomplete
    day, skipped, warnings, waited = plan.day, plan.skipped, plan.warnings, plan.waited
    scans = {}
    for path in day.files:
        scans[path] = scan_file(path, relative_path(landing_dir, path), spec.name, dt)
    headers = {
        path: check_header(spec, dt, landing_dir, path, scans[path], warnings) for path in day.files
    }

    if not raw_schema_ready:
        ensure_raw_schema(con)
    parsed: list[ParsedFile] = []
    with loader_session(con), tempfile.TemporaryDirectory(prefix="cdp-ingest-") as scratch:
        try:
            for index, path in enumerate(day.files):
                parsed.append(
                    parse_file(
                        con,
                        spec,
                        dt,
                        landing_dir,
                        path,
                        scans[path],
                        headers[path],
                        index,
                        Path(scratch),
                        warnings,
                        suppression_listed,
                    )
                )
            stats = replace_partition(con, spec, dt, parsed, skipped, loaded_at_utc, allow_shrink)
        finally:
            for item in parsed:
                if item.parsed_table:
                    con.execute(f"DROP TABLE IF EXISTS {item.parsed_table}")

    result = PartitionLoadResult.of_files(
        spec.name, dt, stats, warnings, time.perf_counter() - started, waited
    )
    log.info(
        "loaded %s dt=%s: %d files, %d rows loaded, %d rejected in %.2fs",
        spec.name,
        dt,
        len(result.data_files),
        result.rows_loaded,
        result.rows_rejected,
        result.elapsed_s,
    )
    return result


@dataclass
class DayPlan:
    """What a day's delivery is, decided before any file is read (both engines' loaders).

    `incomplete` is the day's result when it must not be read (no `_SUCCESS` marker yet);
    otherwise `day.files` are the data files, `skipped` the audited other entries.
    """

    day: DayDelivery
    skipped: list[FileLoadStats]
    warnings: list[str]
    waited: float
    incomplete: PartitionLoadResult | None = None


def plan_day(
    spec: RawTable,
    dt: date,
    landing_dir: Path,
    settle_seconds: float | None,
    settle_max_wait_seconds: float | None,
    started: float,
) -> DayPlan:
    """List the day folder, check its marker, wait for its files to settle.

    Raises `PartitionLoadError` when the folder cannot be listed and
    `DeliveryNotReadyError` when files keep changing.
    """
    warnings: list[str] = []
    folder = partition_dir(landing_dir, spec.name, dt)
    try:
        day = discover_day(folder, spec.file_suffixes)
    except OSError as exc:
        raise PartitionLoadError(
            spec.name,
            dt,
            None,
            f"{relative_path(landing_dir, folder)}: the day folder cannot be listed "
            f"({exc.strerror or exc}); nothing was loaded for {spec.name} dt={dt.isoformat()}, "
            "which keeps its previous contents. Fix its permissions and re-run the day.",
        ) from None
    skipped = [_skipped_stats(landing_dir, entry) for entry in day.skipped]
    for entry in skipped:
        warnings.append(f"{entry.source_file}: {entry.note}")
    if day.exists and not day.has_marker and table_uses_markers(folder.parent):
        message = (
            f"{relative_path(landing_dir, folder)} has no _SUCCESS marker although other days of "
            f"{spec.landing_path} have one: the delivery is not complete yet, so "
            f"{spec.name} dt={dt.isoformat()} was not loaded and keeps its previous contents. "
            "Re-run the day once the source has written its marker."
        )
        warnings.append(message)
        log.warning(message)
        incomplete = PartitionLoadResult(
            table=spec.name,
            dt=dt,
            files=[],
            rows_loaded=0,
            rows_rejected=0,
            warnings=warnings,
            elapsed_s=round(time.perf_counter() - started, 3),
            status="incomplete",
        )
        return DayPlan(day, skipped, warnings, 0.0, incomplete)

    # A day whose source wrote its `_SUCCESS` marker is complete by the writer's word; the
    # settling wait is only the fallback for sources that write no marker.
    waited = _wait_for_settled_files(
        spec,
        dt,
        landing_dir,
        [] if day.has_marker else day.files,
        settle_seconds,
        settle_max_wait_seconds,
    )
    if waited >= 1:
        warnings.append(
            f"{spec.name} dt={dt.isoformat()}: waited {waited:.0f} s for recently modified "
            "files to settle"
        )
    return DayPlan(day, skipped, warnings, waited)


def load_partitions(
    con: duckdb.DuckDBPyConnection,
    table: str,
    dts: Iterable[date],
    landing_dir: Path,
    loaded_at: datetime | None = None,
    max_workers: int = 1,
    allow_shrink: bool = False,
    settle_seconds: float | None = None,
    settle_max_wait_seconds: float | None = None,
) -> list[PartitionLoadResult]:
    """Backfill several days in one run; each day is its own atomic partition load.

    With `max_workers` > 1, days load concurrently, each on its own cursor of `con`
    (DuckDB runs them in parallel; each still commits atomically). Results come back in
    date order. A `PartitionLoadError` is raised after the other days have finished: the
    days that loaded are committed, the failing day keeps its previous contents. When
    several days fail, the error is the first one's and `PartitionLoadError.others`
    lists the rest.
    """
    days = sorted(set(dts))
    # Looked up once for all the days (a catalog query each, per day and per file before).
    ensure_raw_schema(con)
    options = {
        "allow_shrink": allow_shrink,
        "settle_seconds": settle_seconds,
        "settle_max_wait_seconds": settle_max_wait_seconds,
        "raw_schema_ready": True,
        "suppression_listed": has_suppression_list(con),
    }
    if max_workers <= 1 or len(days) <= 1:
        outcomes = []
        for dt in days:
            try:
                outcomes.append(load_partition(con, table, dt, landing_dir, loaded_at, **options))
            except PartitionLoadError as exc:
                outcomes.append(exc)
        return results_or_first_error(outcomes)

    def load_on_own_cursor(dt: date) -> PartitionLoadResult:
        with con.cursor() as cursor:
            return load_partition(cursor, table, dt, landing_dir, loaded_at, **options)

    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="cdp-load") as pool:
        futures = [pool.submit(load_on_own_cursor, dt) for dt in days]
        wait(futures)
    outcomes = []
    for future in futures:
        error = future.exception()
        if error is not None and not isinstance(error, PartitionLoadError):
            raise error
        outcomes.append(error if error is not None else future.result())
    return results_or_first_error(outcomes)


def results_or_first_error(
    outcomes: list[PartitionLoadResult | PartitionLoadError],
) -> list[PartitionLoadResult]:
    """The days' results, or the first day's error carrying the other errors and the days
    that did load (both loaders report a multi-day load this way)."""
    errors = [o for o in outcomes if isinstance(o, PartitionLoadError)]
    if errors:
        first = errors[0]
        first.others = errors[1:]
        first.completed = [o for o in outcomes if isinstance(o, PartitionLoadResult)]
        raise first
    return outcomes  # type: ignore[return-value]


def _wait_for_settled_files(
    spec: RawTable,
    dt: date,
    landing_dir: Path,
    files: list[Path],
    settle_seconds: float | None,
    max_wait_seconds: float | None,
) -> float:
    try:
        settle = (
            settle_seconds
            if settle_seconds is not None
            else settle_seconds_from_env("CDP_SETTLE_SECONDS", DEFAULT_SETTLE_SECONDS)
        )
        bound = (
            max_wait_seconds
            if max_wait_seconds is not None
            else settle_seconds_from_env(
                "CDP_SETTLE_MAX_WAIT_SECONDS", DEFAULT_SETTLE_MAX_WAIT_SECONDS
            )
        )
    except ValueError as exc:
        raise PartitionLoadError(spec.name, dt, None, f"{exc}; nothing was loaded.") from None
    try:
        return wait_until_settled(
            files, settle, bound, describe=lambda p: relative_path(landing_dir, p)
        )
    except SettlingTimeout as exc:
        raise DeliveryNotReadyError(
            spec.name,
            dt,
            exc.files[0],
            f"{spec.name} dt={dt.isoformat()}: files {exc}. The delivery is not complete, so "
            "nothing was loaded and the day keeps its previous contents; re-run the day once "
            "the upload has finished (CDP_SETTLE_SECONDS sets how long a file must be left "
            "unchanged before it is taken).",
        ) from None


def _skipped_stats(landing_dir: Path, entry: SkippedEntry) -> FileLoadStats:
    return FileLoadStats(relative_path(landing_dir, entry.path), 0, 0, 0, note=entry.note)


def table_spec(table: str) -> RawTable:
    """The contract of raw table `table`; `UnknownTableError` (listing the known tables)
    for any other name. Both engines' loaders start from it."""
    try:
        return RAW_TABLES[table]
    except KeyError:
        raise UnknownTableError(
            f"unknown raw table {table!r}; expected one of {', '.join(RAW_TABLES)}"
        ) from None
