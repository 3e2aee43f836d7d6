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
* Gzip files are read by DuckDB; a truncated or corrupt one is decompressed by zlib as far
  as it goes, its complete lines load and the lost tail becomes one reject.

Counting rule (the `raw.load_audit` invariant `rows_read = rows_loaded + rows_rejected`):
a *record* is a non-blank CSV data line (header excluded), a multi-line quoted record
counting once, or a non-blank JSON line. Blank lines carry no data and are not records.
An unreadable file, or the unreadable tail of a truncated gzip, counts as one record,
rejected.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import os
import tempfile
import time
import zlib
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
from ingestion.errors import PartitionLoadError, UnknownTableError

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
HEADER_MAX_BYTES = 1 << 20

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
    """What happened to one landing file. Always rows_read = rows_loaded + rows_rejected."""

    source_file: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int


@dataclass(frozen=True)
class PartitionLoadResult:
    """Outcome of loading one (table, dt) partition; what a Dagster asset reports."""

    table: str
    dt: date
    files: list[FileLoadStats]
    rows_loaded: int
    rows_rejected: int
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)


@dataclass
class _WholeRecordReject:
    """A reject that is not a parsed row: an unreadable file or a truncated gzip tail."""

    line_number: int | None
    raw_record: str | None
    reason: str


@dataclass
class _ParsedFile:
    """One file parsed into a temp table, waiting for the partition transaction."""

    source_file: str
    parsed_table: str | None
    extra_rejects: list[_WholeRecordReject]
    rows_read: int
    rows_loaded: int = 0
    rows_rejected: int = 0  # rows of parsed_table only; extra_rejects come on top


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
) -> PartitionLoadResult:
    """Replace partition `dt` of `raw.<table>` with the files in its landing folder.

    Bad rows go to `raw.rejects`; per-file counts go to `raw.load_audit`. Raises
    `PartitionLoadError`, before writing anything, when a file breaks the contract as a
    whole (a contract column missing from a CSV header). A missing or empty day folder
    loads zero rows and clears whatever that day held before.
    The connection must not be inside an open transaction.
    """
    started = time.perf_counter()
    spec = _table_spec(table)
    landing_dir = Path(landing_dir)
    loaded_at_utc = _as_utc_naive(loaded_at or datetime.now(UTC))
    warnings: list[str] = []

    files = _discover_files(spec, dt, landing_dir, warnings)
    headers = {path: _check_header(spec, dt, landing_dir, path, warnings) for path in files}

    ensure_raw_schema(con)
    parsed: list[_ParsedFile] = []
    with _loader_session(con), tempfile.TemporaryDirectory(prefix="cdp-ingest-") as scratch:
        try:
            for index, path in enumerate(files):
                parsed.append(
                    _parse_file(con, spec, landing_dir, path, headers[path], index, Path(scratch))
                )
            stats = _replace_partition(con, spec, dt, parsed, loaded_at_utc)
        finally:
            for item in parsed:
                if item.parsed_table:
                    con.execute(f"DROP TABLE IF EXISTS {item.parsed_table}")

    result = PartitionLoadResult(
        table=spec.name,
        dt=dt,
        files=stats,
        rows_loaded=sum(s.rows_loaded for s in stats),
        rows_rejected=sum(s.rows_rejected for s in stats),
        warnings=warnings,
        elapsed_s=round(time.perf_counter() - started, 3),
    )
    log.info(
        "loaded %s dt=%s: %d files, %d rows loaded, %d rejected in %.2fs",
        spec.name,
        dt,
        len(stats),
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
) -> list[PartitionLoadResult]:
    """Backfill several days in one run; each day is its own atomic partition load.

    With `max_workers` > 1, days load concurrently, each on its own cursor of `con`
    (DuckDB runs them in parallel; each still commits atomically). Results come back in
    date order. A `PartitionLoadError` is raised after the other days have finished: the
    days that loaded are committed, the failing day keeps its previous contents.
    """
    days = sorted(set(dts))
    if max_workers <= 1 or len(days) <= 1:
        return [load_partition(con, table, dt, landing_dir, loaded_at) for dt in days]
    ensure_raw_schema(con)

    def load_on_own_cursor(dt: date) -> PartitionLoadResult:
        with con.cursor() as cursor:
            return load_partition(cursor, table, dt, landing_dir, loaded_at)

    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="cdp-load") as pool:
        futures = [pool.submit(load_on_own_cursor, dt) for dt in days]
        wait(futures)
    return [future.result() for future in futures]


# ----------------------------------------------------------------- discovery and headers


def _table_spec(table: str) -> RawTable:
    try:
        return RAW_TABLES[table]
    except KeyError:
        raise UnknownTableError(
            f"unknown raw table {table!r}; expected one of {', '.join(RAW_TABLES)}"
        ) from None


def _discover_files(spec: RawTable, dt: date, landing_dir: Path, warnings: list[str]) -> list[Path]:
    day = landing_dir / spec.landing_path / f"dt={dt.isoformat()}"
    if not day.is_dir():
        return []
    files = []
    for path in sorted(day.iterdir()):
        if not path.is_file():
            continue
        if path.name.endswith(spec.file_suffixes):
            files.append(path)
        else:
            warnings.append(
                f"{_relative(landing_dir, path)}: ignored, {spec.landing_path} only takes "
                f"{' / '.join(spec.file_suffixes)} files"
            )
    return files


def _check_header(
    spec: RawTable, dt: date, landing_dir: Path, path: Path, warnings: list[str]
) -> _CsvHeader | None:
    """Map contract columns to header positions; raise if a contract column is missing.

    Returns None for JSON lines, empty files and files whose first line cannot be read
    (those become a whole-file reject later instead of failing the partition).
    """
    if spec.file_format != "csv":
        return None
    source_file = _relative(landing_dir, path)
    try:
        first_line = _read_first_line(path)
        if first_line is None or (not first_line.strip() and _is_blank_file(path)):
            return None
    except (OSError, EOFError, zlib.error):
        return None
    if not first_line.strip():
        raise PartitionLoadError(
            spec.name,
            dt,
            source_file,
            f"{source_file}: the first line, which must be the header, is empty although the "
            f"file has data after it. Re-deliver the file with the header on line 1; nothing "
            f"was loaded for {spec.name} dt={dt.isoformat()}, which keeps its previous contents.",
            line_number=1,
        )
    text = first_line.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
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
        found = ", ".join(names) if names else "an empty header"
        columns = ", ".join(repr(m) for m in missing)
        noun = "required column" if len(missing) == 1 else "required columns"
        verb = "is" if len(missing) == 1 else "are"
        raise PartitionLoadError(
            spec.name,
            dt,
            source_file,
            f"{source_file}: {noun} {columns} {verb} missing from the header on line 1 "
            f"(found: {found}). Every column of the {spec.name} contract "
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


def _read_first_line(path: Path) -> bytes | None:
    """The first line's bytes (decompressed), or None for a 0-byte file."""
    if path.stat().st_size == 0:
        return None
    with _open_binary(path) as handle:
        return handle.readline(HEADER_MAX_BYTES)


def _is_blank_file(path: Path) -> bool:
    with _open_binary(path) as handle:
        while chunk := handle.read(1 << 20):
            if chunk.strip():
                return False
    return True


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


# ----------------------------------------------------------------------- reading a file


def _parse_file(
    con: duckdb.DuckDBPyConnection,
    spec: RawTable,
    landing_dir: Path,
    path: Path,
    header: _CsvHeader | None,
    index: int,
    scratch: Path,
) -> _ParsedFile:
    """Parse one landing file into the temp table `_ingest_parsed_<index>`.

    The lines are materialised first: numbering lines (WITH ORDINALITY) is a serial step,
    and parsing from a table instead of from the reader lets DuckDB use every thread.
    CSV files whose lines have an odd number of quotes are parsed a second time, with
    the lines grouped into records (rare: quoted line breaks and broken quoting).
    """
    source_file = _relative(landing_dir, path)
    empty = _ParsedFile(source_file, None, [], 0)
    if path.stat().st_size == 0:
        return empty
    if spec.file_format == "csv" and header is None:
        # Not empty, yet no header: either blank all through or not readable at all.
        try:
            _read_first_line(path)
            _is_blank_file(path)
        except (OSError, EOFError, zlib.error) as exc:
            return _unreadable_file(source_file, exc)
        return empty

    parsed_table = f"_ingest_parsed_{index}"
    lines_table = f"_ingest_lines_{index}"
    extra_rejects: list[_WholeRecordReject] = []
    try:
        try:
            _read_lines(con, path, lines_table)
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:
            if not path.name.endswith(".gz"):
                return _unreadable_file(source_file, exc)
            tail = _salvage_gzip_prefix(con, path, lines_table, scratch / f"{index}.salvaged", exc)
            if tail is None:
                return _unreadable_file(source_file, exc)
            extra_rejects.append(tail)
        first_data_line = 2 if spec.file_format == "csv" else 1
        records_sql = (
            f"SELECT ln, line AS record, read_error FROM {lines_table} "
            f"WHERE ln >= {first_data_line} AND (line IS NOT NULL OR read_error IS NOT NULL)"
        )
        parse_sql = _parse_sql(spec, header, records_sql)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {parsed_table} AS {parse_sql}")
        if spec.file_format == "csv" and _has_odd_quotes(con, parsed_table):
            assert header is not None
            _group_multiline_records(con, lines_table, header.n_fields)
            records_sql = "SELECT ln, record, read_error FROM _ingest_records"
            parse_sql = _parse_sql(spec, header, records_sql)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {parsed_table} AS {parse_sql}")
        # Counted on the input side, so the load audit checks the parse, not itself.
        (n_records,) = con.execute(f"SELECT count(*) FROM ({records_sql})").fetchone()
    finally:
        con.execute(f"DROP TABLE IF EXISTS {lines_table}")
        con.execute("DROP TABLE IF EXISTS _ingest_records")
    n_loaded, n_rejected = con.execute(
        f"SELECT count(*) FILTER (WHERE reject_reason IS NULL), "
        f"count(*) FILTER (WHERE reject_reason IS NOT NULL) FROM {parsed_table}"
    ).fetchone()
    return _ParsedFile(
        source_file,
        parsed_table,
        extra_rejects,
        rows_read=n_records + len(extra_rejects),
        rows_loaded=n_loaded,
        rows_rejected=n_rejected,
    )


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


def _lines_source_sql(path: Path | str) -> str:
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
            store_rejects = true,
            rejects_table = '_ingest_read_errors', rejects_scan = '_ingest_read_scans'
        ) WITH ORDINALITY AS lines(line, ln)
    """


def _drop_reader_rejects(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP TABLE IF EXISTS _ingest_read_errors")
    con.execute("DROP TABLE IF EXISTS _ingest_read_scans")


def _read_lines(con: duckdb.DuckDBPyConnection, path: Path | str, lines_table: str) -> None:
    """Materialise a (possibly gzipped) text file as `lines_table(ln, line, read_error)`.

    Lines the reader could not decode are put back at their physical line number, with
    `read_error` saying why, so they become rejects instead of vanishing.
    """
    _drop_reader_rejects(con)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {lines_table} AS
        SELECT ln, line, CAST(NULL AS VARCHAR) AS read_error FROM ({_lines_source_sql(path)})
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


def _salvage_gzip_prefix(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    lines_table: str,
    salvaged: Path,
    error: Exception,
) -> _WholeRecordReject | None:
    """Load the complete lines of a truncated or corrupt gzip; one reject for the rest.

    Decompresses with zlib as far as the stream is readable, cuts at the last newline (a
    partial last line is never loaded) and reads that prefix like any file. Returns the
    reject for the unreadable tail, or None when not a single line could be recovered.
    """
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    complete = False
    with open(path, "rb") as source, open(salvaged, "wb") as target:
        try:
            while chunk := source.read(1 << 20):
                while chunk:
                    target.write(decompressor.decompress(chunk))
                    complete = decompressor.eof
                    if decompressor.eof:  # a gzip file may hold several members
                        chunk = decompressor.unused_data
                        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                    else:
                        chunk = b""
        except zlib.error:
            complete = False
    if complete:
        # zlib read it all, so DuckDB failed for another reason: no prefix to salvage.
        return None
    size = salvaged.stat().st_size
    with open(salvaged, "rb+") as handle:
        keep = 0
        if size:
            tail_start = max(0, size - (1 << 20))
            while True:
                handle.seek(tail_start)
                block = handle.read(size - tail_start)
                cut = block.rfind(b"\n")
                if cut >= 0:
                    keep = tail_start + cut + 1
                    break
                if tail_start == 0:
                    break
                tail_start = max(0, tail_start - (1 << 20))
        handle.seek(keep)
        partial_line = handle.read(RAW_RECORD_MAX_CHARS).decode("utf-8", errors="replace")
        handle.truncate(keep)
    if keep == 0:
        return None
    _read_lines(con, salvaged, lines_table)
    (last_line,) = con.execute(f"SELECT coalesce(max(ln), 0) FROM {lines_table}").fetchone()
    return _WholeRecordReject(
        line_number=last_line + 1,
        raw_record=partial_line or None,
        reason=(
            f"the gzip file is truncated or corrupt ({_first_line(error)}): lines 1-{last_line} "
            f"were recovered and loaded, everything from line {last_line + 1} on is lost; "
            "re-deliver the complete file"
        ),
    )


def _unreadable_file(source_file: str, error: Exception) -> _ParsedFile:
    reject = _WholeRecordReject(
        line_number=None,
        raw_record=None,
        reason=(
            f"the file could not be read at all ({_first_line(error)}); it is corrupt or not "
            "in the declared format: re-deliver it"
        ),
    )
    return _ParsedFile(source_file, None, [reject], 1)


# ------------------------------------------------------------------------- CSV parsing


def _group_multiline_records(
    con: duckdb.DuckDBPyConnection, lines_table: str, n_fields: int
) -> None:
    """Join physical lines into CSV records where a quoted field spans line breaks.

    A line with an odd number of quote characters opens (or closes) a quoted field. A
    multi-line group is accepted when the joined text is a well-formed record with the
    header's field count. Otherwise the group's first line is an unterminated quote: it
    becomes a record on its own (rejected later) and the lines after it are re-grouped
    from scratch, so one stray quote does not swallow the rest of the file.
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
    con.execute("DELETE FROM _ingest_records WHERE blank")
    con.execute("DROP TABLE _ingest_forced")


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
    loaded_at: datetime,
) -> list[FileLoadStats]:
    """Swap the day's rows in raw.<table>, raw.rejects and raw.load_audit, all or nothing.

    All files of the day go in with one INSERT per target table: a large enough append is
    written straight to the database file, compressed once, instead of through the WAL.
    The counts the inserts report are checked against the per-file counts before COMMIT.
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
    extra_rejects = [
        [spec.name, dt, item.source_file, r.line_number, r.raw_record, r.reason, loaded_at]
        for item in parsed
        for r in item.extra_rejects
    ]
    stats = [
        FileLoadStats(
            item.source_file,
            rows_read=item.rows_read,
            rows_loaded=item.rows_loaded,
            rows_rejected=item.rows_rejected + len(item.extra_rejects),
        )
        for item in parsed
    ]
    for s in stats:
        if s.rows_read != s.rows_loaded + s.rows_rejected:
            raise RuntimeError(
                f"{s.source_file}: read {s.rows_read} records but typed {s.rows_loaded} and "
                f"rejected {s.rows_rejected}; this is a loader bug, nothing was written"
            )

    con.execute("BEGIN TRANSACTION")
    try:
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
        if extra_rejects:
            con.executemany(
                f"INSERT INTO {REJECTS_TABLE} VALUES (?, ?, ?, ?, NULL, ?, ?, ?)", extra_rejects
            )
            rejected += len(extra_rejects)
        if (loaded, rejected) != (
            sum(s.rows_loaded for s in stats),
            sum(s.rows_rejected for s in stats),
        ):
            raise RuntimeError(
                f"{spec.name} dt={dt}: wrote {loaded} rows and {rejected} rejects, which does "
                "not match the per-file counts; this is a loader bug, nothing was committed"
            )
        if stats:
            con.executemany(
                f"INSERT INTO {LOAD_AUDIT_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    [
                        spec.name,
                        dt,
                        s.source_file,
                        s.rows_read,
                        s.rows_loaded,
                        s.rows_rejected,
                        loaded_at,
                    ]
                    for s in stats
                ],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return stats


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
