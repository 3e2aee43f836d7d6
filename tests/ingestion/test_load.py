"""The loader against hand-built landing zones: typing, rejects, accounting, atomicity."""

from __future__ import annotations

import gzip
import json
import random
from datetime import date, datetime

import duckdb
import pytest

from ingestion.contract import RAW_TABLES
from ingestion.errors import PartitionLoadError, ShrinkRefusedError, UnknownTableError
from ingestion.load import ensure_raw_schema, load_partition, load_partitions
from tests.ingestion.landing_rows import (
    CONTACTS_HEADER,
    DT,
    EVENTS_HEADER,
    INVOICES_HEADER,
    LOADED_AT,
    TS,
    contact,
    csv_file,
    load,
    only_reject,
    rejects,
    snapshot,
    web_event,
)

# ------------------------------------------------------------------------------ schema


def test_ensure_raw_schema_creates_the_contract_tables_idempotently(con):
    ensure_raw_schema(con)
    ensure_raw_schema(con)
    for table in RAW_TABLES.values():
        described = con.execute(f"DESCRIBE {table.qualified_name}").fetchall()
        actual = [(name, type_, nullable) for name, type_, nullable, *_ in described]
        expected = [(c.name, c.type, "NO" if c.required else "YES") for c in table.columns]
        expected += [
            ("_dt", "DATE", "NO"),
            ("_source_file", "VARCHAR", "NO"),
            ("_line_number", "BIGINT", "YES"),
            ("_loaded_at", "TIMESTAMP", "NO"),
        ]
        assert actual == expected
    rejects_columns = [r[0] for r in con.execute("DESCRIBE raw.rejects").fetchall()]
    assert rejects_columns == [
        "source_table",
        "dt",
        "source_file",
        "line_number",
        "column_name",
        "raw_record",
        "reason",
        "rejected_at",
    ]
    audit_columns = [r[0] for r in con.execute("DESCRIBE raw.load_audit").fetchall()]
    assert audit_columns == [
        "source_table",
        "dt",
        "source_file",
        "rows_read",
        "rows_loaded",
        "rows_rejected",
        "loaded_at",
        "lines_in_file",
        "header_lines",
        "blank_lines",
        "continuation_lines",
        "note",
        "rows_suppressed",
    ]


def test_unknown_table_is_refused(con, landing):
    with pytest.raises(UnknownTableError, match="email_contacts"):
        load(con, landing, "email_contact")


# ---------------------------------------------------------------------- clean loading


def test_csv_loads_typed_with_lineage_whatever_the_column_order(con, landing):
    shuffled = (
        "updated_at,email,contact_id,subscribed,created_at,country,city,phone,last_name,first_name"
    )
    path = landing.write(
        "email_contacts",
        "part-0.csv",
        csv_file(
            shuffled,
            "2026-10-01T09:00:00Z, Ada@Example.COM ,c1,true,2026-09-01T00:00:00Z,GB,London,,Lovelace,Ada",
            '2026-10-01T09:00:00Z,bob@example.com,c2,false,2026-09-01T00:00:00Z,US,,,"Smith, Jr.",Bob',
        ),
    )
    result = load(con, landing, "email_contacts")

    assert (result.rows_loaded, result.rows_rejected, result.warnings) == (2, 0, [])
    assert result.files[0].source_file == "email/contacts/dt=2026-10-01/part-0.csv"
    rows = con.execute(
        "SELECT contact_id, email, first_name, last_name, phone, city, subscribed, created_at, "
        "_dt, _source_file, _line_number, _loaded_at FROM raw.email_contacts ORDER BY _line_number"
    ).fetchall()
    assert rows == [
        (
            "c1",
            " Ada@Example.COM ",
            "Ada",
            "Lovelace",
            None,
            "London",
            True,
            datetime(2026, 9, 1),
            DT,
            landing.relative(path),
            2,
            LOADED_AT,
        ),
        (
            "c2",
            "bob@example.com",
            "Bob",
            "Smith, Jr.",
            None,
            None,
            False,
            datetime(2026, 9, 1),
            DT,
            landing.relative(path),
            3,
            LOADED_AT,
        ),
    ]


def test_timestamps_with_an_offset_are_stored_in_utc_and_without_one_are_utc(con, landing):
    values = {
        "e1": ("2026-10-01T12:00:00+02:00", datetime(2026, 10, 1, 10, 0)),
        "e2": ("2026-10-01T12:00:00Z", datetime(2026, 10, 1, 12, 0)),
        "e3": ("2026-10-01 12:00:00", datetime(2026, 10, 1, 12, 0)),
        "e4": ("2026-10-01T07:30:00.250-05:30", datetime(2026, 10, 1, 13, 0, 0, 250000)),
        "e5": ("2026-10-01", datetime(2026, 10, 1)),
    }
    landing.write(
        "email_events",
        "part-0.csv",
        csv_file(
            EVENTS_HEADER, *(f"{k},c1,cmp,Spring,open,{ts}," for k, (ts, _) in values.items())
        ),
    )
    con.execute("SET TimeZone = 'America/New_York'")  # the caller's session zone must not matter

    load(con, landing, "email_events")

    stored = dict(con.execute("SELECT event_id, occurred_at FROM raw.email_events").fetchall())
    assert stored == {k: expected for k, (_, expected) in values.items()}
    assert con.execute("SELECT current_setting('TimeZone')").fetchone()[0] == "America/New_York"


def test_booleans_are_read_leniently(con, landing):
    words = ["true", "FALSE", "True", "1", "0", "yes", "No", "t", "F", ""]
    landing.write(
        "email_contacts",
        "part-0.csv",
        csv_file(CONTACTS_HEADER, *(contact(f"c{i}", subscribed=w) for i, w in enumerate(words))),
    )
    load(con, landing, "email_contacts")
    stored = con.execute(
        "SELECT subscribed FROM raw.email_contacts ORDER BY _line_number"
    ).fetchall()
    assert [s for (s,) in stored] == [
        True,
        False,
        True,
        True,
        False,
        True,
        False,
        True,
        False,
        None,
    ]


def test_empty_strings_are_null_and_duplicates_are_kept(con, landing):
    line = "inv_1,cus_1,,paid,eur,1000,1000,,Pro,2026-10-01T00:00:00Z,2026-10-01T00:00:00Z,"
    landing.write("billing_invoices", "part-0.csv", csv_file(INVOICES_HEADER, line, line))
    load(con, landing, "billing_invoices")
    rows = con.execute(
        "SELECT invoice_id, subscription_id, amount_due_cents, amount_refunded_cents, paid_at, "
        "_line_number FROM raw.billing_invoices ORDER BY _line_number"
    ).fetchall()
    assert rows == [("inv_1", None, 1000, None, None, 2), ("inv_1", None, 1000, None, None, 3)]


def test_gzip_files_load_like_plain_ones_and_several_files_make_one_day(con, landing):
    landing.write("email_contacts", "part-0.csv", csv_file(CONTACTS_HEADER, contact("c1")))
    landing.write(
        "email_contacts",
        "part-1.csv.gz",
        csv_file(CONTACTS_HEADER, contact("c2"), contact("c3")),
        gz=True,
    )
    landing.write("web_events", "part-0.jsonl.gz", web_event() + "\n", gz=True)

    contacts = load(con, landing, "email_contacts")
    web = load(con, landing, "web_events")

    assert [(f.source_file, f.rows_loaded) for f in contacts.files] == [
        ("email/contacts/dt=2026-10-01/part-0.csv", 1),
        ("email/contacts/dt=2026-10-01/part-1.csv.gz", 2),
    ]
    assert con.execute(
        "SELECT contact_id, _line_number FROM raw.email_contacts "
        "WHERE _source_file LIKE '%.gz' ORDER BY 2"
    ).fetchall() == [("c2", 2), ("c3", 3)]
    assert web.rows_loaded == 1


def test_web_event_nested_fields_map_to_the_flat_raw_columns(con, landing):
    event = {
        "messageId": "m-42",
        "type": "identify",
        "userId": "u-7",
        "anonymousId": "a-7",
        "traits": {"email": "ada@example.com", "first_name": "Ada"},
        "properties": {"revenue": 19.99, "items": [1, 2]},
        "context": {
            "page": {
                "url": "https://x.example/p?q=1",
                "path": "/p",
                "referrer": "https://g.co",
                "title": "Product",
            },
            "campaign": {"source": "newsletter", "medium": "email", "name": "spring"},
            "userAgent": "Mozilla/5.0",
            "ip": "203.0.113.9",
        },
        "event": None,
        "name": "Home",
        "timestamp": "2026-10-01T10:00:00+02:00",
        "receivedAt": "2026-10-01T08:00:05Z",
        "unknownField": 1,
    }
    landing.write("web_events", "part-0.jsonl", json.dumps(event) + "\n")
    load(con, landing, "web_events")
    row = con.execute(
        "SELECT message_id, type, anonymous_id, user_id, event, name, "
        "properties->>'$.revenue', traits->>'$.email', page_url, page_path, page_referrer, "
        "page_title, campaign_source, campaign_medium, campaign_name, user_agent, ip, "
        "event_timestamp, received_at, _line_number FROM raw.web_events"
    ).fetchone()
    assert row == (
        "m-42",
        "identify",
        "a-7",
        "u-7",
        None,
        "Home",
        "19.99",
        "ada@example.com",
        "https://x.example/p?q=1",
        "/p",
        "https://g.co",
        "Product",
        "newsletter",
        "email",
        "spring",
        "Mozilla/5.0",
        "203.0.113.9",
        datetime(2026, 10, 1, 8, 0),
        datetime(2026, 10, 1, 8, 0, 5),
        1,
    )


# ----------------------------------------------------------------- rejects, one kind each


@pytest.mark.parametrize(
    ("line", "column", "reason_parts"),
    [
        (contact("c1", email=""), "email", ["required column 'email'", "missing or empty"]),
        (
            contact("c1", created_at="2026-02-30T00:00:00Z"),
            "created_at",
            ["column 'created_at'", "'2026-02-30T00:00:00Z'", "ISO-8601 timestamp"],
        ),
        (
            contact("c1", updated_at="yesterday"),
            "updated_at",
            ["column 'updated_at'", "'yesterday'", "ISO-8601 timestamp"],
        ),
        (
            contact("c1", subscribed="maybe"),
            "subscribed",
            ["column 'subscribed'", "'maybe'", "boolean"],
        ),
        (
            contact("", email=""),
            "contact_id",
            ["required column 'contact_id'", "required column 'email'"],
        ),
    ],
)
def test_a_value_that_cannot_be_typed_is_rejected_with_column_and_value(
    con, landing, line, column, reason_parts
):
    landing.write("email_contacts", "part-0.csv", csv_file(CONTACTS_HEADER, contact("ok"), line))
    result = load(con, landing, "email_contacts")

    assert (result.rows_loaded, result.rows_rejected) == (1, 1)
    reject = only_reject(con, "email_contacts")
    assert reject["line_number"] == 3
    assert reject["column_name"] == column
    assert reject["raw_record"] == line
    assert reject["rejected_at"] == LOADED_AT
    for part in reason_parts:
        assert part in reject["reason"]
    assert "re-deliver" in reject["reason"]


@pytest.mark.parametrize(
    ("value", "accepted", "reason_part"),
    [
        ("1200", 1200, None),
        ("+5", 5, None),
        ("-0", 0, None),
        (" 7 ", 7, None),
        ("1200.0", 1200, None),
        ("12.5", None, "whole number"),
        ("1e3", None, "whole number"),
        ("0x10", None, "whole number"),
        ("1_000", None, "whole number"),
        ("99999999999999999999", None, "whole number"),
        ("abc", None, "whole number"),
        ("-5", None, "an amount in cents cannot be negative"),
    ],
)
def test_integers_are_whole_numbers_only(con, landing, value, accepted, reason_part):
    line = f"inv_1,cus_1,,paid,eur,{value},0,0,Pro,{TS},{TS},"
    landing.write("billing_invoices", "part-0.csv", csv_file(INVOICES_HEADER, line))
    load(con, landing, "billing_invoices")
    loaded = con.execute("SELECT amount_due_cents FROM raw.billing_invoices").fetchall()
    if accepted is not None:
        assert loaded == [(accepted,)]
    else:
        assert loaded == []
        reject = only_reject(con, "billing_invoices")
        assert reject["column_name"] == "amount_due_cents"
        assert f"column 'amount_due_cents' has value '{value}'" in reject["reason"]
        assert reason_part in reject["reason"]


@pytest.mark.parametrize(
    ("line", "reason_part"),
    [
        ("c1,a@example.com,Ada", "has 3 fields but the header has 10"),
        (contact("c1") + ",surplus", "has 11 fields but the header has 10"),
        (
            'c1,a@example.com,Ada "the countess",Lovelace,,,GB,true,' + TS + "," + TS,
            "not valid CSV quoting",
        ),
        ('c1,a@example.com,"Ada"x,Lovelace,,,GB,true,' + TS + "," + TS, "not valid CSV quoting"),
    ],
)
def test_structurally_broken_csv_lines_are_rejected(con, landing, line, reason_part):
    landing.write(
        "email_contacts",
        "part-0.csv",
        csv_file(CONTACTS_HEADER, contact("before"), line, contact("after")),
    )
    result = load(con, landing, "email_contacts")
    assert (result.rows_loaded, result.rows_rejected) == (2, 1)
    reject = only_reject(con, "email_contacts")
    assert (reject["line_number"], reject["raw_record"], reject["column_name"]) == (3, line, None)
    assert reason_part in reject["reason"]


def test_an_unterminated_quote_costs_only_its_own_line(con, landing):
    broken = 'c2,b@example.com,"Bob,Smith,,,US,true,' + TS + "," + TS
    landing.write(
        "email_contacts",
        "part-0.csv",
        csv_file(
            CONTACTS_HEADER,
            contact("c1"),
            broken,
            contact("c3"),
            contact("c4"),
            'c5,e@example.com,"Eve ""the',  # a second unterminated quote further down
            contact("c6"),
        ),
    )
    result = load(con, landing, "email_contacts")

    assert (result.rows_loaded, result.rows_rejected) == (4, 2)
    loaded = con.execute(
        "SELECT contact_id, _line_number FROM raw.email_contacts ORDER BY 2"
    ).fetchall()
    assert loaded == [("c1", 2), ("c3", 4), ("c4", 5), ("c6", 7)]
    found = rejects(con, "email_contacts")
    assert [(r["line_number"], r["raw_record"]) for r in found] == [
        (3, broken),
        (6, 'c5,e@example.com,"Eve ""the'),
    ]
    assert all("unterminated quoted field" in r["reason"] for r in found)


def test_a_quoted_field_with_embedded_newlines_is_one_record_at_its_first_line(con, landing):
    landing.write(
        "email_contacts",
        "part-0.csv",
        csv_file(
            CONTACTS_HEADER,
            contact("c1"),
            'c2,b@example.com,"Bob\n\nthe ""builder""",Smith,,,US,true,' + TS + "," + TS,
            contact("c3"),
        ),
    )
    result = load(con, landing, "email_contacts")
    assert result.files[0].rows_read == 3
    rows = con.execute(
        "SELECT contact_id, first_name, _line_number FROM raw.email_contacts ORDER BY 3"
    ).fetchall()
    assert rows == [("c1", "Ada", 2), ("c2", 'Bob\n\nthe "builder"', 3), ("c3", "Ada", 6)]


def test_lines_that_are_not_utf8_are_rejected_and_line_numbers_stay_exact(con, landing):
    good = [contact(f"c{i}") for i in range(1, 30_001)]
    body = "\n".join([CONTACTS_HEADER, *good]).encode()
    bad_line = b"cX,caf\xe9@example.com,Zo\xe9,,,,,true," + TS.encode() + b"," + TS.encode()
    lines = body.split(b"\n")
    for position in (25_000, 10, 11):  # insert from the back so positions are final lines
        lines.insert(position - 1, bad_line)
    landing.write("email_contacts", "part-0.csv", b"\n".join(lines) + b"\n")

    result = load(con, landing, "email_contacts")

    assert (result.rows_loaded, result.rows_rejected) == (30_000, 3)
    assert [r["line_number"] for r in rejects(con, "email_contacts")] == [10, 11, 25_002]
    assert all("not valid UTF-8" in r["reason"] for r in rejects(con, "email_contacts"))
    mismatched = con.execute(
        "SELECT count(*) FROM raw.email_contacts WHERE _line_number <> "
        "CAST(substr(contact_id, 2) AS BIGINT) + 1 + (_line_number > 10)::INT * 2 "
        "+ (_line_number > 25002)::INT"
    ).fetchone()[0]
    assert mismatched == 0


@pytest.mark.parametrize(
    ("line", "column", "reason_part"),
    [
        ("not json at all", None, "not valid JSON"),
        ('{"messageId": "m-1", "type": "track"', None, "not valid JSON"),
        ('["m-1", "track"]', None, "JSON array, not an object"),
        ('"just a string"', None, "JSON string, not an object"),
        (web_event(messageId=...), "message_id", "field 'messageId'"),
        (web_event(messageId=""), "message_id", "field 'messageId'"),
        (web_event(timestamp=...), "event_timestamp", "field 'timestamp'"),
        (web_event(timestamp="1696161600"), "event_timestamp", "'1696161600', which is not an ISO"),
        (
            web_event(receivedAt="soon"),
            "received_at",
            "field 'receivedAt' (column received_at) has value 'soon'",
        ),
        (
            web_event(type="screen"),
            "type",
            "field 'type' has value 'screen', expected one of page, track, identify",
        ),
        (web_event(type=...), "type", "field 'type'"),
        (web_event(anonymousId=...), "anonymous_id", "neither 'anonymousId' nor 'userId'"),
    ],
)
def test_web_events_that_break_the_contract_are_rejected(con, landing, line, column, reason_part):
    landing.write("web_events", "part-0.jsonl", "\n".join([web_event(), line, web_event()]) + "\n")
    result = load(con, landing, "web_events")
    assert (result.rows_loaded, result.rows_rejected) == (2, 1)
    reject = only_reject(con, "web_events")
    assert (reject["line_number"], reject["column_name"], reject["raw_record"]) == (2, column, line)
    assert reason_part in reject["reason"]


def test_a_web_event_with_only_a_user_id_is_fine(con, landing):
    landing.write("web_events", "part-0.jsonl", web_event(anonymousId=..., userId="u-1") + "\n")
    assert load(con, landing, "web_events").rows_loaded == 1


# ------------------------------------------------------------- files that are odd as a whole


def test_empty_files_and_header_only_files_load_zero_rows(con, landing):
    landing.write("email_contacts", "a.csv", b"")
    landing.write("email_contacts", "b.csv", CONTACTS_HEADER + "\n")
    landing.write("email_contacts", "c.csv.gz", b"", gz=True)
    landing.write("email_contacts", "d.csv.gz", b"")  # 0 bytes, not even a gzip header
    landing.write("email_contacts", "e.csv", "\n\n")
    landing.write("web_events", "a.jsonl", b"")
    landing.write("web_events", "b.jsonl", "\n")

    for table in ("email_contacts", "web_events"):
        result = load(con, landing, table)
        assert result.rows_loaded == result.rows_rejected == 0
        assert all(f.rows_read == 0 for f in result.files)
    assert con.execute("SELECT count(*) FROM raw.load_audit").fetchone()[0] == 7


def test_a_truncated_gzip_fails_the_day_which_keeps_its_previous_contents(con, landing):
    rng = random.Random(7)
    lines = [contact(f"c{i}", email=f"{rng.getrandbits(64):x}@example.com") for i in range(5000)]
    payload = gzip.compress(csv_file(CONTACTS_HEADER, *lines).encode())
    landing.write("email_contacts", "part-0.csv", csv_file(CONTACTS_HEADER, contact("before")))
    load(con, landing, "email_contacts")
    before = snapshot(con)
    truncated = landing.write("email_contacts", "part-0.csv.gz", payload[: len(payload) // 2])

    with pytest.raises(PartitionLoadError) as raised:
        load(con, landing, "email_contacts")

    assert raised.value.source_file == landing.relative(truncated)
    message = str(raised.value)
    assert message.startswith(f"{landing.relative(truncated)}: is a truncated gzip file")
    assert "keeps its previous contents" in message and "c0," not in message
    assert snapshot(con) == before  # no prefix salvaged as a load


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("part-1.jsonl.gz", b"this is not gzip data\n", "is named .gz but is not gzip-compressed"),
        # mtime=0: the gzip header's timestamp is part of the test id, and pytest-xdist's
        # workers must collect the same ids (they collect a second apart on a busy machine).
        (
            "part-1.jsonl",
            gzip.compress(b"{}\n", mtime=0),
            "is gzip-compressed but its name does not",
        ),
        ("part-1.jsonl.gz", b"\x1f\x8b\x08garbage", "is a corrupt gzip file"),
        ("part-1.jsonl", b"BZh91AY&SY", "is bzip2-compressed"),
    ],
)
def test_a_file_in_the_wrong_compression_fails_the_day_naming_it(con, landing, name, content, says):
    landing.write("web_events", "part-0.jsonl", web_event() + "\n")
    load(con, landing, "web_events")
    before = snapshot(con)
    landing.write("web_events", name, content)
    with pytest.raises(PartitionLoadError) as raised:
        load(con, landing, "web_events")
    assert str(raised.value).startswith(f"web/events/dt=2026-10-01/{name}: {says}")
    assert snapshot(con) == before


def test_extra_columns_and_foreign_files_are_ignored_with_a_warning(con, landing):
    landing.write(
        "email_contacts",
        "part-0.csv",
        csv_file(CONTACTS_HEADER + ",loyalty_tier", contact("c1") + ",gold"),
    )
    landing.write("email_contacts", "_SUCCESS", b"")  # a completeness marker, not a file
    landing.write("email_contacts", "notes.txt", b"hello\n")
    result = load(con, landing, "email_contacts")
    assert result.rows_loaded == 1
    assert any(
        "part-0.csv" in w and "'loyalty_tier'" in w and "ignored" in w for w in result.warnings
    )
    assert not any("_SUCCESS" in w for w in result.warnings)
    assert [(f.source_file, f.note is not None) for f in result.files] == [
        ("email/contacts/dt=2026-10-01/part-0.csv", False),
        ("email/contacts/dt=2026-10-01/notes.txt", True),
    ]
    assert any("notes.txt: skipped" in w for w in result.warnings)


def test_a_missing_or_empty_day_folder_keeps_a_loaded_day_unless_shrinking_is_allowed(con, landing):
    landing.write("email_contacts", "part-0.csv", csv_file(CONTACTS_HEADER, contact("c1")))
    load(con, landing, "email_contacts")
    before = snapshot(con)
    (landing.day_dir("email_contacts") / "part-0.csv").unlink()

    with pytest.raises(ShrinkRefusedError) as empty_folder:
        load(con, landing, "email_contacts")
    landing.day_dir("email_contacts").rmdir()
    with pytest.raises(ShrinkRefusedError) as missing_folder:
        load(con, landing, "email_contacts")
    for refused in (empty_folder.value, missing_folder.value):
        assert (refused.rows_before, refused.rows_now) == (1, 0)
        assert "--allow-shrink" in str(refused) and "keeps its previous contents" in str(refused)
    assert snapshot(con) == before

    allowed = load_partition(
        con, "email_contacts", DT, landing.root, loaded_at=LOADED_AT, allow_shrink=True
    )
    assert (allowed.files, allowed.rows_loaded, allowed.rows_rejected) == ([], 0, 0)
    assert con.execute("SELECT count(*) FROM raw.email_contacts").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM raw.load_audit").fetchone()[0] == 0


def test_a_day_never_delivered_loads_nothing_without_an_error(con, landing):
    result = load(con, landing, "email_contacts")
    assert (result.files, result.rows_loaded, result.status) == ([], 0, "loaded")


def test_every_record_is_either_loaded_or_rejected(con, landing):
    """A zone holding every kind of bad input: nothing is lost, per file."""
    rng = random.Random(3)
    big = [contact(f"g{i}", email=f"{rng.getrandbits(64):x}@example.com") for i in range(3000)]
    gz = gzip.compress(csv_file(CONTACTS_HEADER, *big).encode())
    files = {
        "a-clean.csv": (csv_file(CONTACTS_HEADER, contact("c1"), contact("c2")) + "\n", 2),
        "b-broken.csv": (
            (
                csv_file(
                    CONTACTS_HEADER,
                    contact("c3", email=""),  # required empty
                    contact("c4", created_at="31/12/2026"),  # bad timestamp
                    contact("c5", subscribed="perhaps"),  # bad boolean
                    'c6,f@example.com,"Open,quote,,,,true,' + TS + "," + TS,  # unterminated
                    'c7,g@example.com,Stray"quote,,,,,true,' + TS + "," + TS,  # stray quote
                    "c8,too,few",  # wrong count
                    contact("c9") + ",too,many",  # wrong count
                    'c10,h@example.com,"Multi\nline",L,,,,true,'
                    + TS
                    + ","
                    + TS,  # 1 record, 2 lines
                    "",  # blank line: not a record
                    contact("c11"),
                ).encode()
                + b"c12,\xff\xfe@example.com,X,,,,,true,"
                + TS.encode()
                + b","
                + TS.encode()
                + b"\n"
            ),
            10,
        ),
        "c-zipped.csv.gz": (
            gzip.compress(
                csv_file(CONTACTS_HEADER, contact("c13"), contact("c14", subscribed="?")).encode()
            ),
            2,
        ),
        "d-empty.csv": (b"", 0),
        "e-header-only.csv": (CONTACTS_HEADER + "\n", 0),
        "f-big.csv.gz": (gz, 3000),
    }
    for name, (content, _) in files.items():
        landing.write("email_contacts", name, content)
    web_lines = [
        web_event(messageId="w1"),
        "garbage",
        "[]",
        web_event(messageId=...),
        web_event(type="bogus"),
        web_event(anonymousId=...),
        web_event(timestamp="x"),
        "",
        web_event(messageId="w1"),
    ]  # duplicate delivery: kept
    landing.write("web_events", "part-0.jsonl", "\n".join(web_lines) + "\n")
    landing.write("web_events", "part-1.jsonl", "\n".join(web_lines[:2]).encode("utf-16"))

    load(con, landing, "email_contacts")
    load(con, landing, "web_events")

    audit = con.execute(
        """
        SELECT a.source_file, a.rows_read, a.rows_loaded, a.rows_rejected,
               (SELECT count(*) FROM raw.email_contacts r WHERE r._source_file = a.source_file)
             + (SELECT count(*) FROM raw.web_events r WHERE r._source_file = a.source_file),
               (SELECT count(*) FROM raw.rejects j WHERE j.source_file = a.source_file)
        FROM raw.load_audit a ORDER BY a.source_file
        """
    ).fetchall()
    assert len(audit) == len(files) + 2
    for source_file, read, loaded, rejected, in_raw, in_rejects in audit:
        assert read == loaded + rejected, source_file
        assert (loaded, rejected) == (in_raw, in_rejects), source_file
    by_name = {row[0].rsplit("/", 1)[1]: row for row in audit}
    for name, (_, expected_records) in files.items():
        if expected_records is not None:
            assert by_name[name][1] == expected_records, name
    assert by_name["b-broken.csv"][2:4] == (2, 8)
    assert by_name["part-0.jsonl"][1:4] == (8, 2, 6)
    assert by_name["part-1.jsonl"][1:4] == (2, 0, 2)  # UTF-16: every line rejected
    # Every physical line is the header, blank, a continuation or one record.
    lines = con.execute(
        "SELECT source_file, lines_in_file, header_lines, blank_lines, continuation_lines, "
        "rows_read FROM raw.load_audit ORDER BY source_file"
    ).fetchall()
    for source_file, n_lines, header, blank, continuation, read in lines:
        assert n_lines == header + blank + continuation + read, source_file
    assert {r[0].rsplit("/", 1)[1]: r[1:5] for r in lines}["b-broken.csv"] == (13, 1, 1, 1)


# -------------------------------------------------------------- idempotency and atomicity


def test_loading_a_day_twice_gives_identical_tables(con, landing):
    landing.write(
        "email_contacts",
        "part-0.csv",
        csv_file(CONTACTS_HEADER, contact("c1"), contact("c2", subscribed="x"), contact("c1")),
    )
    landing.write("web_events", "part-0.jsonl", "\n".join([web_event(), "oops"]) + "\n")
    landing.write(
        "email_contacts",
        "part-0.csv",
        csv_file(CONTACTS_HEADER, contact("c9")),
        dt=date(2026, 10, 2),
    )

    for _ in range(2):
        for table in RAW_TABLES:
            load(con, landing, table)
    first = snapshot(con)
    load(con, landing, "email_contacts")
    load(con, landing, "web_events")

    assert snapshot(con) == first
    assert len(first["raw.email_contacts"]) == 2 and len(first["raw.rejects"]) == 2
    # the other day is untouched by reloading this one
    load(con, landing, "email_contacts", dt=date(2026, 10, 2))
    load(con, landing, "email_contacts")
    assert con.execute("SELECT count(*) FROM raw.email_contacts").fetchone()[0] == 3


def test_a_missing_header_column_fails_the_partition_and_keeps_its_previous_rows(con, landing):
    line = f"inv_1,cus_1,,paid,eur,1000,1000,0,Pro,{TS},{TS},"
    landing.write("billing_invoices", "part-0000.csv", csv_file(INVOICES_HEADER, line))
    load(con, landing, "billing_invoices")
    before = snapshot(con)

    landing.write("billing_invoices", "part-0000.csv", csv_file(INVOICES_HEADER, line, line))
    without_amount = INVOICES_HEADER.replace("amount_due_cents,", "")
    landing.write(
        "billing_invoices",
        "part-0001.csv",
        csv_file(without_amount, line.replace(",1000,1000,", ",1000,")),
    )
    with pytest.raises(PartitionLoadError) as raised:
        load(con, landing, "billing_invoices")

    message = str(raised.value)
    assert message.startswith(
        "billing/invoices/dt=2026-10-01/part-0001.csv: required column 'amount_due_cents' "
        "is missing from the header on line 1 (line 1 has 11 field(s), 11 of them named "
        "like a contract column)."
    )
    assert "previous contents" in message
    failure = raised.value
    assert (failure.table, failure.dt, failure.line_number, failure.column_name) == (
        "billing_invoices",
        DT,
        1,
        "amount_due_cents",
    )
    assert failure.source_file == "billing/invoices/dt=2026-10-01/part-0001.csv"
    assert snapshot(con) == before


def test_an_unexpected_failure_mid_transaction_rolls_the_whole_day_back(con, landing):
    landing.write("email_contacts", "part-0.csv", csv_file(CONTACTS_HEADER, contact("c1")))
    load(con, landing, "email_contacts")
    before = snapshot(con)
    landing.write("email_contacts", "part-0.csv", csv_file(CONTACTS_HEADER, contact("c2")))
    # Another session holds a conflicting write on the day's audit row: our commit must fail.
    other = con.cursor()
    other.execute("BEGIN")
    other.execute("DELETE FROM raw.load_audit WHERE source_table = 'email_contacts'")
    with pytest.raises(duckdb.TransactionException):
        load(con, landing, "email_contacts")
    other.execute("ROLLBACK")
    assert snapshot(con) == before


def test_load_partitions_backfills_each_day(con, landing):
    days = [date(2026, 10, d) for d in (1, 2, 3)]
    for day in days[:2]:
        landing.write(
            "email_contacts",
            "part-0.csv",
            csv_file(CONTACTS_HEADER, contact(f"c{day.day}")),
            dt=day,
        )
    results = load_partitions(con, "email_contacts", reversed(days), landing.root, LOADED_AT)
    assert [(r.dt, r.rows_loaded) for r in results] == [(days[0], 1), (days[1], 1), (days[2], 0)]
    assert con.execute("SELECT _dt, contact_id FROM raw.email_contacts ORDER BY 1").fetchall() == [
        (days[0], "c1"),
        (days[1], "c2"),
    ]


# ---------------------------------------------------------------- quoting styles, backfills


def test_fully_quoted_csv_with_escaped_quotes_and_commas_loads_exactly(con, landing):
    """pyarrow and many exporters quote every value; nulls stay unquoted and empty."""
    quoted = ",".join(f'"{name}"' for name in CONTACTS_HEADER.split(","))
    landing.write(
        "email_contacts",
        "part-0.csv",
        "\n".join(
            [
                quoted,
                '"c1","a@example.com","Ada ""the Countess""","Lovelace, Byron",,"","GB","true",'
                f'"{TS}","{TS}"',
                f'"c2","b@example.com","""","x\x1fy",,,,"false","{TS}","{TS}"',
            ]
        )
        + "\n",
    )
    result = load(con, landing, "email_contacts")
    assert (result.rows_loaded, result.rows_rejected) == (2, 0)
    rows = con.execute(
        "SELECT contact_id, first_name, last_name, phone, city, country, subscribed "
        "FROM raw.email_contacts ORDER BY contact_id"
    ).fetchall()
    assert rows == [
        ("c1", 'Ada "the Countess"', "Lovelace, Byron", None, None, "GB", True),
        ("c2", '"', "x\x1fy", None, None, None, False),
    ]


def test_load_partitions_with_several_workers_matches_a_serial_load(con, landing, tmp_path):
    days = [date(2026, 10, d) for d in range(1, 6)]
    for day in days:
        landing.write(
            "web_events",
            "part-0.jsonl",
            "\n".join(
                web_event(
                    messageId=f"m{day.day}-{i}", timestamp=f"2026-10-0{day.day}T10:00:00+02:00"
                )
                for i in range(50)
            )
            + "\n",
            dt=day,
        )
    parallel = load_partitions(con, "web_events", days, landing.root, LOADED_AT, max_workers=3)
    serial_con = duckdb.connect(str(tmp_path / "serial.duckdb"))
    load_partitions(serial_con, "web_events", days, landing.root, LOADED_AT)

    assert [r.dt for r in parallel] == days
    assert snapshot(con) == snapshot(serial_con)
    assert con.execute("SELECT count(*), min(event_timestamp) FROM raw.web_events").fetchone() == (
        250,
        datetime(2026, 10, 1, 8, 0),
    )
