"""Scrubbing erased values out of SQLite files (Dagster's run and event storage)."""

from __future__ import annotations

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
