"""Hostile bytes and names in a landing day: every physical line is loaded or rejected,
exactly once, and the per-file line invariant holds; odd entries get one audited behaviour.

Each case is a file between good rows, loaded by the real loader into a real DuckDB file;
the last test materialises the real Dagster raw asset over a zone holding all of them.
Line counts in the assertions come from the test's own reading of the bytes.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ingestion.errors import PartitionLoadError
from ingestion.load import load_partition
from tests.ingestion.landing_rows import (
    CONTACTS_HEADER,
    DT,
    LOADED_AT,
    contact,
    web_event,
)

DAY = "dt=2026-10-01"
GOOD = [contact(f"c{i}", email=f"person{i}@example.com") for i in range(1, 4)]


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    (root / "email" / "contacts" / DAY).mkdir(parents=True)
    (root / "web" / "events" / DAY).mkdir(parents=True)
    return root


@pytest.fixture
def con(tmp_path: Path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def contacts_dir(landing: Path) -> Path:
    return landing / "email" / "contacts" / DAY


def physical_lines(data: bytes) -> int:
    """The test's own count: LF-terminated runs, plus a last one without LF (counted on
    the characters of a UTF-16 file, whose LF bytes are half a character)."""
    codec = (
        "utf-16"
        if data[:2] in (b"\xff\xfe", b"\xfe\xff")
        else "utf-16-be"
        if data[:1] == b"\x00"
        else "utf-16-le"
        if data[1:2] == b"\x00"
        else None
    )
    if codec:
        text = data.decode(codec)
        return text.count("\n") + (bool(text) and not text.endswith("\n"))
    if b"\n" not in data and b"\r" in data:
        return data.count(b"\r") + (not data.endswith(b"\r"))
    return data.count(b"\n") + (bool(data) and not data.endswith(b"\n"))


def audit(con, table: str = "email_contacts") -> dict[str, tuple]:
    rows = con.execute(
        "SELECT source_file, lines_in_file, header_lines, blank_lines, continuation_lines, "
        "rows_read, rows_loaded, rows_rejected, note FROM raw.load_audit "
        "WHERE source_table = ? ORDER BY source_file",
        [table],
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def assert_every_line_once(con, landing: Path, table: str = "email_contacts") -> None:
    """Per read file: bytes' lines = header + blank + continuation + loaded + rejected, and
    raw + rejects hold exactly those rows, each line number once."""
    raw_table = f"raw.{table}"
    for source_file, (lines, header, blank, cont, read, loaded, rejected, note) in audit(
        con, table
    ).items():
        if note is not None:
            assert (lines, read, loaded, rejected) == (None, 0, 0, 0), source_file
            continue
        data = (landing / source_file).read_bytes()
        if source_file.lower().endswith(".gz"):
            data = gzip.decompress(data)
        assert lines == physical_lines(data), source_file
        assert lines == header + blank + cont + read and read == loaded + rejected, source_file
        in_raw = con.execute(
            f"SELECT count(*), count(DISTINCT _line_number) FROM {raw_table} "
            "WHERE _source_file = ?",
            [source_file],
        ).fetchone()
        in_rejects = con.execute(
            "SELECT count(*), count(DISTINCT line_number) FROM raw.rejects WHERE source_file = ?",
            [source_file],
        ).fetchone()
        assert in_raw == (loaded, loaded) and in_rejects == (rejected, rejected), source_file
        (overlap,) = con.execute(
            f"SELECT count(*) FROM {raw_table} r JOIN raw.rejects j "
            "ON j.source_file = r._source_file AND j.line_number = r._line_number "
            "WHERE r._source_file = ?",
            [source_file],
        ).fetchone()
        assert overlap == 0, source_file


def load(con, landing: Path, table: str = "email_contacts"):
    return load_partition(con, table, DT, landing, loaded_at=LOADED_AT)


def reject_lines(con) -> list[tuple]:
    return con.execute(
        "SELECT source_file, line_number, reason FROM raw.rejects ORDER BY 1, 2"
    ).fetchall()


def write(landing: Path, name: str, data: bytes) -> Path:
    path = contacts_dir(landing) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def with_good_rows(middle: bytes, *, header: bytes = CONTACTS_HEADER.encode()) -> bytes:
    return b"\n".join([header, GOOD[0].encode(), middle, GOOD[1].encode()]) + b"\n"


# ------------------------------------------------------------------- bytes in a line


@pytest.mark.parametrize(
    ("middle", "reason"),
    [
        pytest.param(b"\x00" + contact("c9").encode(), "NUL byte (0x00) at byte 1", id="nul-first"),
        pytest.param(contact("c9").encode().replace(b",", b",\x00", 1), "NUL byte", id="nul-mid"),
        pytest.param(contact("c9").encode().replace(b",", b"\r,", 1), "carriage return", id="cr"),
        pytest.param(
            b"c9,\xff\xfe@example.com" + contact("x")[1:].encode(),
            "not valid UTF-8",
            id="invalid-utf8",
        ),
        pytest.param(b"c9," + b"x" * (3 << 20), "longer than the reader", id="long-line"),
    ],
)
def test_a_hostile_line_is_rejected_at_its_line_and_its_neighbours_load(
    con, landing, middle, reason
):
    write(landing, "part-0.csv", with_good_rows(middle))
    result = load(con, landing)
    assert (result.rows_loaded, result.rows_rejected) == (2, 1)
    ((source_file, line, why),) = reject_lines(con)
    assert (source_file, line) == (f"email/contacts/{DAY}/part-0.csv", 3)
    assert reason in why
    assert con.execute(
        "SELECT contact_id, _line_number FROM raw.email_contacts ORDER BY 2"
    ).fetchall() == [("c1", 2), ("c2", 4)]
    assert_every_line_once(con, landing)


@pytest.mark.parametrize(
    ("data", "loaded", "blank"),
    [
        pytest.param(with_good_rows(GOOD[2].encode()).replace(b"\n", b"\r\n"), 3, 0, id="crlf"),
        pytest.param(with_good_rows(GOOD[2].encode()).replace(b"\n", b"\r"), 3, 0, id="cr-only"),
        pytest.param(
            with_good_rows(GOOD[2].encode()).replace(b"\n", b"\r\n", 2), 3, 0, id="crlf-then-lf"
        ),
        pytest.param(
            with_good_rows(GOOD[2].encode() + b"\r\n"), 3, 1, id="lf-with-one-crlf-and-blank"
        ),
        pytest.param(b"\xef\xbb\xbf" + with_good_rows(GOOD[2].encode()), 3, 0, id="utf8-bom"),
    ],
)
def test_line_endings_and_a_bom_load_every_row(con, landing, data, loaded, blank):
    write(landing, "part-0.csv", data)
    result = load(con, landing)
    assert (result.rows_loaded, result.rows_rejected) == (loaded, 0)
    ((lines, header, blank_lines, *_),) = audit(con).values()
    assert (lines, header, blank_lines) == (loaded + 1 + blank, 1, blank)
    assert_every_line_once(con, landing)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_file_has_every_data_line_rejected_saying_so(con, landing, encoding):
    text = "\n".join([CONTACTS_HEADER, *GOOD]) + "\n"
    write(landing, "part-0.csv", text.encode(encoding))
    write(landing, "part-1.csv", with_good_rows(GOOD[2].encode()))
    result = load(con, landing)
    assert (result.rows_loaded, result.rows_rejected) == (3, 3)
    reasons = {why for source, _, why in reject_lines(con) if source.endswith("part-0.csv")}
    (reason,) = reasons
    assert "UTF-16" in reason and "re-export it as UTF-8" in reason
    assert_every_line_once(con, landing)


def test_a_utf16_jsonl_file_has_every_line_rejected(con, landing):
    lines = "\n".join(web_event(messageId=f"m{i}") for i in range(4)) + "\n"
    (landing / "web" / "events" / DAY / "part-0.jsonl").write_bytes(lines.encode("utf-16"))
    result = load(con, landing, "web_events")
    assert (result.rows_loaded, result.rows_rejected) == (0, 4)
    assert_every_line_once(con, landing, "web_events")


# --------------------------------------------------------------------------- file names


def test_glob_characters_in_file_names_read_only_that_file(con, landing):
    names = ["*.csv", "a?b.csv", "[x].csv", "plain.csv", "it's {1}.csv"]
    for i, name in enumerate(names):
        write(landing, name, (CONTACTS_HEADER + "\n" + contact(f"n{i}") + "\n").encode())
    result = load(con, landing)
    assert result.rows_loaded == len(names)
    loaded = dict(con.execute("SELECT _source_file, contact_id FROM raw.email_contacts").fetchall())
    assert loaded == {f"email/contacts/{DAY}/{name}": f"n{i}" for i, name in enumerate(names)}
    assert_every_line_once(con, landing)


# ---------------------------------------------------------------------- odd entries


def test_each_odd_entry_of_a_day_folder_has_one_audited_behaviour(con, landing, tmp_path):
    write(landing, "part-0.csv", with_good_rows(GOOD[2].encode()))
    write(landing, "retry/part-1.csv", (CONTACTS_HEADER + "\n" + contact("sub") + "\n").encode())
    write(landing, "._part-0.csv", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    write(landing, ".DS_Store", b"\x00\x00\x00\x01Bud1")
    write(landing, "_temporary/0/part-9.csv", (CONTACTS_HEADER + "\n" + contact("tmp")).encode())
    write(landing, "PART-2.CSV", (CONTACTS_HEADER + "\n" + contact("upper") + "\n").encode())
    write(landing, "part-3.csv.bz2", b"BZh91AY&SY")
    outside = tmp_path / "outside.csv"
    outside.write_text(CONTACTS_HEADER + "\n" + contact("linked") + "\n")
    os.symlink(outside, contacts_dir(landing) / "linked.csv")
    os.mkfifo(contacts_dir(landing) / "pipe.csv")

    result = load(con, landing)

    loaded = {r[0] for r in con.execute("SELECT contact_id FROM raw.email_contacts").fetchall()}
    assert loaded == {"c1", "c2", "c3", "sub", "upper"}
    prefix = f"email/contacts/{DAY}/"
    by_file = {name.removeprefix(prefix): row[-1] for name, row in audit(con).items()}
    assert by_file["part-0.csv"] is None and by_file["retry/part-1.csv"] is None
    assert by_file["PART-2.CSV"] is None
    assert by_file["._part-0.csv"].startswith("skipped: a hidden file")
    assert by_file[".DS_Store"].startswith("skipped: a hidden file")
    assert by_file["_temporary"].startswith("skipped: a folder whose name starts with '_'")
    assert by_file["part-3.csv.bz2"].startswith("skipped: this table only takes")
    assert by_file["linked.csv"].startswith("skipped: a symbolic link")
    assert by_file["pipe.csv"].startswith("skipped: not a regular file")
    assert len(by_file) == 9
    # Every skipped entry is also a warning naming it.
    for name, note in by_file.items():
        if note:
            assert f"{prefix}{name}: {note}" in result.warnings
    assert_every_line_once(con, landing)


def test_a_csv_without_header_names_the_missing_columns_but_no_data(con, landing):
    secret = contact("c1", email="jane.secret@example.com")
    write(landing, "part-0.csv", (secret + "\n" + GOOD[1] + "\n").encode())
    with pytest.raises(PartitionLoadError) as raised:
        load(con, landing)
    message = str(raised.value)
    assert message.startswith(f"email/contacts/{DAY}/part-0.csv: required columns 'contact_id'")
    assert "looks like a data row, so the file may have no header" in message
    for value in secret.split(","):
        if len(value) > 3:
            assert value not in message


def test_a_semicolon_csv_is_named_as_such_not_as_a_file_without_header(con, landing):
    # A spreadsheet's "CSV" in a locale whose decimal mark is a comma: the header is all
    # there, separated by semicolons. The message says so, and quotes no value.
    header = CONTACTS_HEADER.replace(",", ";")
    row = contact("c1", email="jane.secret@example.com").replace(",", ";")
    write(landing, "part-0.csv", (header + "\n" + row + "\n").encode())
    with pytest.raises(PartitionLoadError) as raised:
        load(con, landing)
    message = str(raised.value)
    assert "its column names are separated by semicolons, not commas" in message
    assert "re-export the file with commas" in message
    assert "looks like a data row" not in message and "jane.secret" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_fails_the_day_naming_it(con, landing):
    path = write(landing, "part-0.csv", with_good_rows(GOOD[2].encode()))
    path.chmod(0)
    with pytest.raises(PartitionLoadError) as raised:
        load(con, landing)
    assert "part-0.csv: cannot be read (permission denied)" in str(raised.value)


# ------------------------------------------------------------- through the Dagster asset


def test_the_raw_asset_accounts_for_every_line_of_a_hostile_zone(con, landing, tmp_path):
    """The real Dagster asset over one day holding every hostile file at once."""
    con.close()
    write(landing, "a-nul.csv", with_good_rows(b"\x00" + contact("n").encode()))
    write(landing, "b-cr.csv", with_good_rows(GOOD[2].encode()).replace(b"\n", b"\r"))
    write(landing, "c-crlf.csv", with_good_rows(GOOD[2].encode()).replace(b"\n", b"\r\n"))
    write(landing, "d-bom.csv", b"\xef\xbb\xbf" + with_good_rows(GOOD[2].encode()))
    write(landing, "e-utf16.csv", ("\n".join([CONTACTS_HEADER, *GOOD]) + "\n").encode("utf-16"))
    write(landing, "f-long.csv", with_good_rows(b"x" * (3 << 20)))
    write(landing, "g-latin1.csv", with_good_rows("c9,Grüße@example.com".encode("latin-1")))
    write(landing, "*.csv", with_good_rows(GOOD[2].encode()))
    write(landing, "sub/h.csv.gz", gzip.compress(with_good_rows(GOOD[2].encode())))
    write(landing, "._x.csv", b"\x00\x05\x16\x07")
    os.symlink(contacts_dir(landing) / "c-crlf.csv", contacts_dir(landing) / "link.csv")

    from orchestration.assets.ingestion import raw_assets
    from orchestration.resources import LandingZoneResource, WarehouseResource

    warehouse = tmp_path / "warehouse.duckdb"
    contacts = next(a for a in raw_assets if a.key.path[-1] == "email_contacts")
    result = dg.materialize(
        [contacts],
        partition_key=DT.isoformat(),
        resources={
            "warehouse": WarehouseResource(path=str(warehouse)),
            "landing": LandingZoneResource(path=str(landing)),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node(contacts.op.name)
    metadata = materialization.metadata
    # 3 rows each from cr, crlf, bom, '*' and sub/h; 2 from nul, long and latin-1; 0 from utf-16
    assert (metadata["rows_loaded"].value, metadata["rows_rejected"].value) == (21, 6)
    assert metadata["entries_skipped"].value == 2
    with duckdb.connect(str(warehouse), read_only=True) as check:
        (n_loaded,) = check.execute("SELECT count(*) FROM raw.email_contacts").fetchone()
        (n_rejected,) = check.execute("SELECT count(*) FROM raw.rejects").fetchone()
        assert (n_loaded, n_rejected) == (
            metadata["rows_loaded"].value,
            metadata["rows_rejected"].value,
        )
        # nul, long, latin-1: one line each; utf-16: its three data lines.
        assert n_rejected == 3 + 3
        assert_every_line_once(check, landing)
        (lines,) = check.execute("SELECT sum(lines_in_file) FROM raw.load_audit").fetchone()
        assert metadata["lines_in_files"].value == lines
