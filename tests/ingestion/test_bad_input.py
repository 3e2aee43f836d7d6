"""Every kind of bad input (issue 5) ends in `raw.rejects` with a precise reason, or fails its
partition with a message naming file, line and column; the good rows around it still load.

Row-level kinds are one parametrized catalogue (`test_a_bad_row_is_rejected_...`), each
case a file of good row / bad row / good row. File-level kinds have a test each. The
contract's domain rules (allowed values, non-negative amounts, currency and email formats)
have their edge cases below, and the generator's `--bad` zone is checked against its manifest.
"""

from __future__ import annotations

import csv
import gzip
import json
from datetime import date
from pathlib import Path

import pytest

from ingestion.contract import RAW_TABLES, Column
from ingestion.errors import PartitionLoadError
from ingestion.load import load_partitions
from tests.ingestion.landing_rows import (
    CONTACTS_HEADER,
    CUSTOMERS_HEADER,
    DT,
    EVENTS_HEADER,
    INVOICES_HEADER,
    LOADED_AT,
    SUBSCRIPTIONS_HEADER,
    TS,
    contact,
    csv_file,
    customer,
    event,
    invoice,
    load,
    only_reject,
    rejects,
    snapshot,
    subscription,
    web_event,
)

HEADERS = {
    "email_contacts": CONTACTS_HEADER,
    "email_events": EVENTS_HEADER,
    "billing_customers": CUSTOMERS_HEADER,
    "billing_invoices": INVOICES_HEADER,
    "billing_subscriptions": SUBSCRIPTIONS_HEADER,
}
GOOD_ROWS = {
    "email_contacts": (contact("c_before"), contact("c_after")),
    "email_events": (event("evt_before"), event("evt_after")),
    "billing_customers": (customer("cus_before"), customer("cus_after")),
    "billing_invoices": (invoice("in_before"), invoice("in_after")),
    "billing_subscriptions": (subscription("sub_before"), subscription("sub_after")),
    "web_events": (web_event(messageId="m-before"), web_event(messageId="m-after")),
}


def between_good_rows(table: str, bad: str | bytes) -> bytes:
    """A landing file: (header,) good row, the bad record, good row."""
    before, after = (row.encode() for row in GOOD_ROWS[table])
    bad_bytes = bad if isinstance(bad, bytes) else bad.encode()
    lines = [before, bad_bytes, after]
    if table in HEADERS:
        lines.insert(0, HEADERS[table].encode())
    return b"\n".join(lines) + b"\n"


def file_name(table: str) -> str:
    return "part-0.jsonl" if table == "web_events" else "part-0.csv"


# ------------------------------------------------------------------ row-level catalogue

ROW_KINDS = [
    pytest.param(
        "email_contacts",
        'c1,a@example.com,"Ada"x,Lovelace,,,GB,true,' + TS + "," + TS,
        None,
        ["not valid CSV quoting"],
        id="malformed_csv_line",
    ),
    pytest.param(
        "billing_invoices",
        f"in_short,cus_1,sub_1,paid,eur,4900,4900,0,Pro,{TS}",
        None,
        ["has 10 fields but the header has 12"],
        id="wrong_column_count",
    ),
    pytest.param(
        "email_events",
        f'evt_1,c1,cmp_1,"Weekly Digest,open,{TS},',
        None,
        ["unterminated quoted field"],
        id="unterminated_quote",
    ),
    pytest.param(
        "email_events",
        event(occurred_at="2026-13-45T25:61:00Z"),
        "occurred_at",
        ["column 'occurred_at' has value '2026-13-45T25:61:00Z'", "ISO-8601 timestamp"],
        id="unparseable_timestamp",
    ),
    pytest.param(
        "billing_invoices",
        invoice(due="-4900"),
        "amount_due_cents",
        ["column 'amount_due_cents' has value '-4900'", "an amount in cents cannot be negative"],
        id="negative_amount_due",
    ),
    pytest.param(
        "billing_invoices",
        invoice(paid="-1200"),
        "amount_paid_cents",
        ["column 'amount_paid_cents' has value '-1200'", "cannot be negative"],
        id="negative_amount_paid",
    ),
    pytest.param(
        "billing_invoices",
        invoice(refunded=" -1 "),
        "amount_refunded_cents",
        ["column 'amount_refunded_cents' has value ' -1 '", "cannot be negative"],
        id="negative_amount_refunded",
    ),
    pytest.param(
        "billing_subscriptions",
        subscription(mrr="-990"),
        "mrr_cents",
        ["column 'mrr_cents' has value '-990'", "cannot be negative"],
        id="negative_mrr",
    ),
    pytest.param(
        "email_contacts",
        contact("c1", email="ada.lovelace(at)gmail"),
        "email",
        ["column 'email' has value 'ada.lovelace(at)gmail'", "which is not an email address"],
        id="invalid_email",
    ),
    pytest.param(
        "email_events",
        event(event_type="forwarded"),
        "event_type",
        [
            "column 'event_type' has value 'forwarded', expected one of sent, delivered, open, "
            "click, bounce, unsubscribe, spam_complaint"
        ],
        id="unknown_event_type",
    ),
    pytest.param(
        "billing_invoices",
        invoice(status="refunded"),
        "status",
        ["column 'status' has value 'refunded', expected one of draft, open, paid, void"],
        id="unknown_invoice_status",
    ),
    pytest.param(
        "billing_subscriptions",
        subscription(status="paused"),
        "status",
        ["column 'status' has value 'paused', expected one of trialing, active, past_due"],
        id="unknown_subscription_status",
    ),
    pytest.param(
        "web_events",
        web_event(type="screen"),
        "type",
        ["field 'type' has value 'screen', expected one of page, track, identify"],
        id="unknown_web_event_type",
    ),
    pytest.param(
        "billing_invoices",
        invoice(currency="dollars"),
        "currency",
        ["column 'currency' has value 'dollars'", "not a three-letter ISO-4217 currency code"],
        id="invalid_currency",
    ),
    pytest.param(
        "email_events",
        b"evt_1,c1,cmp_1,Sch\xf6ne Gr\xfc\xdfe,open," + TS.encode() + b",",
        None,
        ["not valid UTF-8"],
        id="non_utf8",
    ),
    pytest.param(
        "web_events",
        '["page", "not an object"]',
        None,
        ["the line is a JSON array, not an object"],
        id="json_not_an_object",
    ),
]


@pytest.mark.parametrize(("table", "bad", "column", "reason_parts"), ROW_KINDS)
def test_a_bad_row_is_rejected_with_its_line_column_value_and_the_neighbours_load(
    con, landing, table, bad, column, reason_parts
):
    path = landing.write(table, file_name(table), between_good_rows(table, bad))

    result = load(con, landing, table)

    assert [(f.rows_read, f.rows_loaded, f.rows_rejected) for f in result.files] == [(3, 2, 1)]
    reject = only_reject(con, table)
    bad_line = 3 if table in HEADERS else 2
    assert (reject["source_file"], reject["line_number"], reject["column_name"]) == (
        landing.relative(path),
        bad_line,
        column,
    )
    if isinstance(bad, str):
        assert reject["raw_record"] == bad
    for part in reason_parts:
        assert part in reject["reason"]
    assert "re-deliver" in reject["reason"]
    loaded_lines = con.execute(f"SELECT _line_number FROM raw.{table} ORDER BY 1").fetchall()
    assert loaded_lines == [(bad_line - 1,), (bad_line + 1,)]


def test_a_row_with_several_problems_names_them_all_and_points_at_the_first(con, landing):
    bad = invoice(status="Refunded", currency="€", due="-1", paid="x")
    landing.write("billing_invoices", "part-0.csv", between_good_rows("billing_invoices", bad))
    load(con, landing, "billing_invoices")
    reject = only_reject(con, "billing_invoices")
    assert reject["column_name"] == "status"
    assert reject["reason"] == (
        "column 'status' has value 'Refunded', expected one of draft, open, paid, void, "
        "uncollectible (in any letter case); "
        "column 'currency' has value '€', which is not a three-letter ISO-4217 currency code "
        "such as 'eur' or 'usd'; "
        "column 'amount_due_cents' has value '-1', but an amount in cents cannot be negative; "
        "column 'amount_paid_cents' has value 'x', which is not a whole number that fits in "
        "64 bits. Fix the record at the source and re-deliver it."
    )


# ------------------------------------------------------------------- file-level kinds


def test_missing_required_column_fails_the_partition_naming_file_line_and_column(con, landing):
    landing.write("email_events", "part-0.csv", between_good_rows("email_events", event("e1")))
    load(con, landing, "email_events")
    before = snapshot(con)
    header = EVENTS_HEADER.replace(",event_type", "")
    landing.write("email_events", "part-1.csv", csv_file(header, f"evt_9,c1,cmp_1,Spring,{TS},"))

    with pytest.raises(PartitionLoadError) as raised:
        load(con, landing, "email_events")

    failure = raised.value
    assert (failure.source_file, failure.line_number, failure.column_name) == (
        "email/events/dt=2026-10-01/part-1.csv",
        1,
        "event_type",
    )
    assert str(failure).startswith(
        "email/events/dt=2026-10-01/part-1.csv: required column 'event_type' is missing from "
        "the header on line 1"
    )
    assert snapshot(con) == before  # the good file of that day keeps its previous load too


def test_an_extra_column_is_ignored_with_a_warning_naming_file_and_column(con, landing):
    path = landing.write(
        "billing_invoices",
        "part-0.csv",
        csv_file(INVOICES_HEADER + ",tax_cents", invoice("in_1") + ",980"),
    )
    result = load(con, landing, "billing_invoices")
    assert (result.rows_loaded, result.rows_rejected) == (1, 0)
    assert result.warnings == [
        f"{landing.relative(path)}: extra column 'tax_cents' is not in the billing_invoices "
        "contract and was ignored"
    ]


def test_an_empty_file_is_read_as_zero_rows_and_audited(con, landing):
    path = landing.write("email_contacts", "part-0902.csv", b"")
    result = load(con, landing, "email_contacts")
    assert (result.rows_loaded, result.rows_rejected, result.warnings) == (0, 0, [])
    assert con.execute("SELECT source_file, rows_read FROM raw.load_audit").fetchall() == [
        (landing.relative(path), 0)
    ]
    assert rejects(con, "email_contacts") == []


def test_a_truncated_gzip_fails_its_day_naming_the_file(con, landing):
    lines = [invoice(f"in_{i:05d}") for i in range(3000)]
    payload = gzip.compress(csv_file(INVOICES_HEADER, *lines).encode())
    path = landing.write("billing_invoices", "part-0901.csv.gz", payload[: len(payload) * 6 // 10])

    with pytest.raises(PartitionLoadError) as raised:
        load(con, landing, "billing_invoices")

    assert raised.value.source_file == landing.relative(path)
    assert "truncated gzip" in str(raised.value) and "Re-deliver the complete file" in str(
        raised.value
    )


def test_the_same_file_delivered_twice_is_loaded_twice_and_reloads_identically(con, landing):
    """Raw keeps duplicate deliveries (staging deduplicates); a re-run changes nothing."""
    content = csv_file(EVENTS_HEADER, event("evt_1"), event("evt_2", event_type="click"))
    landing.write("email_events", "part-0000.csv", content)
    landing.write("email_events", "part-0904.csv", content)
    later = date(2026, 10, 2)
    landing.write("email_events", "part-0000.csv", content, dt=later)

    load_partitions(con, "email_events", [DT, later], landing.root, LOADED_AT)
    first = snapshot(con)
    load_partitions(con, "email_events", [DT, later], landing.root, LOADED_AT)

    assert snapshot(con) == first
    assert con.execute(
        "SELECT event_id, event_type, count(*) FROM raw.email_events GROUP BY ALL ORDER BY 1"
    ).fetchall() == [("evt_1", "open", 3), ("evt_2", "click", 3)]
    assert con.execute(
        "SELECT source_file, rows_read, rows_loaded, rows_rejected FROM raw.load_audit ORDER BY 1"
    ).fetchall() == [
        ("email/events/dt=2026-10-01/part-0000.csv", 2, 2, 0),
        ("email/events/dt=2026-10-01/part-0904.csv", 2, 2, 0),
        ("email/events/dt=2026-10-02/part-0000.csv", 2, 2, 0),
    ]


# ------------------------------------------------------------ domain rules, edge cases


@pytest.mark.parametrize(
    ("table", "row", "column", "stored"),
    [
        ("billing_invoices", invoice(status=" PAID "), "status", "paid"),
        ("billing_invoices", invoice(status="Uncollectible"), "status", "uncollectible"),
        ("billing_subscriptions", subscription(status="Past_Due"), "status", "past_due"),
        ("email_events", event(event_type="CLICK"), "event_type", "click"),
        ("web_events", web_event(type="Identify"), "type", "identify"),
        ("billing_invoices", invoice(currency="USD"), "currency", "usd"),
        ("billing_subscriptions", subscription(currency=" Eur "), "currency", "eur"),
    ],
)
def test_allowed_values_and_currencies_match_any_case_and_are_stored_lower_case(
    con, landing, table, row, column, stored
):
    landing.write(table, file_name(table), between_good_rows(table, row))
    result = load(con, landing, table)
    assert (result.rows_loaded, result.rows_rejected) == (3, 0)
    assert con.execute(
        f"SELECT {column} FROM raw.{table} WHERE _line_number = ?", [3 if table in HEADERS else 2]
    ).fetchone() == (stored,)


@pytest.mark.parametrize(
    ("row", "column", "reason_part"),
    [
        (invoice(currency="us"), "currency", "has value 'us', which is not a three-letter"),
        (invoice(currency="u$d"), "currency", "has value 'u$d', which is not a three-letter"),
        (invoice(currency=""), "currency", "required column 'currency' is missing or empty"),
        (invoice(status="  "), "status", "required column 'status' is missing or empty"),
        (invoice(status="paid!"), "status", "has value 'paid!', expected one of"),
    ],
)
def test_a_currency_or_status_outside_the_contract_is_rejected(
    con, landing, row, column, reason_part
):
    landing.write("billing_invoices", "part-0.csv", between_good_rows("billing_invoices", row))
    load(con, landing, "billing_invoices")
    reject = only_reject(con, "billing_invoices")
    assert reject["column_name"] == column and reason_part in reject["reason"]


@pytest.mark.parametrize(
    "email",
    [
        " Ada.Lovelace@Example.COM  ",
        "ada+newsletter@gmail.com",
        "o'brien@example.co.uk",
        "test@test.com",
        "a@b.c",
    ],
)
def test_plausible_contact_emails_load_exactly_as_delivered(con, landing, email):
    landing.write("email_contacts", "part-0.csv", csv_file(CONTACTS_HEADER, contact("c1", email)))
    load(con, landing, "email_contacts")
    assert con.execute("SELECT email FROM raw.email_contacts").fetchall() == [(email,)]


@pytest.mark.parametrize(
    "email",
    [
        "ada(at)gmail",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@.com",
        "ada lovelace@example.com",
        "ada@@example.com",
        "ada@home@example.com",
    ],
)
def test_implausible_contact_emails_are_rejected(con, landing, email):
    landing.write("email_contacts", "part-0.csv", csv_file(CONTACTS_HEADER, contact("c1", email)))
    load(con, landing, "email_contacts")
    reject = only_reject(con, "email_contacts")
    assert reject["column_name"] == "email"
    assert f"column 'email' has value '{email}', which is not an email address" in reject["reason"]


def test_a_billing_customer_with_an_invalid_email_is_kept_for_its_invoices(con, landing):
    """Email is optional in billing: rejecting the customer would orphan their invoices; the
    raw WARN quality suite reports the address instead."""
    landing.write(
        "billing_customers",
        "part-0.csv",
        csv_file(CUSTOMERS_HEADER, customer("cus_1", email="ada(at)gmail"), customer("cus_2", "")),
    )
    result = load(con, landing, "billing_customers")
    assert (result.rows_loaded, result.rows_rejected) == (2, 0)
    assert con.execute(
        "SELECT customer_id, email FROM raw.billing_customers ORDER BY 1"
    ).fetchall() == [("cus_1", "ada(at)gmail"), ("cus_2", None)]


def test_load_audit_shows_the_reject_rate_of_a_day_whose_amounts_are_all_negative(con, landing):
    """What a per-partition reject-rate check reads: raw is empty for the day, the audit is not."""
    bad_day = date(2026, 10, 2)
    landing.write("billing_invoices", "part-0.csv", csv_file(INVOICES_HEADER, invoice("in_1")))
    landing.write(
        "billing_invoices",
        "part-0.csv",
        csv_file(INVOICES_HEADER, *(invoice(f"in_{i}", due="-4900") for i in range(2, 5))),
        dt=bad_day,
    )
    load_partitions(con, "billing_invoices", [DT, bad_day], landing.root, LOADED_AT)

    rates = con.execute(
        """
        SELECT source_table, dt, sum(rows_read), sum(rows_loaded), sum(rows_rejected),
               sum(rows_rejected) / nullif(sum(rows_read), 0) AS reject_rate
        FROM raw.load_audit GROUP BY source_table, dt ORDER BY dt
        """
    ).fetchall()
    assert rates == [
        ("billing_invoices", DT, 1, 1, 0, 0.0),
        ("billing_invoices", bad_day, 3, 0, 3, 1.0),
    ]
    assert con.execute(
        "SELECT count(*) FROM raw.billing_invoices WHERE _dt = ?", [bad_day]
    ).fetchone() == (0,)


# --------------------------------------------------------- the generator's --bad zone


def _header_of(path: Path) -> list[str]:
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as handle:
        return next(csv.reader(handle))


def _truth_ids(out: Path) -> set[tuple[str, str]]:
    with open(out / "truth.csv", newline="", encoding="utf-8") as handle:
        return {(r["source_system"], r["source_record_id"]) for r in csv.DictReader(handle)}


@pytest.mark.slow
def test_the_generators_bad_landing_zone_is_loaded_as_its_manifest_expects(con, tmp_path):
    generate = pytest.importorskip("demo_data.generate")
    out = tmp_path / "generated"
    generate.generate_landing_zone(out, customers=300, days=30, seed=5, bad=True)
    manifest = json.loads((out / "_bad_manifest.json").read_text())

    for table in RAW_TABLES.values():
        days = sorted(
            date.fromisoformat(p.name[3:]) for p in (out / table.landing_path).glob("dt=*")
        )
        load_partitions(con, table.name, days, out, LOADED_AT)

    # Nothing is lost: per file, read = loaded + rejected, and both agree with the tables.
    raw_rows = " UNION ALL ".join(
        f"SELECT _source_file FROM {t.qualified_name}" for t in RAW_TABLES.values()
    )
    mismatches = con.execute(
        f"""
        WITH in_raw AS (SELECT _source_file AS source_file, count(*) AS n FROM ({raw_rows})
                        GROUP BY ALL),
             in_rejects AS (SELECT source_file, count(*) AS n FROM raw.rejects GROUP BY ALL)
        SELECT a.source_file FROM raw.load_audit a
        LEFT JOIN in_raw r USING (source_file) LEFT JOIN in_rejects j USING (source_file)
        WHERE a.rows_read <> a.rows_loaded + a.rows_rejected
           OR a.rows_loaded <> coalesce(r.n, 0) OR a.rows_rejected <> coalesce(j.n, 0)
        """
    ).fetchall()
    assert mismatches == []
    (n_files,) = con.execute("SELECT count(*) FROM raw.load_audit").fetchone()
    assert n_files == sum(1 for p in out.rglob("part-*") if p.is_file())

    domain_columns = {
        "negative_amount": "amount_due_cents",
        "invalid_email": "email",
        "unknown_enum": "event_type",
    }
    expected_rejects = set()
    for injection in manifest["injections"]:
        file, line, kind = injection["file"], injection["line"], injection["kind"]
        found = con.execute(
            "SELECT line_number, column_name, reason FROM raw.rejects WHERE source_file = ?",
            [file],
        ).fetchall()
        if injection["expected"].startswith("reject"):
            ((column, reason),) = [(c, r) for n, c, r in found if n == line]
            assert column == domain_columns.get(kind, column), injection
            if kind in domain_columns:
                value = injection["detail"].split(" = ", 1)[1]
                assert f"column '{column}' has value '{value}'" in reason, injection
            expected_rejects.add((file, line))
        elif injection["expected"].startswith("load nothing"):
            assert con.execute(
                "SELECT rows_read, rows_rejected FROM raw.load_audit WHERE source_file = ?", [file]
            ).fetchall() == [(0, 0)], injection
        else:
            assert kind == "duplicate_file", injection
            original = injection["detail"].removeprefix("identical copy of ")
            counts = con.execute(
                "SELECT source_file, rows_loaded, rows_rejected FROM raw.load_audit "
                "WHERE source_file IN (?, ?) ORDER BY source_file = ?",
                [original, file, file],
            ).fetchall()
            assert [c[1:] for c in counts] == [counts[0][1:]] * 2 and counts[0][1] > 0

    # ... and nothing else: no clean generated row trips a domain rule.
    all_rejects = set(con.execute("SELECT source_file, line_number FROM raw.rejects").fetchall())
    assert all_rejects == expected_rejects

    # A rejected record is not a record to match: none of them is in truth.csv.
    truth = _truth_ids(out)
    for table, system, key in (
        ("email_contacts", "email", "contact_id"),
        ("billing_customers", "billing", "customer_id"),
    ):
        for source_file, record in con.execute(
            "SELECT source_file, raw_record FROM raw.rejects WHERE source_table = ?", [table]
        ).fetchall():
            header = _header_of(out / source_file)
            values = dict(zip(header, next(csv.reader([record])), strict=False))
            assert (system, values[key]) not in truth, record


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "BIGINT", "allowed": ("a",)}, "need VARCHAR"),
        ({"type": "VARCHAR", "min_value": 0}, "min_value needs BIGINT"),
        ({"allowed": ("a",), "check": "currency"}, "not both"),
        ({"allowed": ("Paid",)}, "lower-case"),
    ],
)
def test_the_contract_refuses_domain_rules_the_loader_cannot_apply(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Column("x", **kwargs)
