"""A landing zone with another producer's habits, for comparing the engines (issue 15).

`cdp generate --bad --skipped-day --erasure-requests 2` gives malformed rows and files,
gzip, shuffled headers, mixed timestamp formats, an export outage and erasure requests;
`make_hostile` then edits the files the way other exporters write them, each edit listed
with the file it touched (`EDITS`), none of them failing a day, so the whole pipeline
runs to its marts on both engines:

* a UTF-8 BOM and CRLF line endings; a quoted address over two lines;
* a header in another order with an extra column (quoted commas in its values);
* upper-case Greek and Turkish emails (Java lowers 'Σ' at a word's end and 'İ' unlike
  DuckDB);
* wrong-typed values (a decimal, a thousands separator, an exponent and padded cents;
  booleans as yes/1/TRUE; timestamps with nanoseconds, a +0530 offset, no seconds, a
  US date); a Latin-1 line;
* a line repeated on a later day; an invoice re-sent on a later day with changed values;
  a late day (a folder dated before the others) holding one table's rows;
* a 0-byte file alone in a day folder after the others (an empty day); a `.jsonl` file
  that holds CSV; JSON lines with keys reordered, extra keys, escapes and CRLF.

`redeliver` is the second delivery of a day already loaded: changed values, one more
row, one more file (a re-run must replace the day on both engines).

Day-failing files (a `.gz` name on plain text, a missing column, UTF-16) fail the run's
raw step, so its marts are never built: they are compared reader against reader in
tests/ingestion/test_spark_reading.py instead.
"""

from __future__ import annotations

import gzip
import json
from datetime import date, timedelta
from pathlib import Path

from orchestration.cli import landing_days

EDITS: list[str] = []


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)


def _first_file(
    zone: Path, table_path: str, day: date, suffix: str = ".csv", min_rows: int = 1
) -> Path:
    """The day's first non-empty `suffix` file holding more than `min_rows` lines (the edit
    that asks changes that many rows of one file, header aside)."""
    folder = zone / table_path / f"dt={day.isoformat()}"
    files = sorted(
        p
        for p in folder.iterdir()
        if p.name.endswith((suffix, suffix + ".gz")) and p.stat().st_size
    )
    for path in files:
        if _read(path).count(b"\n") > min_rows:
            return path
    raise SystemExit(
        f"{folder}: no {suffix} file with {min_rows} rows to edit: generate a larger zone "
        "(more --customers or fewer --days) for the hostile edits"
    )


def _csv_rows(data: bytes) -> tuple[list[str], list[list[str]]]:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    return rows[0], [r for r in rows[1:] if r]


def _csv_bytes(header: list[str], rows: list[list[str]], newline: str = "\n") -> bytes:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _note(zone: Path, path: Path, what: str) -> None:
    EDITS.append(f"{path.relative_to(zone)}: {what}")


def make_hostile(zone: Path) -> list[str]:
    """Apply the edits of the module docstring to a generated zone; returns them."""
    EDITS.clear()
    days = landing_days(zone)
    first, second, last = days[0], days[1], days[-1]

    # BOM and CRLF; a quoted address over two lines.
    path = _first_file(zone, "billing/customers", first, min_rows=2)
    header, rows = _csv_rows(_read(path))
    rows[1][header.index("address_line1")] = "12 Elm Street\nApartment 4, rear"
    _write(path, b"\xef\xbb\xbf" + _csv_bytes(header, rows, "\r\n"))
    _note(zone, path, "BOM, CRLF, a quoted address over two lines")

    # Another column order, an extra column with quoted commas; a Latin-1 line.
    path = _first_file(zone, "billing/customers", last, min_rows=3)
    header, rows = _csv_rows(_read(path))
    order = list(reversed(range(len(header))))
    new_header = [header[i] for i in order] + ["crm_note"]
    new_rows = [[r[i] for i in order] + [f"note {n}, with a comma"] for n, r in enumerate(rows)]
    # Emails whose lower case Java and DuckDB spell differently (a final sigma, a dotted I).
    new_rows[1][new_header.index("email")] = "ΑΝΝΑ.ΣΑΣ@EXAMPLE.GR"
    new_rows[2][new_header.index("email")] = "İPEK.YILMAZ@EXAMPLE.COM.TR"
    data = _csv_bytes(new_header, new_rows)
    latin = list(new_rows[0])
    latin[new_header.index("customer_id")] = "cus_latin1"
    latin[new_header.index("name")] = "Jürgen Müller"
    data += _csv_bytes(new_header, [latin]).split(b"\n", 1)[1].decode().encode("latin-1")
    _write(path, data)
    _note(zone, path, "columns reversed, an extra column, Greek and Turkish emails, a Latin-1 line")

    # Wrong-typed values: amounts, booleans, timestamps.
    path = _first_file(zone, "billing/subscriptions", first)
    header, rows = _csv_rows(_read(path))
    for row, mrr in zip(rows, ["19.00", "1,900", "1e3", " 1900 ", "1900.5", "+1900"], strict=False):
        row[header.index("mrr_cents")] = mrr
    # on the file's own delivery day: a later date would be a future timestamp, which the
    # blocking raw suite rightly refuses (a zone starting before 2026-10-12 hit that)
    day = first.isoformat()
    stamps = [f"{day} 08:00:00.123456789", f"{day}T08:00:00+0530", f"{day}T08:00Z"]
    for row, stamp in zip(rows[6:], [*stamps, first.strftime("%m/%d/%Y"), day], strict=False):
        row[header.index("started_at")] = stamp
    _write(path, _csv_bytes(header, rows))
    _note(zone, path, "mrr_cents and started_at in other producers' formats")
    path = _first_file(zone, "email/contacts", last)
    header, rows = _csv_rows(_read(path))
    for row, value in zip(rows, ["yes", "1", "TRUE", " false ", "N", "0"], strict=False):
        row[header.index("subscribed")] = value
    _write(path, _csv_bytes(header, rows))
    _note(zone, path, "subscribed as yes/1/TRUE/N/0")

    # A line repeated on a later day; an invoice re-sent later with changed values.
    source = _first_file(zone, "email/events", first)
    header, rows = _csv_rows(_read(source))
    repeat = zone / "email/events" / f"dt={last.isoformat()}" / "part-0700.csv"
    _write(repeat, _csv_bytes(header, rows[:3]))
    _note(zone, repeat, f"3 lines of {source.name} of {first} again")
    source = _first_file(zone, "billing/invoices", first)
    header, rows = _csv_rows(_read(source))
    changed = [list(r) for r in rows[:2]]
    for row in changed:
        row[header.index("status")] = "paid"
        row[header.index("amount_paid_cents")] = row[header.index("amount_due_cents")]
        row[header.index("updated_at")] = f"{last.isoformat()}T10:00:00Z"
        row[header.index("paid_at")] = f"{last.isoformat()}T10:00:00Z"
    resent = zone / "billing/invoices" / f"dt={last.isoformat()}" / "part-0701.csv"
    _write(resent, _csv_bytes(header, changed))
    _note(zone, resent, "2 invoices of the first day again, now paid")

    # A late day: a folder dated before the others, one table only.
    late_day = first - timedelta(days=1)
    late = zone / "billing/invoices" / f"dt={late_day.isoformat()}" / "part-0000.csv"
    older = [list(r) for r in rows[2:4]]
    for row in older:
        row[header.index("invoice_id")] += "_late"
        row[header.index("updated_at")] = f"{late_day.isoformat()}T12:00:00Z"
    _write(late, _csv_bytes(header, older))
    _note(zone, late, "a late day of one table")

    # An empty day: one 0-byte file in a day after the others, one table only.
    empty = zone / "support/tickets" / f"dt={(last + timedelta(days=1)).isoformat()}" / "part-0.csv"
    _write(empty, b"")
    _note(zone, empty, "an empty day (one 0-byte file)")

    # JSON lines: keys reordered, extra keys, escapes, CRLF; a .jsonl holding CSV.
    path = _first_file(zone, "web/events", second, ".jsonl")
    lines = _read(path).decode().splitlines()
    edited = []
    for n, line in enumerate(lines[:6]):
        event = json.loads(line)
        event = dict(reversed(list(event.items())))
        event["x_extra"] = {"n": n, "note": "caf\u00e9 \u2603"}
        edited.append(json.dumps(event, ensure_ascii=n % 2 == 0))
    _write(path, ("\r\n".join(edited + lines[6:]) + "\r\n").encode())
    _note(zone, path, "keys reversed, extra keys, escapes, CRLF")
    liar = path.with_name("part-0702.jsonl")
    _write(liar, b"messageId,type,timestamp\nm-1,page,2026-10-13T08:00:00Z\n")
    _note(zone, liar, "CSV text in a .jsonl file")
    return list(EDITS)


def redeliver(zone: Path) -> list[str]:
    """Deliver the second day folder again (after `make_hostile`, the first generated
    day): invoices with changed values and one more row, and one more contacts file;
    returns the edits."""
    EDITS.clear()
    day = landing_days(zone)[1]
    path = _first_file(zone, "billing/invoices", day)
    header, rows = _csv_rows(_read(path))
    for row in rows[:3]:
        row[header.index("amount_refunded_cents")] = "100"
        row[header.index("updated_at")] = f"{day.isoformat()}T23:00:00Z"
    extra = list(rows[0])
    extra[header.index("invoice_id")] += "_redelivered"
    _write(path, _csv_bytes(header, [*rows, extra]))
    _note(zone, path, "re-delivered: 3 invoices refunded 100 cents, 1 invoice more")
    source = _first_file(zone, "email/contacts", day)
    header, rows = _csv_rows(_read(source))
    more = source.with_name("part-0800.csv")
    _write(more, _csv_bytes(header, [[*r[:1], *r[1:]] for r in rows[:2]]))
    _note(zone, more, "re-delivered: one more file, 2 contacts again")
    return list(EDITS)
