"""The reader's staged text (what Spark types) typed by DuckDB is what DuckDB's loader parses.

The Spark reader cuts the loader's SQL at the staged text (`read_records(typed=False)`)
and types it with `spark_typed_select`. Here, without Spark, the cut itself: the staged
text of hard files, typed by `typed_select` on DuckDB, equals `parse_file`'s rows, and
the line counts are the same. The Spark side is tests/ingestion/test_spark_reading.py.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from ingestion.column_typing import typed_select
from ingestion.contract import RAW_TABLES
from ingestion.delivery import scan_file
from ingestion.file_reading import check_header, parse_file, read_records
from ingestion.load_session import loader_session, relative_path

DT = date(2026, 10, 1)
SURVEYS = (
    '"response_id","survey_id","respondent_email","score","comment","submitted_at"\n'
    'r-1,s1,a@example.com,9,"great,\nreally ""great""",2026-10-01T08:00:00+02:00\n'
    'r-2,s1,b@example.com,3,"never closed,2026-10-01T09:00:00Z\n'
    "\n"
    "r-3,s1,c@example.com,ten,fine,2026-10-01 10:00:00\n"
    'r-4,s1,d@example.com,10,"two\n\nblank-split lines",2026-10-01 11:00:00\n'
    "r-5,s1,e@example.com,7\n"
)
WEB = (
    '{"messageId":"m1","type":"track","anonymousId":"a1","timestamp":"2026-10-01T08:00:00Z",'
    '"traits":{"email":"x@example.com"},"context":{"page":{"url":"https://e.x/p"}}}\n'
    "not json\n"
    "[1, 2]\n"
    '{"messageId":"m2","type":"nope","timestamp":"2026-10-01T08:00:00Z"}\n'
)
CASES = {
    "survey_responses": ("surveys/responses", "a.csv", SURVEYS.encode()),
    "survey_responses_cr": (
        "surveys/responses",
        "b.csv",
        SURVEYS.replace("\n", "\r").replace("r-3,", "r-3\x00,").encode(),
    ),
    "web_events": ("web/events", "a.jsonl", WEB.encode()),
    "survey_responses_utf16": ("surveys/responses", "c.csv", SURVEYS.encode("utf-16")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_staged_text_typed_by_duckdb_equals_the_loaders_parse(case, tmp_path: Path):
    table = case.split("_cr")[0].split("_utf16")[0]
    spec = RAW_TABLES[table]
    folder, name, data = CASES[case]
    path = tmp_path / "landing" / folder / f"dt={DT}" / name
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    landing = tmp_path / "landing"
    scan = scan_file(path, relative_path(landing, path), spec.name, DT)
    header = check_header(spec, DT, landing, path, scan, [])
    con = duckdb.connect()
    with loader_session(con):
        scratch_a, scratch_b = tmp_path / "a", tmp_path / "b"
        scratch_a.mkdir(), scratch_b.mkdir()
        loader = parse_file(con, spec, DT, landing, path, scan, header, 0, scratch_a, [])
        staged = read_records(
            con, spec, DT, landing, path, scan, header, 1, scratch_b, [], typed=False
        )
        # The loader's table also keeps its working columns (needs_reason, the delivered
        # text of rejected rows); the rows are compared on typed_select's columns.
        columns = ", ".join(
            ["ln", *(c.name for c in spec.columns)]
            + ["reject_column", "reject_reason", "odd_quotes", "record"]
        )
        expected = con.execute(
            f"SELECT {columns} FROM {loader.parsed_table} ORDER BY ln"
        ).fetchall()
        got = con.execute(
            f"WITH counted AS (SELECT * FROM {staged.parsed_table}) "
            f"{typed_select(spec, 'counted')} ORDER BY ln"
        ).fetchall()
        (rejects,) = con.execute(
            f"SELECT count(*) FROM {loader.parsed_table} WHERE reject_reason IS NOT NULL"
        ).fetchone()
    assert got == expected
    assert rejects >= 1  # each case has bad records, so their reasons are compared too
    counts = ("rows_read", "lines_in_file", "header_lines", "blank_lines", "continuation_lines")
    assert [getattr(staged, c) for c in counts] == [getattr(loader, c) for c in counts]
