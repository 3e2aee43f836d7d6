"""Scrubbing erased values out of SQLite files (Dagster's run and event storage)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from privacy.storage import ERASED_MARK, scrub_sqlite


def _database(path: Path, tables: int, columns: int) -> None:
    with sqlite3.connect(path) as con:
        for t in range(tables):
            names = ", ".join(f"c{c} TEXT" for c in range(columns))
            con.execute(f"CREATE TABLE t{t} (id INTEGER, {names}, blob_col BLOB)")
            con.executemany(
                f"INSERT INTO t{t} VALUES (?, {', '.join('?' * columns)}, x'00')",
                [(i, *(f"row {i} col {c}" for c in range(columns))) for i in range(50)],
            )


def test_every_case_variant_in_any_text_column_is_replaced_and_nothing_else(tmp_path: Path):
    db = tmp_path / "runs.db"
    _database(db, tables=12, columns=6)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE t3 SET c5 = 'mail to Jane.Doe@Example.com today' WHERE id = 7")
        con.execute("UPDATE t9 SET c0 = 'JANE.DOE@EXAMPLE.COM' WHERE id = 1")
        con.execute("UPDATE t9 SET c2 = 'phone +44 7700 900123' WHERE id = 2")
    # 200 values x 3 letter cases x 6 columns: the existence probe runs in several chunks.
    needles = {"jane.doe@example.com", "+44 7700 900123"} | {f"other{i}@x.org" for i in range(200)}

    changed = scrub_sqlite(db, needles)

    assert changed == 3
    with sqlite3.connect(db) as con:
        texts = [row for t in range(12) for row in con.execute(f"SELECT * FROM t{t}").fetchall()]
        dump = "\n".join(str(r) for r in texts)
    assert "jane.doe" not in dump.lower() and "900123" not in dump
    assert dump.count(ERASED_MARK) == 3
    assert "row 7 col 4" in dump and "row 49 col 5" in dump  # the rest is untouched


def test_blobs_and_text_in_columns_of_other_declared_types_are_scrubbed(tmp_path: Path):
    # SQLite keeps a value's own type: bytes in a TEXT column, text in an INTEGER column.
    db = tmp_path / "events.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE events (id INTEGER, body TEXT, extra INTEGER, raw BLOB)")
        con.execute(
            "INSERT INTO events VALUES (1, ?, 'jane.doe@example.com', ?)",
            (b'{"email": "Jane.Doe@Example.com", "n": 3}', b"contact jane.doe@example.com"),
        )
        con.execute("INSERT INTO events VALUES (2, 'nothing here', 42, x'00ff')")

    assert scrub_sqlite(db, {"jane.doe@example.com"}) == 3  # values, in one row

    with sqlite3.connect(db) as con:
        row = con.execute(
            "SELECT body, typeof(body), extra, raw, typeof(raw) FROM events WHERE id = 1"
        ).fetchone()
        other = con.execute("SELECT body, extra, raw FROM events WHERE id = 2").fetchone()
    body, body_type, extra, raw, raw_type = row
    assert (body_type, raw_type) == ("blob", "blob")
    assert json.loads(body) == {"email": ERASED_MARK, "n": 3}  # still JSON, still bytes
    assert extra == ERASED_MARK
    assert raw == f"contact {ERASED_MARK}".encode()
    assert other == ("nothing here", 42, b"\x00\xff")


def test_a_database_without_the_values_is_left_alone(tmp_path: Path):
    db = tmp_path / "index.db"
    _database(db, tables=3, columns=2)
    before = db.read_bytes()
    assert scrub_sqlite(db, {"nobody@example.com"}) == 0
    assert db.read_bytes() == before


def test_a_value_in_a_later_probe_chunk_is_found(tmp_path: Path, monkeypatch):
    import privacy.storage as storage

    monkeypatch.setattr(storage, "_PROBE_CHUNK_BYTES", 64)  # a chunk of a few values
    db = tmp_path / "events.db"
    _database(db, tables=2, columns=3)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE t0 SET c2 = 'to Jane.Doe@Example.com' WHERE id = 49")
        con.execute("UPDATE t1 SET c0 = 'JANE.DOE@EXAMPLE.COM' WHERE id = 30")

    assert scrub_sqlite(db, {"jane.doe@example.com"}) == 2
    with sqlite3.connect(db) as con:
        dump = "\n".join(
            str(r) for t in range(2) for r in con.execute(f"SELECT * FROM t{t}").fetchall()
        )
    assert "jane.doe" not in dump.lower()


def test_json_stays_valid_when_an_erased_id_has_the_digits_of_its_numbers(tmp_path: Path):
    # Dagster's event log keeps each event as JSON with float timestamps and counts; a
    # ticket id `011071` or `11071` also appears as digits inside them. Only the values
    # of the person are replaced, in strings, and every event still parses.
    import json

    events = [
        {"timestamp": 1764876543.011071, "rows": 11071, "message": "ticket 011071 erased"},
        {"timestamp": 1764876544.5, "message": "requester\njane.doe@example.com"},
        {"timestamp": 1764876545.11071, "rows": 3, "message": "nothing of hers"},
    ]
    db = tmp_path / "events.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE event_logs (id INTEGER, event TEXT)")
        con.executemany(
            "INSERT INTO event_logs VALUES (?, ?)",
            [(i, json.dumps(e)) for i, e in enumerate(events)],
        )

    assert scrub_sqlite(db, {"011071", "11071", "jane.doe@example.com"}) == 2
    with sqlite3.connect(db) as con:
        stored = [json.loads(v) for (v,) in con.execute("SELECT event FROM event_logs ORDER BY id")]
    assert stored[0] == {**events[0], "message": f"ticket {ERASED_MARK} erased"}
    assert stored[1]["message"] == f"requester\n{ERASED_MARK}"
    assert stored[2] == events[2]  # its digits are inside a number: the row is not rewritten


def test_text_files_are_scrubbed_as_json_jsonl_or_text_by_their_suffix(tmp_path: Path):
    import json

    from privacy.storage import scrub_text_files

    (tmp_path / "run_results.json").write_text(
        json.dumps(
            {"elapsed": 2.011071, "results": [{"id": "T-1", "note": "Jane.Doe@Example.com"}]}
        )
    )
    (tmp_path / "events.jsonl").write_text(
        json.dumps({"n": 11071}) + "\n" + json.dumps({"who": "jane.doe@example.com"}) + "\n"
    )
    (tmp_path / "dbt.log").write_text("12:00:01.011071 ticket 011071 by jane.doe@example.com\n")
    (tmp_path / "untouched.json").write_text(json.dumps({"elapsed": 11071.011071}))
    before = (tmp_path / "untouched.json").read_bytes()

    changed = scrub_text_files(tmp_path, {"011071", "11071", "jane.doe@example.com"})

    assert sorted(p.name for p in changed) == ["dbt.log", "events.jsonl", "run_results.json"]
    results = json.loads((tmp_path / "run_results.json").read_text())
    assert results == {"elapsed": 2.011071, "results": [{"id": "T-1", "note": ERASED_MARK}]}
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"n": 11071}, {"who": ERASED_MARK}]
    log = (tmp_path / "dbt.log").read_text()
    assert log == f"12:00:01.011071 ticket {ERASED_MARK} by {ERASED_MARK}\n"
    assert (tmp_path / "untouched.json").read_bytes() == before
