"""Load one landing partition (one source table, one `dt=` folder) into `raw.<table>`.

How, and why this way:

* Every file is first read as *physical lines* by DuckDB's CSV reader with delimiters and
  quoting switched off (`_read_lines`). That gives the exact 1-based physical line number
  of every record (`WITH ORDINALITY`), never gives up on a file because of one broken
  quote, and turns non-UTF-8 lines into line-level read errors instead of a failed file.
* CSV records are split into fields in SQL: `string_split` for lines without a quote
  character, a quote-parity split (validated by an RFC 4180 regular expression) for the
  others. A quoted field with an embedded newline joins its physical lines into one
  record: the record's line number is its first line and it counts once in `rows_read`.
  An unterminated quote costs only the line it is on (`_group_multiline_records`), so the
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

Counting rules, both enforced per file before COMMIT and kept in `raw.load_audit`:

    rows_read     = rows_loaded + rows_rejected
    lines_in_file = header_lines + blank_lines + continuation_lines + rows_read

A *record* is a non-blank CSV data line (header excluded), a multi-line quoted record
counting once (its further lines are continuation lines), or a non-blank JSON line. Blank
lines carry no data and are not records. `lines_in_file` comes from the bytes
(`ingestion.delivery.scan_file`), the other terms from the parse, so a line that vanished
in the reader fails the partition instead of going missing.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from ingestion.contract import (
    LOAD_AUDIT_COLUMNS,
    RAW_SCHEMA,
    RAW_TABLES,
    REJECTS_COLUMNS,
    Column,
    RawTable,
    create_table_sql,
)
from ingestion.delivery import (
    DEFAULT_SETTLE_MAX_WAIT_SECONDS,
    DEFAULT_SETTLE_SECONDS,
    FileScan,
    LineProblem,
    SettlingTimeout,
    SkippedEntry,
    discover_day,
    scan_file,
    settle_seconds_from_env,
    table_uses_markers,
    wait_until_settled,
    write_clean_copy,
)
from ingestion.errors import (
    DeliveryNotReadyError,
    PartitionLoadError,
    ShrinkRefusedError,
    UnknownTableError,
)
from ingestion.suppression import suppress_parsed_rows

__all__ = [
    "RAW_TABLES",
    "FileLoadStats",
    "PartitionLoadResult",
    "configure_connection",
    "ensure_raw_schema",
    "load_partition",
    "load_partitions",
    "partition_dir",
]

log = logging.getLogger(__name__)

REJECTS_TABLE = f"{RAW_SCHEMA}.rejects"
LOAD_AUDIT_TABLE = f"{RAW_SCHEMA}.load_audit"
RAW_RECORD_MAX_CHARS = 10_000
VALUE_IN_REASON_MAX_CHARS = 200

# An RFC 4180 record, matched against ',' || record so that every field is preceded by a
# comma: that keeps regexp_extract_all from ever producing an empty match (it would skip
# the next character and lose a field).
_CSV_FIELD = r'"(?:[^"]|"")*"|[^",]*'
_CSV_RECORD_RE = rf"(?s)(?:,(?:{_CSV_FIELD}))+"
_CSV_FIELD_RE = rf"(?s),({_CSV_FIELD})"
# Splitting a well-formed quoted record without a regex (4x cheaper): split it on '"'.
# Odd-numbered pieces (1-based) are outside quotes, even ones inside; an escaped "" shows
# up as an empty outside piece between two inside pieces and becomes one '"'. Commas
# outside quotes separate fields: they become chr(31), the pieces are glued back without
# their quotes, and the result is split on chr(31). Needs `pieces` = string_split(record, '"').
_SPLIT_QUOTED_RECORD = (
    "string_split(array_to_string(list_transform(pieces, lambda piece, i: CASE "
    "WHEN i % 2 = 0 THEN piece "
    "WHEN piece = '' AND i > 1 AND i < len(pieces) THEN '\"' "
    "ELSE replace(piece, ',', chr(31)) END), ''), chr(31))"
)

_FIX_VALUE = "Fix the record at the source and re-deliver it."
_EXPECTED = {
    "TIMESTAMP": "an ISO-8601 timestamp such as 2026-10-01T09:30:00Z",
    "BOOLEAN": "a boolean (true/false, 1/0, yes/no)",
    "BIGINT": "a whole number that fits in 64 bits",
}
_TRUE_WORDS = ("true", "t", "1", "yes", "y")
_FALSE_WORDS = ("false", "f", "0", "no", "n")
# Multi-line record repair re-scans the file once per unterminated quote; past this many
# rounds it fixes every broken record it finds per round (still correct, less precise).
_MAX_PRECISE_QUOTE_REPAIRS = 20


@dataclass(frozen=True)
class FileLoadStats:
    """What happened to one landing file (one `raw.load_audit` row).

    Always rows_read = rows_loaded + rows_rejected, and for a file that was read,
    lines_in_file = header_lines + blank_lines + continuation_lines + rows_read.
    A skipped entry (dotfile, symlink, foreign suffix) has zero rows, no line counts
    and a `note` saying why it was skipped.
    """

    source_file: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    lines_in_file: int | None = None
    header_lines: int | None = None
    blank_lines: int | None = None
    continuation_lines: int | None = None
    note: str | None = None
    rows_suppressed: int = 0


@dataclass(frozen=True)
class PartitionLoadResult:
    """Outcome of loading one (table, dt) partition; what a Dagster asset reports.

    `status` is `loaded`, or `incomplete` when the table uses `_SUCCESS` markers and the
    day has none yet: nothing was read or replaced, the day keeps what it had.
    `files` holds the skipped entries too (with a `note`); `data_files` only what was read.
    """

    table: str
    dt: date
    files: list[FileLoadStats]
    rows_loaded: int
    rows_rejected: int
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    status: str = "loaded"
    settle_wait_s: float = 0.0
    rows_suppressed: int = 0

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def data_files(self) -> list[FileLoadStats]:
        return [f for f in self.files if f.note is None]


@dataclass
class _ParsedFile:
    """One file parsed into a temp table, waiting for the partition transaction."""

    source_file: str
    parsed_table: str | None
    rows_read: int
    rows_loaded: int = 0
    rows_rejected: int = 0
    lines_in_file: int = 0
    header_lines: int = 0
    blank_lines: int = 0
    continuation_lines: int = 0
    rows_suppressed: int = 0


@dataclass
class _CsvHeader:
    n_fields: int
    column_positions: dict[str, int]  # contract column -> 1-based field position


# --------------------------------------------------------------------------- public API


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
    present = {
        name
        for (name,) in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?",
            [RAW_SCHEMA, "load_audit"],
        ).fetchall()
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
        con.execute(f"SET temp_directory = {_sql_str(temp_directory)}")


def partition_dir(landing_dir: Path, table: str, dt: date) -> Path:
    """`<landing>/<source>/<entity>/dt=YYYY-MM-DD` for a raw table."""
    return Path(landing_dir) / _table_spec(table).landing_path / f"dt={dt.isoformat()}"


def load_partition(
    con: duckdb.DuckDBPyConnection,
    table: str,
    dt: date,
    landing_dir: Path,
    loaded_at: datetime | None = None,
    allow_shrink: bool = False,
    settle_seconds: float | None = None,
    settle_max_wait_seconds: float | None = None,
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
    The connection must not be inside an open transaction.
    """
    started = time.perf_counter()
    spec = _table_spec(table)
    landing_dir = Path(landing_dir)
    loaded_at_utc = _as_utc_naive(loaded_at or datetime.now(UTC))
    warnings: list[str] = []

    folder = partition_dir(landing_dir, spec.name, dt)
    try:
        day = discover_day(folder, spec.file_suffixes)
    except OSError as exc:
        raise PartitionLoadError(
            spec.name,
            dt,
            None,
            f"{_relative(landing_dir, folder)}: the day folder cannot be listed "
            f"({exc.strerror or exc}); nothing was loaded for {spec.name} dt={dt.isoformat()}, "
            "which keeps its previous contents. Fix its permissions and re-run the day.",
        ) from None
    skipped = [_skipped_stats(landing_dir, entry) for entry in day.skipped]
    for entry in skipped:
        warnings.append(f"{entry.source_file}: {entry.note}")
    if day.exists and not day.has_marker and table_uses_markers(folder.parent):
        message = (
            f"{_relative(landing_dir, folder)} has no _SUCCESS marker although other days of "
            f"{spec.landing_path} have one: the delivery is not complete yet, so "
            f"{spec.name} dt={dt.isoformat()} was not loaded and keeps its previous contents. "
            "Re-run the day once the source has written its marker."
        )
        warnings.append(message)
        log.warning(message)
        return PartitionLoadResult(
            table=spec.name,
            dt=dt,
            files=[],
            rows_loaded=0,
            rows_rejected=0,
            warnings=warnings,
            elapsed_s=round(time.perf_counter() - started, 3),
            status="incomplete",
        )

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
    scans = {}
    for path in day.files:
        scans[path] = scan_file(path, _relative(landing_dir, path), spec.name, dt)
    headers = {
        path: _check_header(spec, dt, landing_dir, path, scans[path], warnings)
        for path in day.files
    }

    ensure_raw_schema(con)
    parsed: list[_ParsedFile] = []
    with _loader_session(con), tempfile.TemporaryDirectory(prefix="cdp-ingest-") as scratch:
        try:
            for index, path in enumerate(day.files):
                parsed.append(
                    _parse_file(
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
                    )
                )
            stats = _replace_partition(con, spec, dt, parsed, skipped, loaded_at_utc, allow_shrink)
        finally:
            for item in parsed:
                if item.parsed_table:
                    con.execute(f"DROP TABLE IF EXISTS {item.parsed_table}")

    data = [s for s in stats if s.note is None]
    result = PartitionLoadResult(
        table=spec.name,
        dt=dt,
        files=stats,
        rows_loaded=sum(s.rows_loaded for s in data),
        rows_rejected=sum(s.rows_rejected for s in data),
        rows_suppressed=sum(s.rows_suppressed for s in data),
        warnings=warnings,
        elapsed_s=round(time.perf_counter() - started, 3),
        settle_wait_s=round(waited, 3),
    )
    log.info(
        "loaded %s dt=%s: %d files, %d rows loaded, %d rejected in %.2fs",
        spec.name,
        dt,
        len(data),
        result.rows_loaded,
        result.rows_rejected,
        result.elapsed_s,
    )
    return result


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
    options = {
        "allow_shrink": allow_shrink,
        "settle_seconds": settle_seconds,
        "settle_max_wait_seconds": settle_max_wait_seconds,
    }
    if max_workers <= 1 or len(days) <= 1:
        outcomes = []
        for dt in days:
            try:
                outcomes.append(load_partition(con, table, dt, landing_dir, loaded_at, **options))
            except PartitionLoadError as exc:
                outcomes.append(exc)
        return _results_or_first_error(outcomes)
    ensure_raw_schema(con)

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
    return _results_or_first_error(outcomes)


def _results_or_first_error(
    outcomes: list[PartitionLoadResult | PartitionLoadError],
) -> list[PartitionLoadResult]:
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
            files, settle, bound, describe=lambda p: _relative(landing_dir, p)
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
    return FileLoadStats(_relative(landing_dir, entry.path), 0, 0, 0, note=entry.note)


# ----------------------------------------------------------------- discovery and headers


def _table_spec(table: str) -> RawTable:
    try:
        return RAW_TABLES[table]
    except KeyError:
        raise UnknownTableError(
            f"unknown raw table {table!r}; expected one of {', '.join(RAW_TABLES)}"
        ) from None


def _check_header(
    spec: RawTable,
    dt: date,
    landing_dir: Path,
    path: Path,
    scan: FileScan,
    warnings: list[str],
) -> _CsvHeader | None:
    """Map contract columns to header positions; raise if a contract column is missing.

    Returns None for JSON lines, files without data and UTF-16 files (whose every line
    is rejected later). The header is read from the scan, i.e. from the bytes.
    """
    if spec.file_format != "csv":
        return None
    source_file = _relative(landing_dir, path)
    first_line = scan.first_line
    if first_line is None or scan.encoding_problem:
        return None
    if not first_line.strip():
        if not scan.has_text:
            return None  # blank all through: no header needed, no records
        raise PartitionLoadError(
            spec.name,
            dt,
            source_file,
            f"{source_file}: the first line, which must be the header, is empty although the "
            f"file has {scan.physical_lines - 1:,} more line(s). Re-deliver the file with the "
            f"header on line 1; nothing was loaded for {spec.name} dt={dt.isoformat()}, which "
            "keeps its previous contents.",
            line_number=1,
        )
    if b"\x00" in first_line:
        raise PartitionLoadError(
            spec.name,
            dt,
            source_file,
            f"{source_file}: line 1, the header, holds a NUL byte (0x00): the file is corrupt "
            f"or binary. Re-deliver it as UTF-8 text; nothing was loaded for {spec.name} "
            f"dt={dt.isoformat()}, which keeps its previous contents.",
            line_number=1,
        )
    text = first_line.decode("utf-8", errors="replace").lstrip("\ufeff").replace("\r", " ")
    names = [name.strip().lower() for name in next(csv.reader([text]), [])]

    positions: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in positions:
            warnings.append(
                f"{source_file}: column {name!r} appears twice in the header; "
                f"the first one (field {positions[name]}) is loaded"
            )
            continue
        positions[name] = position

    contract_names = [c.name for c in spec.columns]
    missing = [name for name in contract_names if name not in positions]
    if missing:
        # Never the header's text: a file without a header has a data row (names, emails)
        # on line 1, and this message goes to logs and the Dagster UI.
        matched = len(contract_names) - len(missing)
        found = (
            f"line 1 has {len(names)} field(s), {matched} of them named like a contract column"
            + ("; it looks like a data row, so the file may have no header" if matched == 0 else "")
        )
        columns = ", ".join(repr(m) for m in missing)
        noun = "required column" if len(missing) == 1 else "required columns"
        verb = "is" if len(missing) == 1 else "are"
        raise PartitionLoadError(
            spec.name,
            dt,
            source_file,
            f"{source_file}: {noun} {columns} {verb} missing from the header on line 1 "
            f"({found}). Every column of the {spec.name} contract "
            f"(docs/data-model.md) must be in the header, in any order. Fix the export or "
            f"re-deliver the file with the column; nothing was loaded for {spec.name} "
            f"dt={dt.isoformat()}, which keeps its previous contents.",
            line_number=1,
            column_name=missing[0],
        )
    for name in names:
        if name not in contract_names and name:
            warnings.append(
                f"{source_file}: extra column {name!r} is not in the {spec.name} contract "
                f"and was ignored"
            )
    return _CsvHeader(
        n_fields=len(names),
        column_positions={name: positions[name] for name in contract_names},
    )


# ----------------------------------------------------------------------- reading a file


def _parse_file(
    con: duckdb.DuckDBPyConnection,
    spec: RawTable,
    dt: date,
    landing_dir: Path,
    path: Path,
    scan: FileScan,
    header: _CsvHeader | None,
    index: int,
    scratch: Path,
    warnings: list[str],
) -> _ParsedFile:
    """Parse one landing file into the temp table `_ingest_parsed_<index>`.

    The lines are materialised first: numbering lines (WITH ORDINALITY) is a serial step,
    and parsing from a table instead of from the reader lets DuckDB use every thread.
    CSV files whose lines have an odd number of quotes are parsed a second time, with
    the lines grouped into records (rare: quoted line breaks and broken quoting).
    Before the temp table counts, the file's line accounting is checked against the
    physical line count of its bytes (`_check_line_accounting`).
    """
    source_file = _relative(landing_dir, path)
    if scan.physical_lines == 0:
        return _ParsedFile(source_file, None, 0)
    parsed_table = f"_ingest_parsed_{index}"
    header_lines = 1 if spec.file_format == "csv" else 0
    if scan.encoding_problem:
        return _reject_every_line(con, spec, source_file, scan, parsed_table, warnings)
    if not scan.has_text:  # only spaces and line breaks: no header, no records
        return _ParsedFile(
            source_file, None, 0, lines_in_file=scan.physical_lines, blank_lines=scan.physical_lines
        )

    problems: list[LineProblem] = []
    if scan.needs_clean_copy:
        read_path = scratch / f"file-{index}.txt"
        problems = write_clean_copy(path, read_path, scan)
        compression = "none"
        if scan.cr_line_endings:
            warnings.append(
                f"{source_file}: the file ends its lines with CR only (classic Mac); each CR "
                "was read as a line break"
            )
        if header_lines and problems and problems[0].line_number == 1:
            warnings.append(f"{source_file}: line 1 (the header) holds a stray CR; read as a space")
            problems = problems[1:]
    else:
        # A link with a plain name: DuckDB globs '*', '?' and '[' in the paths it reads.
        gzipped = path.name.lower().endswith(".gz")
        read_path = scratch / f"file-{index}{'.gz' if gzipped else ''}"
        os.symlink(os.path.abspath(path), read_path)
        compression = "gzip" if gzipped else "none"

    lines_table = f"_ingest_lines_{index}"
    try:
        try:
            _read_lines(con, read_path, lines_table, compression)
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:
            raise PartitionLoadError(
                spec.name,
                dt,
                source_file,
                f"{source_file}: the file could not be read to its end ({_first_line(exc)}); "
                f"it may have changed while it was read. Nothing was loaded for {spec.name} "
                f"dt={dt.isoformat()}, which keeps its previous contents: re-run the day.",
            ) from None
        if problems:
            _mark_problem_lines(con, lines_table, problems)
        first_data_line = header_lines + 1
        records_sql = (
            f"SELECT ln, line AS record, read_error FROM {lines_table} "
            f"WHERE ln >= {first_data_line} AND (line IS NOT NULL OR read_error IS NOT NULL)"
        )
        parse_sql = _parse_sql(spec, header, records_sql)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {parsed_table} AS {parse_sql}")
        continuation_lines = 0
        if spec.file_format == "csv" and _has_odd_quotes(con, parsed_table):
            assert header is not None
            blank_lines = _group_multiline_records(con, lines_table, header.n_fields)
            records_sql = "SELECT ln, record, read_error FROM _ingest_records"
            parse_sql = _parse_sql(spec, header, records_sql)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {parsed_table} AS {parse_sql}")
            (n_records, continuation_lines) = con.execute(
                "SELECT count(*), coalesce(sum(n_lines - 1), 0) FROM _ingest_records"
            ).fetchone()
        else:
            # Counted on the input side, so the load audit checks the parse, not itself.
            (n_records, blank_lines) = con.execute(
                f"SELECT count(*) FILTER (WHERE line IS NOT NULL OR read_error IS NOT NULL), "
                f"count(*) FILTER (WHERE line IS NULL AND read_error IS NULL) "
                f"FROM {lines_table} WHERE ln >= {first_data_line}"
            ).fetchone()
    finally:
        con.execute(f"DROP TABLE IF EXISTS {lines_table}")
        con.execute("DROP TABLE IF EXISTS _ingest_records")
    n_suppressed = suppress_parsed_rows(con, spec.name, parsed_table)
    n_loaded, n_rejected = con.execute(
        f"SELECT count(*) FILTER (WHERE reject_reason IS NULL), "
        f"count(*) FILTER (WHERE reject_reason IS NOT NULL) FROM {parsed_table}"
    ).fetchone()
    parsed = _ParsedFile(
        source_file,
        parsed_table,
        rows_read=int(n_records),
        rows_loaded=int(n_loaded),
        rows_rejected=int(n_rejected),
        lines_in_file=scan.physical_lines,
        header_lines=header_lines,
        blank_lines=int(blank_lines),
        continuation_lines=int(continuation_lines),
        rows_suppressed=n_suppressed,
    )
    _check_line_accounting(spec, dt, parsed)
    return parsed


def _check_line_accounting(spec: RawTable, dt: date, parsed: _ParsedFile) -> None:
    """Every physical line is the header, blank, a continuation or exactly one record."""
    accounted = (
        parsed.header_lines + parsed.blank_lines + parsed.continuation_lines + parsed.rows_read
    )
    if accounted != parsed.lines_in_file or parsed.rows_read != (
        parsed.rows_loaded + parsed.rows_rejected + parsed.rows_suppressed
    ):
        raise PartitionLoadError(
            spec.name,
            dt,
            parsed.source_file,
            f"{parsed.source_file}: the file has {parsed.lines_in_file:,} lines (counted from "
            f"its bytes) but the reader accounted for {accounted:,} ({parsed.header_lines} "
            f"header, {parsed.blank_lines:,} blank, {parsed.continuation_lines:,} continuation, "
            f"{parsed.rows_read:,} records = {parsed.rows_loaded:,} loaded + "
            f"{parsed.rows_rejected:,} rejected + {parsed.rows_suppressed:,} suppressed). Nothing was loaded for {spec.name} "
            f"dt={dt.isoformat()}, which keeps its previous contents. The file may have "
            "changed while it was read: re-run the day; if this persists, report it as a "
            "loader bug together with the file.",
        )


def _reject_every_line(
    con: duckdb.DuckDBPyConnection,
    spec: RawTable,
    source_file: str,
    scan: FileScan,
    parsed_table: str,
    warnings: list[str],
) -> _ParsedFile:
    """A file in an encoding the contract excludes (UTF-16): each data line is a reject."""
    assert scan.encoding_problem
    header_lines = 1 if spec.file_format == "csv" else 0
    first, last = header_lines + 1, scan.physical_lines
    typed_nulls = ", ".join(f"CAST(NULL AS {c.type}) AS {c.name}" for c in spec.columns)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {parsed_table} AS
        SELECT range AS ln, {typed_nulls}, CAST(NULL AS VARCHAR) AS reject_column,
               {_sql_str(scan.encoding_problem)} AS reject_reason, false AS odd_quotes,
               CAST(NULL AS VARCHAR) AS record
        FROM range({first}, {last + 1})
        """
    )
    n = max(0, last - first + 1)
    warnings.append(f"{source_file}: {scan.encoding_problem}; its {n:,} data line(s) were rejected")
    return _ParsedFile(
        source_file,
        parsed_table,
        rows_read=n,
        rows_rejected=n,
        lines_in_file=scan.physical_lines,
        header_lines=min(header_lines, scan.physical_lines),
    )


def _mark_problem_lines(
    con: duckdb.DuckDBPyConnection, lines_table: str, problems: list[LineProblem]
) -> None:
    """Turn the lines the clean copy emptied (NUL, stray CR) into read errors at their line."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _ingest_problems (ln BIGINT, preview VARCHAR, reason VARCHAR)"
    )
    con.executemany(
        "INSERT INTO _ingest_problems VALUES (?, ?, ?)",
        [[p.line_number, p.preview, p.reason] for p in problems],
    )
    con.execute(
        f"UPDATE {lines_table} AS l SET line = p.preview, read_error = p.reason "
        f"FROM _ingest_problems p WHERE l.ln = p.ln"
    )
    con.execute("DROP TABLE _ingest_problems")


def _has_odd_quotes(con: duckdb.DuckDBPyConnection, parsed_table: str) -> bool:
    (odd,) = con.execute(
        f"SELECT coalesce(bool_or(odd_quotes), false) FROM {parsed_table}"
    ).fetchone()
    return bool(odd)


def _parse_sql(spec: RawTable, header: _CsvHeader | None, records_sql: str) -> str:
    if spec.file_format == "csv":
        assert header is not None
        return _csv_parse_sql(spec, header, records_sql)
    return _jsonl_parse_sql(spec, records_sql)


def _lines_source_sql(path: Path | str, compression: str = "auto") -> str:
    """The file as (line, ln) rows: DuckDB's CSV reader with no delimiter and no quoting.

    `line` is NULL for a blank line; `ln` is the 1-based physical line. Lines that are not
    UTF-8 (or too long) are left out and logged in `_ingest_read_errors`.
    Hive partitioning is off: the `dt=` folder would otherwise become an extra column.
    """
    return f"""
        SELECT line, ln
        FROM read_csv(
            {_sql_str(str(path))},
            columns = {{'line': 'VARCHAR'}},
            header = false, auto_detect = false,
            delim = '', quote = '', escape = '',
            strict_mode = false, encoding = 'utf-8',
            hive_partitioning = false, filename = false,
            compression = {_sql_str(compression)},
            store_rejects = true,
            rejects_table = '_ingest_read_errors', rejects_scan = '_ingest_read_scans'
        ) WITH ORDINALITY AS lines(line, ln)
    """


def _drop_reader_rejects(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP TABLE IF EXISTS _ingest_read_errors")
    con.execute("DROP TABLE IF EXISTS _ingest_read_scans")


def _read_lines(
    con: duckdb.DuckDBPyConnection, path: Path | str, lines_table: str, compression: str = "auto"
) -> None:
    """Materialise a (possibly gzipped) text file as `lines_table(ln, line, read_error)`.

    Lines the reader could not decode are put back at their physical line number, with
    `read_error` saying why, so they become rejects instead of vanishing.
    """
    _drop_reader_rejects(con)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {lines_table} AS
        SELECT ln, line, CAST(NULL AS VARCHAR) AS read_error
        FROM ({_lines_source_sql(path, compression)})
        """
    )
    (n_errors,) = con.execute("SELECT count(*) FROM _ingest_read_errors").fetchone()
    if n_errors:
        _restore_unreadable_lines(con, lines_table)
    _drop_reader_rejects(con)


def _restore_unreadable_lines(con: duckdb.DuckDBPyConnection, lines_table: str) -> None:
    """Shift line numbers past the lines the reader dropped, and put those lines back.

    With r_1 < r_2 < ... the dropped physical lines, r_j - j readable lines precede r_j, so
    output row k sits at physical line k + max{j : r_j - j < k} (an ASOF join).
    """
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _ingest_dropped AS
        SELECT CAST(line AS BIGINT) AS ln,
               CAST(row_number() OVER (ORDER BY line) AS BIGINT) AS j,
               arg_min(error_type::VARCHAR, error_type::VARCHAR) AS error_type,
               arg_min(csv_line, error_type::VARCHAR) AS csv_line
        FROM _ingest_read_errors
        GROUP BY line
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {lines_table} AS
        WITH shifts AS (
            SELECT ln - j AS readable_before, max(j) AS shift
            FROM _ingest_dropped GROUP BY ALL
        )
        SELECT ln, line, read_error FROM (
            SELECT l.ln + coalesce(s.shift, 0) AS ln, l.line, l.read_error
            FROM {lines_table} l ASOF LEFT JOIN shifts s ON l.ln > s.readable_before
            UNION ALL
            SELECT ln,
                   ltrim(csv_line, chr(13) || chr(10)),
                   CASE error_type
                       WHEN 'INVALID ENCODING' THEN
                           'the line is not valid UTF-8 (invalid byte sequence); re-export the '
                           || 'file as UTF-8 and re-deliver it'
                       WHEN 'LINE SIZE OVER MAXIMUM' THEN
                           'the line is longer than the reader''s 2 MB line limit; check the '
                           || 'export for a missing line break and re-deliver the file'
                       ELSE 'the line could not be read (' || error_type || '); re-deliver the file'
                   END
            FROM _ingest_dropped
        )
        ORDER BY ln
        """
    )
    con.execute("DROP TABLE _ingest_dropped")


# ------------------------------------------------------------------------- CSV parsing


def _group_multiline_records(
    con: duckdb.DuckDBPyConnection, lines_table: str, n_fields: int
) -> int:
    """Join physical lines into CSV records where a quoted field spans line breaks.

    A line with an odd number of quote characters opens (or closes) a quoted field. A
    multi-line group is accepted when the joined text is a well-formed record with the
    header's field count. Otherwise the group's first line is an unterminated quote: it
    becomes a record on its own (rejected later) and the lines after it are re-grouped
    from scratch, so one stray quote does not swallow the rest of the file.
    Returns the number of blank lines outside any record (they are not records).
    """
    con.execute("CREATE OR REPLACE TEMP TABLE _ingest_forced (ln BIGINT PRIMARY KEY)")
    rounds = 0
    while True:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _ingest_records AS
            WITH marked AS (
                SELECT l.ln, l.line, l.read_error,
                       (l.read_error IS NOT NULL OR f.ln IS NOT NULL) AS forced,
                       CASE WHEN l.read_error IS NULL AND f.ln IS NULL AND contains(l.line, '"')
                            THEN (length(l.line) - length(replace(l.line, '"', ''))) % 2
                            ELSE 0 END AS odd_quotes
                FROM {lines_table} l LEFT JOIN _ingest_forced f USING (ln)
                WHERE l.ln > 1
            ),
            segmented AS (
                SELECT *, sum(forced::INT) OVER (ORDER BY ln) AS segment FROM marked
            ),
            opened AS (
                SELECT *, coalesce(sum(odd_quotes) OVER (
                              PARTITION BY segment ORDER BY ln
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) % 2
                          AS open_before
                FROM segmented
            ),
            numbered AS (
                SELECT *, sum((forced OR open_before = 0)::INT) OVER (ORDER BY ln) AS record_no
                FROM opened
            )
            SELECT min(ln) AS ln,
                   string_agg(coalesce(line, ''), chr(10) ORDER BY ln) AS record,
                   any_value(read_error) AS read_error,
                   count(*) AS n_lines,
                   bool_and(line IS NULL) AS blank,
                   sum(odd_quotes) % 2 = 1 AS unclosed
            FROM numbered
            GROUP BY record_no
            ORDER BY ln
            """
        )
        limit = "LIMIT 1" if rounds < _MAX_PRECISE_QUOTE_REPAIRS else ""
        inserted = con.execute(
            f"""
            INSERT INTO _ingest_forced
            SELECT ln FROM _ingest_records
            WHERE n_lines > 1 AND (
                unclosed
                OR NOT regexp_full_match(',' || record, '{_CSV_RECORD_RE}')
                OR len(regexp_extract_all(',' || record, '{_CSV_FIELD_RE}', 1)) <> {n_fields})
            ORDER BY ln {limit}
            """
        ).fetchone()[0]
        if not inserted:
            break
        rounds += 1
    (blank_lines,) = con.execute(
        "SELECT coalesce(sum(n_lines), 0) FROM _ingest_records WHERE blank"
    ).fetchone()
    con.execute("DELETE FROM _ingest_records WHERE blank")
    con.execute("DROP TABLE _ingest_forced")
    return int(blank_lines)


def _csv_parse_sql(spec: RawTable, header: _CsvHeader, records_sql: str) -> str:
    """SELECT producing one row per record: typed columns plus reject_column/reject_reason."""
    n = header.n_fields
    unquote = (
        "lambda f: CASE WHEN starts_with(f, '\"') THEN replace(f[2:-2], '\"\"', '\"') ELSE f END"
    )
    raw_values = ",\n".join(
        f"NULLIF(fields[{header.column_positions[c.name]}], '') AS s_{c.name}" for c in spec.columns
    )
    return f"""
    WITH records AS ({records_sql}),
    shaped AS (
        SELECT ln, record, read_error, pieces,
               len(pieces) % 2 = 0 AS odd_quotes,
               CASE WHEN len(pieces) % 2 = 1
                    THEN regexp_full_match(',' || record, '{_CSV_RECORD_RE}') END AS well_formed
        FROM (
            SELECT *, CASE WHEN contains(record, '"') THEN string_split(record, '"') END AS pieces
            FROM records
        )
    ),
    split AS (
        SELECT ln, record, odd_quotes,
               CASE
                   WHEN read_error IS NOT NULL THEN NULL
                   WHEN pieces IS NULL THEN string_split(record, ',')
                   WHEN NOT well_formed THEN NULL
                   WHEN contains(record, chr(31)) THEN list_transform(
                       regexp_extract_all(',' || record, '{_CSV_FIELD_RE}', 1), {unquote})
                   ELSE {_SPLIT_QUOTED_RECORD}
               END AS fields,
               CASE
                   WHEN read_error IS NOT NULL THEN read_error
                   WHEN odd_quotes THEN
                       'the line has an unterminated quoted field (odd number of double quotes), '
                       || 'so its fields cannot be told apart; fix the quoting in the export and '
                       || 're-deliver the file'
                   WHEN NOT well_formed THEN
                       'the line is not valid CSV quoting (a double quote inside an unquoted field '
                       || 'or text after a closing quote); quote the field and double inner quotes, '
                       || 'then re-deliver the file'
               END AS structure_error
        FROM shaped
    ),
    counted AS (
        SELECT ln, record, coalesce(odd_quotes, false) AS odd_quotes,
               coalesce(structure_error, CASE WHEN len(fields) <> {n} THEN
                   'the line has ' || len(fields) || ' fields but the header has {n}; '
                   || 'an unquoted comma or a missing field shifts the columns: fix the export '
                   || 'and re-deliver the file' END) AS structure_error,
               {raw_values}
        FROM split
    )
    {_typed_select(spec, "counted")}
    """


# ------------------------------------------------------------------ JSON lines parsing


def _jsonl_parse_sql(spec: RawTable, records_sql: str) -> str:
    """SELECT typing Segment-spec JSON lines: one row per non-blank line.

    Each line is parsed once, by `json_transform` into a struct shaped like the contract
    (nested fields such as context.page.url included). Only lines that come out without
    a messageId are inspected further, to tell "not JSON" and "not an object" apart.
    """
    raw_values = ",\n".join(
        f"{_struct_access(c)} AS s_{c.name}"
        if c.type == "JSON"
        else f"NULLIF({_struct_access(c)}, '') AS s_{c.name}"
        for c in spec.columns
    )
    message_id = _struct_access(spec.column("message_id"))
    return f"""
    WITH records AS ({records_sql}),
    transformed AS (
        SELECT ln, record, read_error,
               CASE WHEN read_error IS NULL
                    THEN TRY(json_transform(record, {_sql_str(_json_struct(spec))})) END AS v
        FROM records
    ),
    counted AS (
        SELECT ln, record, false AS odd_quotes,
               CASE
                   WHEN read_error IS NOT NULL THEN read_error
                   WHEN v IS NOT NULL AND {message_id} IS NOT NULL THEN NULL
                   WHEN NOT json_valid(record) THEN
                       'the line is not valid JSON; each line must be one complete JSON object: '
                       || 'fix the producer and re-deliver the file'
                   WHEN json_type(record) <> 'OBJECT' THEN
                       'the line is a JSON '
                       || CASE json_type(record) WHEN 'VARCHAR' THEN 'string'
                               WHEN 'ARRAY' THEN 'array' WHEN 'BOOLEAN' THEN 'boolean'
                               WHEN 'NULL' THEN 'null' ELSE 'number' END
                       || ', not an object; each line must be one Segment event object: fix '
                       || 'the producer and re-deliver the file'
               END AS structure_error,
               {raw_values}
        FROM transformed
    )
    {_typed_select(spec, "counted")}
    """


def _json_struct(spec: RawTable) -> str:
    """The json_transform structure: every contract field, nested as in the JSON."""
    tree: dict = {}
    for column in spec.columns:
        *parents, leaf = column.source_name.split(".")
        node = tree
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = "JSON" if column.type == "JSON" else "VARCHAR"
    return json.dumps(tree)


def _struct_access(column: Column) -> str:
    return "v" + "".join(f"['{part}']" for part in column.source_name.split("."))


# --------------------------------------------------------------------- typing (shared)


def _typed_select(spec: RawTable, source: str) -> str:
    """Typed values, the first offending column and every problem, from the s_<col> text.

    A cheap boolean per column decides whether a row is bad; the reason sentences are only
    built for bad rows. `record` (the raw line) is kept only for rejected rows too: good
    rows never need it, and copying every line would double the bytes a load moves.
    """
    typed = ",\n".join(f"{_typed_expr(c)} AS {c.name}" for c in spec.columns)
    rules = _row_rules(spec)
    checks = [(c.name, _is_bad_expr(c), _problem_expr(spec, c)) for c in spec.columns]
    checks += [(name, condition, reason) for name, (condition, reason) in rules.items()]
    any_bad = " OR ".join(f"({condition})" for _, condition, _ in checks)
    reasons = ", ".join(
        f"CASE WHEN {condition} THEN {reason} END" for _, condition, reason in checks
    )
    first_column = " ".join(f"WHEN {condition} THEN '{name}'" for name, condition, _ in checks)
    column_names = ", ".join(c.name for c in spec.columns)
    raw_names = ", ".join(f"s_{c.name}" for c in spec.columns)
    return f"""
    , typed AS (
        SELECT ln, record, odd_quotes, structure_error, {raw_names},
               {typed}
        FROM {source}
    ),
    verdict AS (
        SELECT ln, record, odd_quotes, {column_names},
               structure_error IS NULL AND ({any_bad}) AS bad_value
        , structure_error, {raw_names}
        FROM typed
    ),
    judged AS (
        SELECT ln, record, odd_quotes, {column_names},
               CASE WHEN bad_value THEN CASE {first_column} END END AS reject_column,
               CASE WHEN structure_error IS NOT NULL THEN structure_error
                    WHEN bad_value THEN concat_ws('; ', {reasons}) || '. {_FIX_VALUE}'
               END AS reject_reason
        FROM verdict
    )
    SELECT ln, {column_names}, reject_column, reject_reason, odd_quotes,
           CASE WHEN reject_reason IS NOT NULL THEN left(record, {RAW_RECORD_MAX_CHARS}) END
               AS record
    FROM judged
    """


def _is_bad_expr(column: Column) -> str:
    """True when the column's value makes the row unloadable (cheap: no strings built).

    Never NULL: every comparison on a value is guarded by a presence test, so the OR of
    all columns' conditions is a plain boolean. Text kept as delivered is never trimmed
    here (trimming copies every long string): a blank test looks at the first character
    and a format pattern allows the surrounding spaces itself.
    """
    s = f"s_{column.name}"
    violation = _domain_violation(column)
    if _kept_as_delivered(column):
        blank = f"{s} IS NULL OR {s} = '' OR (starts_with({s}, ' ') AND trim({s}) = '')"
        if column.required:
            return f"({blank})" + (f" OR ({violation})" if violation else "")
        return f"NOT ({blank}) AND ({violation})" if violation else "false"
    conditions = []
    if column.required:
        conditions.append(f"{column.name} IS NULL")
    elif column.type != "VARCHAR":
        conditions.append(f"{column.name} IS NULL AND NULLIF(trim({s}), '') IS NOT NULL")
    if violation:
        conditions.append(f"{column.name} IS NOT NULL AND {violation}")
    return " OR ".join(f"({c})" for c in conditions) or "false"


def _kept_as_delivered(column: Column) -> bool:
    """Text stored exactly as delivered (not trimmed, not lower-cased): most VARCHARs, JSON."""
    return column.type == "JSON" or (column.type == "VARCHAR" and not column.stored_lower_case)


def _present_value(column: Column) -> str:
    """SQL that is NULL exactly when the column has no value (absent, empty or blank)."""
    if column.type == "VARCHAR" and column.stored_lower_case:
        return column.name  # lower(NULLIF(trim(value), '')): already NULL when blank
    return f"NULLIF(trim(s_{column.name}), '')"


def _typed_expr(column: Column) -> str:
    s = f"s_{column.name}"
    t = f"NULLIF(trim({s}), '')"
    if _kept_as_delivered(column):
        return s
    if column.type == "VARCHAR":
        return f"lower({t})"
    if column.type == "TIMESTAMP":
        return f"timezone('UTC', TRY_CAST({t} AS TIMESTAMPTZ))"
    if column.type == "BOOLEAN":
        true_words = ", ".join(f"'{w}'" for w in _TRUE_WORDS)
        false_words = ", ".join(f"'{w}'" for w in _FALSE_WORDS)
        return (
            f"CASE WHEN lower({t}) IN ({true_words}) THEN true "
            f"WHEN lower({t}) IN ({false_words}) THEN false END"
        )
    if column.type == "BIGINT":
        return (
            f"CASE WHEN regexp_full_match({t}, '[+-]?[0-9]+(\\.0+)?') "
            f"THEN TRY_CAST({t} AS BIGINT) END"
        )
    raise ValueError(f"no typing rule for {column.type}")


def _domain_violation(column: Column) -> str | None:
    """SQL true when a present, typed value breaks the contract's domain rule, else None.

    Meaningful only for a present, typed value; `_is_bad_expr` adds the presence guard.
    """
    if column.allowed is not None:
        return f"{column.name} NOT IN ({', '.join(_sql_str(v) for v in column.allowed)})"
    if column.min_value is not None or column.max_value is not None:
        bounds = []
        if column.min_value is not None:
            bounds.append(f"{column.name} < {int(column.min_value)}")
        if column.max_value is not None:
            bounds.append(f"{column.name} > {int(column.max_value)}")
        return "(" + " OR ".join(bounds) + ")"
    if check := column.format_check:
        if check.lower_case:
            return f"NOT regexp_full_match({column.name}, {_sql_str(check.pattern)})"
        # Matched as delivered, surrounding spaces allowed: the same verdict as on
        # trim(value) (DuckDB's trim removes spaces only) without copying the string.
        pattern = f" *(?:{check.pattern}) *"
        return f"NOT regexp_full_match(s_{column.name}, {_sql_str(pattern)})"
    return None


def _problem_expr(spec: RawTable, column: Column) -> str:
    """SQL for the problem sentence of one column (NULL when the value is fine)."""
    s = f"s_{column.name}"
    label = _column_label(spec, column)
    # The value as delivered, quoted, with inner quotes doubled (chr(39) is ').
    shown = f"replace(left({s}, {VALUE_IN_REASON_MAX_CHARS}), chr(39), chr(39) || chr(39))"
    has_value = f"{_sql_str(label + ' has value ' + chr(39))} || {shown} || chr(39)"
    missing = _sql_str(f"required {label} is missing or empty") if column.required else "NULL"
    cases = [f"WHEN {_present_value(column)} IS NULL THEN {missing}"]
    if column.type in ("TIMESTAMP", "BOOLEAN", "BIGINT"):
        expected = _sql_str(f", which is not {_EXPECTED[column.type]}")
        cases.append(f"WHEN {column.name} IS NULL THEN {has_value} || {expected}")
    if violation := _domain_violation(column):
        cases.append(f"WHEN {violation} THEN {has_value} || {_sql_str(_domain_rule(column))}")
    return f"CASE {' '.join(cases)} END"


def _domain_rule(column: Column) -> str:
    """The end of a domain reject's sentence: what the contract allows instead."""
    if column.allowed is not None:
        return f", expected one of {', '.join(column.allowed)} (in any letter case)"
    if column.min_value is not None and column.max_value is not None:
        subject = column.meaning or "the value"
        return (
            f", but {subject} must be a whole number from {column.min_value} to {column.max_value}"
        )
    if column.max_value is not None:
        return f", but {column.meaning or 'the value'} must be at most {column.max_value}"
    if column.min_value is not None:
        subject = column.meaning or "the value"
        if column.min_value == 0:
            return f", but {subject} cannot be negative"
        return f", but {subject} must be at least {column.min_value}"
    if check := column.format_check:
        return f", which is not {check.expected}"
    raise ValueError(f"{column.name} has no domain rule")


def _row_rules(spec: RawTable) -> dict[str, tuple[str, str]]:
    """Rules across columns (docs/data-model.md, web_events): column -> (condition, reason)."""
    if spec.name != "web_events":
        return {}
    return {
        "anonymous_id": (
            "s_anonymous_id IS NULL AND s_user_id IS NULL",
            "'neither ''anonymousId'' nor ''userId'' is present; every event needs at least "
            "one of them'",
        ),
    }


def _column_label(spec: RawTable, column: Column) -> str:
    """How a reason names the column: the CSV column, or the JSON field (and its column)."""
    if spec.file_format == "csv":
        return f"column '{column.name}'"
    if column.source_name == column.name:
        return f"field '{column.name}'"
    return f"field '{column.source_name}' (column {column.name})"


# ------------------------------------------------------------------ the transaction


def _replace_partition(
    con: duckdb.DuckDBPyConnection,
    spec: RawTable,
    dt: date,
    parsed: list[_ParsedFile],
    skipped: list[FileLoadStats],
    loaded_at: datetime,
    allow_shrink: bool,
) -> list[FileLoadStats]:
    """Swap the day's rows in raw.<table>, raw.rejects and raw.load_audit, all or nothing.

    All files of the day go in with one INSERT per target table: a large enough append is
    written straight to the database file, compressed once, instead of through the WAL.
    The counts the inserts report are checked against the per-file counts before COMMIT.
    Inside the same transaction, before deleting anything, the day's current record count
    is compared with the new one: a shrink is refused unless `allow_shrink`.
    """
    column_names = ", ".join(c.name for c in spec.columns)
    dt_sql = f"DATE '{dt.isoformat()}'"
    loaded_sql = f"TIMESTAMP '{loaded_at.isoformat(sep=' ')}'"
    table_sql = _sql_str(spec.name)
    with_rows = [item for item in parsed if item.parsed_table]
    good_rows = " UNION ALL ".join(
        f"SELECT {column_names}, {dt_sql}, {_sql_str(item.source_file)}, ln, {loaded_sql} "
        f"FROM {item.parsed_table} WHERE reject_reason IS NULL"
        for item in with_rows
    )
    bad_rows = " UNION ALL ".join(
        f"SELECT {table_sql}, {dt_sql}, {_sql_str(item.source_file)}, ln, reject_column, "
        f"record, reject_reason, {loaded_sql} "
        f"FROM {item.parsed_table} WHERE reject_reason IS NOT NULL"
        for item in with_rows
    )
    stats = [
        FileLoadStats(
            item.source_file,
            rows_read=item.rows_read,
            rows_loaded=item.rows_loaded,
            rows_rejected=item.rows_rejected,
            lines_in_file=item.lines_in_file,
            header_lines=item.header_lines,
            blank_lines=item.blank_lines,
            continuation_lines=item.continuation_lines,
            rows_suppressed=item.rows_suppressed,
        )
        for item in parsed
    ]
    for s in stats:
        if s.rows_read != s.rows_loaded + s.rows_rejected + s.rows_suppressed:
            raise RuntimeError(
                f"{s.source_file}: read {s.rows_read} records but typed {s.rows_loaded} and "
                f"rejected {s.rows_rejected}; this is a loader bug, nothing was written"
            )
    rows_now = sum(s.rows_read for s in stats)

    con.execute("BEGIN TRANSACTION")
    try:
        (rows_before,) = con.execute(
            f"SELECT (SELECT count(*) FROM {spec.qualified_name} WHERE _dt = {dt_sql}) + "
            f"(SELECT count(*) FROM {REJECTS_TABLE} WHERE source_table = {table_sql} "
            f"AND dt = {dt_sql})"
        ).fetchone()
        if rows_now < rows_before and not allow_shrink:
            raise _shrink_refused(spec, dt, rows_before, rows_now, len(stats))
        con.execute(f"DELETE FROM {spec.qualified_name} WHERE _dt = {dt_sql}")
        for name in (REJECTS_TABLE, LOAD_AUDIT_TABLE):
            con.execute(f"DELETE FROM {name} WHERE source_table = {table_sql} AND dt = {dt_sql}")
        loaded = rejected = 0
        if with_rows:
            loaded = _count(
                con.execute(
                    f"INSERT INTO {spec.qualified_name} "
                    f"({column_names}, _dt, _source_file, _line_number, _loaded_at) {good_rows}"
                )
            )
            rejected = _count(con.execute(f"INSERT INTO {REJECTS_TABLE} {bad_rows}"))
        if (loaded, rejected) != (
            sum(s.rows_loaded for s in stats),
            sum(s.rows_rejected for s in stats),
        ):
            raise RuntimeError(
                f"{spec.name} dt={dt}: wrote {loaded} rows and {rejected} rejects, which does "
                "not match the per-file counts; this is a loader bug, nothing was committed"
            )
        audit = stats + skipped
        if audit:
            names = [name for name, _ in LOAD_AUDIT_COLUMNS]
            con.executemany(
                f"INSERT INTO {LOAD_AUDIT_TABLE} ({', '.join(names)}) "
                f"VALUES ({', '.join('?' for _ in names)})",
                [
                    [
                        spec.name,
                        dt,
                        s.source_file,
                        s.rows_read,
                        s.rows_loaded,
                        s.rows_rejected,
                        loaded_at,
                        s.lines_in_file,
                        s.header_lines,
                        s.blank_lines,
                        s.continuation_lines,
                        s.note,
                        s.rows_suppressed,
                    ]
                    for s in audit
                ],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return stats + skipped


def _shrink_refused(
    spec: RawTable, dt: date, rows_before: int, rows_now: int, n_files: int
) -> ShrinkRefusedError:
    what = (
        "no data file at all (an empty, missing or unmounted landing folder?)"
        if n_files == 0
        else f"{rows_now:,} record(s) in {n_files} file(s)"
    )
    return ShrinkRefusedError(
        spec.name,
        dt,
        f"{spec.name} dt={dt.isoformat()} holds {rows_before:,} record(s) in raw (loaded + "
        f"rejected) but its landing folder now yields {what}: re-loading would shrink the "
        "day, so nothing was replaced and the day keeps its previous contents. If the "
        "landing zone is incomplete (not mounted, files missing), fix that and re-run the "
        "day; if the source really withdrew rows, re-run it with `cdp run --allow-shrink` "
        "(in the Dagster UI: run config `allow_shrink: true` on the raw asset).",
        rows_before=rows_before,
        rows_now=rows_now,
    )


# --------------------------------------------------------------------------- helpers


@contextmanager
def _loader_session(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Session settings the SQL relies on (the connection is the caller's).

    TimeZone=UTC makes ISO timestamps without an offset parse as UTC; it is a per-session
    setting and is restored afterwards. preserve_insertion_order keeps WITH ORDINALITY equal
    to the physical line order; it is database-wide (DuckDB's default is on), so it is only
    switched on, with a warning, never switched back off under a concurrent load.
    """
    (saved_zone,) = con.execute("SELECT current_setting('TimeZone')").fetchone()
    (keeps_order,) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()
    if not keeps_order:
        log.warning("preserve_insertion_order was off; the loader needs it and turned it on")
        con.execute("SET preserve_insertion_order = true")
    con.execute("SET TimeZone = 'UTC'")
    try:
        yield
    finally:
        con.execute(f"SET TimeZone = {_sql_str(saved_zone)}")


def _count(cursor: duckdb.DuckDBPyConnection) -> int:
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def _relative(landing_dir: Path, path: Path) -> str:
    return Path(os.path.relpath(path, landing_dir)).as_posix()


def _as_utc_naive(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
