"""Splitting records into contract columns: CSV fields in SQL, JSON lines via json_transform."""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb

from ingestion.column_typing import flagged_select
from ingestion.contract import Column, RawTable
from ingestion.load_session import sql_literal

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


# Multi-line record repair re-scans the file once per unterminated quote; past this many
# rounds it fixes every broken record it finds per round (still correct, less precise).
_MAX_PRECISE_QUOTE_REPAIRS = 20


@dataclass
class CsvHeader:
    n_fields: int
    column_positions: dict[str, int]  # contract column -> 1-based field position


def group_multiline_records(con: duckdb.DuckDBPyConnection, lines_table: str, n_fields: int) -> int:
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


def csv_parse_sql(spec: RawTable, header: CsvHeader, records_sql: str) -> str:
    """SELECT producing one row per record: typed columns, reject_column/reject_reason
    (filled in by `reject_reasons_update` for the rows with `needs_reason`)."""
    return csv_staged_ctes(spec, header, records_sql) + flagged_select(spec, "counted")


def csv_staged_ctes(spec: RawTable, header: CsvHeader, records_sql: str) -> str:
    """The CTEs up to `counted`: one row per record as text, split into contract fields
    (`ln, record, odd_quotes, structure_error, s_<column>`), before any typing.
    DuckDB's loader appends `flagged_select`; the Spark reader (ingestion/spark_reading.py)
    stops here and types on Spark with `spark_typed_select`."""
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
    """


def jsonl_parse_sql(spec: RawTable, records_sql: str) -> str:
    """SELECT typing Segment-spec JSON lines: one row per non-blank line (as `csv_parse_sql`)."""
    return jsonl_staged_ctes(spec, records_sql) + flagged_select(spec, "counted")


def jsonl_staged_ctes(spec: RawTable, records_sql: str) -> str:
    """The CTEs up to `counted` for JSON lines: each line's contract fields as text.

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
                    THEN TRY(json_transform(record, {sql_literal(_json_struct(spec))})) END AS v
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
    """


def staged_select(spec: RawTable, staged_ctes: str) -> str:
    """The staged text itself (no typing): what `csv_staged_ctes`/`jsonl_staged_ctes`
    produce, JSON fields as their text."""
    fields = ", ".join(
        f"CAST(s_{c.name} AS VARCHAR) AS s_{c.name}" if c.type == "JSON" else f"s_{c.name}"
        for c in spec.columns
    )
    return f"{staged_ctes} SELECT ln, record, odd_quotes, structure_error, {fields} FROM counted"


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
