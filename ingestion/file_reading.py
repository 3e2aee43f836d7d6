"""Reading one landing file: its header, its physical lines, and the line accounting.

Every file is read as physical lines (delimiters and quoting off), so each record keeps
its 1-based line number and a broken quote or a bad byte costs one line, not the file.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from ingestion.column_typing import reject_reasons_update
from ingestion.contract import RawTable
from ingestion.delivery import FileScan, LineProblem, write_clean_copy
from ingestion.errors import PartitionLoadError
from ingestion.load_results import FileLoadStats
from ingestion.load_session import (
    first_error_line,
    parsed_statement,
    relative_path,
    sql_literal,
)
from ingestion.record_parsing import (
    CsvHeader,
    csv_parse_sql,
    csv_staged_ctes,
    group_multiline_records,
    jsonl_parse_sql,
    jsonl_staged_ctes,
    staged_select,
)
from ingestion.suppression import suppress_parsed_rows


@dataclass
class ParsedFile:
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

    def stats(self) -> FileLoadStats:
        """The file's `raw.load_audit` counts (what either engine's commit reports)."""
        return FileLoadStats(
            self.source_file,
            rows_read=self.rows_read,
            rows_loaded=self.rows_loaded,
            rows_rejected=self.rows_rejected,
            lines_in_file=self.lines_in_file,
            header_lines=self.header_lines,
            blank_lines=self.blank_lines,
            continuation_lines=self.continuation_lines,
            rows_suppressed=self.rows_suppressed,
        )


def _other_separator(header: str, contract_names: list[str]) -> str | None:
    """'semicolons', 'tabs' or 'pipes' when the header names contract columns once split
    on that character (a spreadsheet's regional CSV export), else None."""
    for separator, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
        fields = next(csv.reader([header], delimiter=separator), [])
        if sum(f.strip().lower() in contract_names for f in fields) >= 2:
            return label
    return None


def check_header(
    spec: RawTable,
    dt: date,
    landing_dir: Path,
    path: Path,
    scan: FileScan,
    warnings: list[str],
) -> CsvHeader | None:
    """Map contract columns to header positions; raise if a contract column is missing.

    Returns None for JSON lines, files without data and UTF-16 files (whose every line
    is rejected later). The header is read from the scan, i.e. from the bytes.
    """
    if spec.file_format != "csv":
        return None
    source_file = relative_path(landing_dir, path)
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
        found = f"line 1 has {len(names)} field(s), {matched} of them named like a contract column"
        if matched == 0:
            separator = _other_separator(text, contract_names)
            if separator:
                found += (
                    f"; its column names are separated by {separator}, not commas: the "
                    "contract's CSV is comma-separated, so re-export the file with commas"
                )
            else:
                found += "; it looks like a data row, so the file may have no header"
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
    return CsvHeader(
        n_fields=len(names),
        column_positions={name: positions[name] for name in contract_names},
    )


def parse_file(
    con: duckdb.DuckDBPyConnection,
    spec: RawTable,
    dt: date,
    landing_dir: Path,
    path: Path,
    scan: FileScan,
    header: CsvHeader | None,
    index: int,
    scratch: Path,
    warnings: list[str],
    suppression_listed: bool | None = None,
) -> ParsedFile:
    """Parse one landing file into the temp table `_ingest_parsed_<index>`, typed.

    `read_records` splits the file into records and types them (`flagged_select`; the
    reject reasons by `reject_reasons_update`, only for a file with rows that need one).
    Then rows about erased people are dropped (suppression) and, before the temp table
    counts, the file's line accounting is checked against the physical line count of its
    bytes (`check_line_accounting`).
    """
    parsed = read_records(
        con, spec, dt, landing_dir, path, scan, header, index, scratch, warnings, typed=True
    )
    if parsed.parsed_table is None or scan.encoding_problem:
        return parsed
    # Rows about erased people never reach raw or rejects (ingestion/suppression.py).
    parsed.rows_suppressed = suppress_parsed_rows(
        con, spec.name, parsed.parsed_table, suppression_listed
    )
    n_loaded, n_rejected = con.execute(
        f"SELECT count(*) FILTER (WHERE reject_reason IS NULL), "
        f"count(*) FILTER (WHERE reject_reason IS NOT NULL) FROM {parsed.parsed_table}"
    ).fetchone()
    parsed.rows_loaded, parsed.rows_rejected = int(n_loaded), int(n_rejected)
    check_line_accounting(spec, dt, parsed)
    return parsed


def read_records(
    con: duckdb.DuckDBPyConnection,
    spec: RawTable,
    dt: date,
    landing_dir: Path,
    path: Path,
    scan: FileScan,
    header: CsvHeader | None,
    index: int,
    scratch: Path,
    warnings: list[str],
    typed: bool,
) -> ParsedFile:
    """Split one landing file into records in the temp table `_ingest_parsed_<index>`.

    With `typed`, the table holds typed columns and reject_column/reject_reason (DuckDB's
    loader); without, the staged text the typing reads (`ln, record, odd_quotes,
    structure_error, s_<column>`), which the Spark reader types on Spark
    (ingestion/spark_reading.py). Either way the ParsedFile carries the line counts
    (records, header, blank, continuation lines); the loaded/rejected counts are the
    caller's, after typing.

    The lines are materialised first: numbering lines (WITH ORDINALITY) is a serial step,
    and parsing from a table instead of from the reader lets DuckDB use every thread.
    CSV files whose lines have an odd number of quotes are parsed a second time, with
    the lines grouped into records (rare: quoted line breaks and broken quoting).
    """
    source_file = relative_path(landing_dir, path)
    if scan.physical_lines == 0:
        return ParsedFile(source_file, None, 0)
    parsed_table = f"_ingest_parsed_{index}"
    header_lines = 1 if spec.file_format == "csv" else 0
    if scan.encoding_problem:
        return _reject_every_line(con, spec, source_file, scan, parsed_table, warnings, typed)
    if not scan.has_text:  # only spaces and line breaks: no header, no records
        return ParsedFile(
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
                f"{source_file}: the file could not be read to its end ({first_error_line(exc)}); "
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
        parse_sql = _parse_sql(spec, header, records_sql, typed)
        con.execute(
            parsed_statement(con, f"CREATE OR REPLACE TEMP TABLE {parsed_table} AS {parse_sql}")
        )
        continuation_lines = 0
        # Counted on the input side, so the load audit checks the parse, not itself; in
        # the statement that reads the flags (a CSV with odd quotes counts its records).
        odd_quotes, needs_reasons, n_records, blank_lines = con.execute(
            f"SELECT * FROM ({_row_flags_sql(parsed_table, typed)}), ("
            f"SELECT count(*) FILTER (WHERE line IS NOT NULL OR read_error IS NOT NULL), "
            f"count(*) FILTER (WHERE line IS NULL AND read_error IS NULL) "
            f"FROM {lines_table} WHERE ln >= {first_data_line})"
        ).fetchone()
        odd_quotes, needs_reasons = bool(odd_quotes), bool(needs_reasons)
        if spec.file_format == "csv" and odd_quotes:
            assert header is not None
            blank_lines = group_multiline_records(con, lines_table, header.n_fields)
            records_sql = "SELECT ln, record, read_error FROM _ingest_records"
            parse_sql = _parse_sql(spec, header, records_sql, typed)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {parsed_table} AS {parse_sql}")
            needs_reasons = _row_flags(con, parsed_table, typed)[1]
            (n_records, continuation_lines) = con.execute(
                "SELECT count(*), coalesce(sum(n_lines - 1), 0) FROM _ingest_records"
            ).fetchone()
        if needs_reasons:
            con.execute(reject_reasons_update(spec, parsed_table))
    finally:
        con.execute(f"DROP TABLE IF EXISTS {lines_table}")
        con.execute("DROP TABLE IF EXISTS _ingest_records")
    return ParsedFile(
        source_file,
        parsed_table,
        rows_read=int(n_records),
        lines_in_file=scan.physical_lines,
        header_lines=header_lines,
        blank_lines=int(blank_lines),
        continuation_lines=int(continuation_lines),
    )


def check_line_accounting(spec: RawTable, dt: date, parsed: ParsedFile) -> None:
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
    typed: bool = True,
) -> ParsedFile:
    """A file in an encoding the contract excludes (UTF-16): each data line is a reject.

    Staged (not `typed`), each line is a structure error with that reason, which the
    typing turns into the same reject."""
    assert scan.encoding_problem
    header_lines = 1 if spec.file_format == "csv" else 0
    first, last = header_lines + 1, scan.physical_lines
    reason = sql_literal(scan.encoding_problem)
    if typed:
        typed_nulls = ", ".join(f"CAST(NULL AS {c.type}) AS {c.name}" for c in spec.columns)
        columns = (
            f"{typed_nulls}, CAST(NULL AS VARCHAR) AS reject_column, {reason} AS reject_reason, "
            "false AS odd_quotes, CAST(NULL AS VARCHAR) AS record"
        )
    else:
        text_nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS s_{c.name}" for c in spec.columns)
        columns = (
            f"CAST(NULL AS VARCHAR) AS record, false AS odd_quotes, {reason} AS structure_error, "
            f"{text_nulls}"
        )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {parsed_table} AS "
        f"SELECT range AS ln, {columns} FROM range({first}, {last + 1})"
    )
    n = max(0, last - first + 1)
    warnings.append(f"{source_file}: {scan.encoding_problem}; its {n:,} data line(s) were rejected")
    return ParsedFile(
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


def _row_flags_sql(parsed_table: str, typed: bool) -> str:
    """Whether any record has an odd number of quotes, and (typed) any needs a reject reason."""
    needs_reason = "coalesce(bool_or(needs_reason), false)" if typed else "false"
    return f"SELECT coalesce(bool_or(odd_quotes), false), {needs_reason} FROM {parsed_table}"


def _row_flags(con: duckdb.DuckDBPyConnection, parsed_table: str, typed: bool) -> tuple[bool, bool]:
    odd, needs = con.execute(_row_flags_sql(parsed_table, typed)).fetchone()
    return bool(odd), bool(needs)


def _parse_sql(
    spec: RawTable, header: CsvHeader | None, records_sql: str, typed: bool = True
) -> str:
    if spec.file_format == "csv":
        assert header is not None
        if not typed:
            return staged_select(spec, csv_staged_ctes(spec, header, records_sql))
        return csv_parse_sql(spec, header, records_sql)
    if not typed:
        return staged_select(spec, jsonl_staged_ctes(spec, records_sql))
    return jsonl_parse_sql(spec, records_sql)


def _lines_source_sql(path: Path | str, compression: str = "auto") -> str:
    """The file as (line, ln) rows: DuckDB's CSV reader with no delimiter and no quoting.

    `line` is NULL for a blank line; `ln` is the 1-based physical line. Lines that are not
    UTF-8 (or too long) are left out and logged in `_ingest_read_errors`.
    Hive partitioning is off: the `dt=` folder would otherwise become an extra column.
    """
    return f"""
        SELECT line, ln
        FROM read_csv(
            {sql_literal(str(path))},
            columns = {{'line': 'VARCHAR'}},
            header = false, auto_detect = false,
            delim = '', quote = '', escape = '',
            strict_mode = false, encoding = 'utf-8',
            hive_partitioning = false, filename = false,
            compression = {sql_literal(compression)},
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
