"""The demo-source generator writes what docs/landing-contract.md promises, messily, reproducibly."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import phonenumbers
import pytest

from demo_data.bad import BAD_KINDS, BAD_MANIFEST_NAME
from demo_data.experience import EXPERIENCE_BAD_KINDS
from demo_data.generate import (
    DEFAULT_START,
    TRUTH_FILE_NAME,
    first_delivery_day,
    generate_landing_zone,
    main,
    web_chunk_count,
)

START = date(2026, 10, 1)
DAYS = 10
REQUIRED_COLUMNS = {
    "email/contacts": [
        "contact_id",
        "email",
        "first_name",
        "last_name",
        "phone",
        "city",
        "country",
        "subscribed",
        "created_at",
        "updated_at",
    ],
    "email/events": [
        "event_id",
        "contact_id",
        "campaign_id",
        "campaign_name",
        "event_type",
        "occurred_at",
        "url",
    ],
    "billing/customers": [
        "customer_id",
        "user_id",
        "email",
        "name",
        "phone",
        "address_line1",
        "address_city",
        "address_postal_code",
        "address_country",
        "created_at",
        "updated_at",
        "deleted",
    ],
    "billing/invoices": [
        "invoice_id",
        "customer_id",
        "subscription_id",
        "status",
        "currency",
        "amount_due_cents",
        "amount_paid_cents",
        "amount_refunded_cents",
        "product",
        "created_at",
        "updated_at",
        "paid_at",
    ],
    "billing/subscriptions": [
        "subscription_id",
        "customer_id",
        "plan",
        "status",
        "mrr_cents",
        "currency",
        "started_at",
        "updated_at",
        "canceled_at",
    ],
    "support/tickets": [
        "ticket_id",
        "requester_email",
        "requester_name",
        "requester_phone",
        "subject",
        "status",
        "priority",
        "channel",
        "created_at",
        "updated_at",
        "first_responded_at",
        "solved_at",
        "satisfaction",
    ],
    "surveys/responses": [
        "response_id",
        "survey_id",
        "respondent_email",
        "score",
        "comment",
        "submitted_at",
    ],
}
TIMESTAMP_COLUMNS = {
    "first_responded_at",
    "solved_at",
    "submitted_at",
    "created_at",
    "updated_at",
    "occurred_at",
    "paid_at",
    "started_at",
    "canceled_at",
}
ENUMS = {
    ("email/events", "event_type"): {
        "sent",
        "delivered",
        "open",
        "click",
        "bounce",
        "unsubscribe",
        "spam_complaint",
    },
    ("billing/invoices", "status"): {"draft", "open", "paid", "void", "uncollectible"},
    ("billing/subscriptions", "status"): {"trialing", "active", "past_due", "canceled", "unpaid"},
    # The helpdesk sometimes capitalises a status; the contract compares in any case.
    ("support/tickets", "status"): {"new", "open", "pending", "solved", "closed"}
    | {"New", "Open", "Pending", "Solved", "Closed"},
    ("surveys/responses", "score"): {str(score) for score in range(11)},
}
FILE_NAME = re.compile(r"^part-\d{4}\.(csv|jsonl)(\.gz)?$")


def parse_timestamp(text: str) -> datetime:
    """The contract: ISO-8601, no offset means UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def read_text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")


def csv_rows(landing: Path, table: str) -> list[tuple[Path, dict[str, str]]]:
    rows = []
    for path in sorted((landing / table).glob("dt=*/part-*")):
        for row in csv.DictReader(io.StringIO(read_text(path), newline="")):
            rows.append((path, row))
    return rows


def web_events(landing: Path) -> list[tuple[Path, dict]]:
    events = []
    for path in sorted((landing / "web/events").glob("dt=*/part-*")):
        events += [(path, json.loads(line)) for line in read_text(path).splitlines()]
    return events


def dt_of(path: Path) -> date:
    return date.fromisoformat(path.parent.name.removeprefix("dt="))


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "landing"
    summary = generate_landing_zone(out, customers=1500, days=DAYS, seed=11, start=START)
    assert summary.people == 1500 and summary.files_written > 0
    return out


@pytest.fixture(scope="module")
def bad_landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen_bad") / "landing"
    generate_landing_zone(out, customers=600, days=5, seed=3, start=START, bad=True)
    return out


def test_layout_follows_the_contract(landing: Path):
    expected_tables = set(REQUIRED_COLUMNS) | {"web/events"}
    found_tables = set()
    for path in landing.rglob("*"):
        if path.is_dir():
            continue
        relative = path.relative_to(landing)
        if relative.parts in ((TRUTH_FILE_NAME,),):
            continue
        source, table, day_folder, name = relative.parts
        found_tables.add(f"{source}/{table}")
        assert FILE_NAME.match(name), relative
        assert START <= dt_of(path) < START + timedelta(days=DAYS), relative
        assert name.split(".")[1] == ("jsonl" if source == "web" else "csv"), relative
    assert found_tables == expected_tables
    suffixes = {p.name.endswith(".gz") for p in landing.rglob("part-*")}
    assert suffixes == {True, False}, "some files gzipped, some not"


def test_csv_tables_have_every_contract_column_and_parse(landing: Path):
    orders, extra_seen = set(), False
    for table, columns in REQUIRED_COLUMNS.items():
        for path in sorted((landing / table).glob("dt=*/part-*")):
            header = next(csv.reader(io.StringIO(read_text(path))))
            assert set(columns) <= set(header), f"{path} misses {set(columns) - set(header)}"
            extra_seen |= bool(set(header) - set(columns))
            orders.add(tuple(header))
        rows = csv_rows(landing, table)
        assert rows, table
        for path, row in rows:
            for column in TIMESTAMP_COLUMNS & set(columns):
                if row[column]:
                    parse_timestamp(row[column])
            assert row[columns[0]], f"{path}: empty {columns[0]}"
            for (enum_table, enum_column), allowed in ENUMS.items():
                if enum_table == table:
                    assert row[enum_column] in allowed, (path, row)
            for column in (
                "amount_due_cents",
                "amount_paid_cents",
                "amount_refunded_cents",
                "mrr_cents",
            ):
                if column in row:
                    assert int(row[column]) >= 0
            for column in ("subscribed", "deleted"):
                if column in row:
                    assert row[column] in ("true", "false")
        assert all(row["created_at"] for _, row in rows if "created_at" in row)
    assert extra_seen, "an extra column appears in some file"
    assert len(orders) > len(REQUIRED_COLUMNS), "column order varies between files"


def test_web_events_are_segment_objects(landing: Path):
    events = web_events(landing)
    types = {e["type"] for _, e in events}
    assert types == {"page", "track", "identify"}
    names = {e.get("event") for _, e in events if e["type"] == "track"}
    assert {
        "Signed Up",
        "Product Viewed",
        "Added to Cart",
        "Checkout Started",
        "Order Completed",
    } <= names
    for _path, event in events:
        assert event["messageId"] and event["timestamp"]
        assert event.get("anonymousId") or event.get("userId"), event
        parse_timestamp(event["timestamp"])
        if event.get("event") == "Order Completed":
            assert event["properties"]["revenue"] > 0
    assert any("campaign" in e["context"] for _, e in events)
    assert any(e["type"] == "identify" and "email" in e["traits"] for _, e in events)
    assert any("anonymousId" not in e for _, e in events), "server-side events carry only a userId"


def test_same_seed_gives_identical_bytes(tmp_path: Path):
    def digest(root: Path) -> dict[str, str]:
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    generate_landing_zone(tmp_path / "a", customers=400, days=4, seed=5, bad=True)
    generate_landing_zone(tmp_path / "b", customers=400, days=4, seed=5, bad=True, workers=2)
    generate_landing_zone(tmp_path / "c", customers=400, days=4, seed=6, bad=True)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_a_long_history_cuts_the_web_events_into_more_slices(tmp_path: Path, monkeypatch):
    """A year of 100,000 people's web events was one 4.3 GB Arrow string array (over
    Arrow's 2 GiB limit: `cdp generate` failed); a slice now holds a bounded number of
    person-days. Zones of up to two weeks keep their slicing, and so their bytes."""
    assert [web_chunk_count(c, 14) for c in (2_000, 100_000, 1_000_000)] == [1, 1, 8]
    assert web_chunk_count(100_000, 7) == 1
    assert web_chunk_count(100_000, 365) == 21
    for customers, days in ((100_000, 365), (1_000_000, 365), (30_000, 3_650)):
        person_days_per_slice = customers * days / web_chunk_count(customers, days)
        assert person_days_per_slice <= 125_000 * 14

    # the same slicing at a size a test can run: 6 slices of 18 people over 30 days
    monkeypatch.setattr("demo_data.generate.WEB_PEOPLE_PER_CHUNK", 40)
    assert web_chunk_count(100, 30) == 6
    generate_landing_zone(tmp_path / "long", customers=100, days=30, seed=2, start=START)
    events = web_events(tmp_path / "long")
    parts = {path.name for path, _ in events}
    assert len(parts) >= 6, "every slice writes its own part files"
    ids = [event["messageId"] for _, event in events]
    assert len(ids) > 500
    # at-least-once delivery repeats some messages, always with the same id and body
    bodies: dict[str, dict] = {}
    for _, event in events:
        assert bodies.setdefault(event["messageId"], event) == event
    assert len(bodies) > 0.9 * len(ids)
    with open(tmp_path / "long" / TRUTH_FILE_NAME, newline="") as handle:
        truth = list(csv.DictReader(handle))
    keys = [(r["source_system"], r["source_record_id"]) for r in truth]
    assert len(keys) == len(set(keys)), "records stay unique across slices"


def test_truth_covers_exactly_the_identifiable_records(landing: Path):
    with open(landing / TRUTH_FILE_NAME, newline="") as handle:
        assert handle.readline().strip() == "source_system,source_record_id,person_id"
    with open(landing / TRUTH_FILE_NAME, newline="") as handle:
        truth = list(csv.DictReader(handle))
    keys = {(r["source_system"], r["source_record_id"]) for r in truth}
    assert len(keys) == len(truth), "one truth row per record"

    expected = {("email", row["contact_id"]) for _, row in csv_rows(landing, "email/contacts")}
    expected |= {
        ("billing", row["customer_id"]) for _, row in csv_rows(landing, "billing/customers")
    }
    identifiable_anonymous, user_only = set(), set()
    for _, event in web_events(landing):
        anonymous = event.get("anonymousId")
        if anonymous is None:
            user_only.add(event["userId"])
        elif event.get("userId") or (
            event["type"] == "identify"
            and (event["traits"].get("email") or event["traits"].get("phone"))
        ):
            identifiable_anonymous.add(anonymous)
    expected |= {("web", a) for a in identifiable_anonymous} | {("web", u) for u in user_only}
    # A requester with an email or a phone; a respondent with an email (anonymous: no record).
    expected |= {
        ("support", row["ticket_id"])
        for _, row in csv_rows(landing, "support/tickets")
        if row["requester_email"] or row["requester_phone"]
    }
    expected |= {
        ("survey", row["response_id"])
        for _, row in csv_rows(landing, "surveys/responses")
        if row["respondent_email"]
    }
    assert keys == expected

    # A person's anonymousId and their billing record share the userId.
    person_of = {(r["source_system"], r["source_record_id"]): r["person_id"] for r in truth}
    customer_of_user = {
        row["user_id"]: row["customer_id"]
        for _, row in csv_rows(landing, "billing/customers")
        if row["user_id"]
    }
    checked = 0
    for _, event in web_events(landing):
        if event.get("userId") and event.get("anonymousId"):
            assert (
                person_of[("web", event["anonymousId"])]
                == person_of[("billing", customer_of_user[event["userId"]])]
            )
            checked += 1
    assert checked > 0


def test_data_is_as_messy_as_real_sources(landing: Path):
    contacts = [row for _, row in csv_rows(landing, "email/contacts")]
    customers = [row for _, row in csv_rows(landing, "billing/customers")]
    emails = [r["email"] for r in contacts] + [r["email"] for r in customers if r["email"]]
    assert any(e != e.strip() for e in emails), "surrounding spaces"
    assert any(e.strip() != e.strip().lower() for e in emails), "mixed case"
    assert any("+" in e and "gmail" in e.lower() for e in emails), "gmail +tag aliases"
    assert any(
        e.strip().lower()
        in {
            "test@test.com",
            "noreply@example.com",
            "no-reply@gmail.com",
            "asdf@asdf.com",
            "none@none.com",
            "info@example.org",
            "a@a.com",
        }
        for e in emails
    ), "junk addresses"
    names = [r["name"] for r in customers if r["name"]]
    assert any(re.fullmatch(r"[A-Z' \-À-Þ]+, [A-Z' \-À-Þ]+", n) for n in names), "LAST, FIRST names"
    first_names = {r["first_name"] for r in contacts}
    assert first_names & {"Bob", "Liz", "Bill", "Kate", "Mike", "Tom"}, "nicknames"
    phones = [r["phone"] for r in contacts + customers if r["phone"]]
    assert any(p.startswith("(") for p in phones) and any(p.startswith("+") for p in phones)
    assert any(p.startswith("00") for p in phones) and any(
        re.fullmatch(r"\d{3}\.\d{3}\.\d{4}", p) for p in phones
    )
    valid = sum(
        phonenumbers.is_valid_number(phonenumbers.parse(p, "US"))
        for p in phones
        if p.startswith("+")
    )
    assert valid / sum(p.startswith("+") for p in phones) > 0.95
    streets = [r["address_line1"] for r in customers if r["address_line1"]]
    assert any(s.endswith(" Street") for s in streets) and any(s.endswith(" St.") for s in streets)

    with open(landing / TRUTH_FILE_NAME, newline="") as handle:
        truth = {
            (r["source_system"], r["source_record_id"]): r["person_id"]
            for r in csv.DictReader(handle)
        }
    # Households: different people (truth) at the same address and phone.
    by_address: dict[tuple, set[str]] = {}
    for r in customers:
        if r["address_line1"] and r["phone"]:
            key = (
                r["address_line1"].lower(),
                r["address_postal_code"],
                re.sub(r"\D", "", r["phone"])[-7:],
            )
            by_address.setdefault(key, set()).add(truth[("billing", r["customer_id"])])
    assert any(len(people) > 1 for people in by_address.values()), "a household"
    # Different people with one name in one city.
    by_name: dict[tuple, set[str]] = {}
    for r in contacts:
        if r["first_name"] and r["last_name"] and r["city"]:
            by_name.setdefault((r["first_name"], r["last_name"], r["city"]), set()).add(
                truth[("email", r["contact_id"])]
            )
    for r in customers:  # "First Last" billing names (a 1,500-person zone has few namesakes)
        if r["name"] and r["address_city"] and "," not in r["name"] and " " in r["name"]:
            first, last = r["name"].rsplit(" ", 1)
            by_name.setdefault((first, last, r["address_city"]), set()).add(
                truth[("billing", r["customer_id"])]
            )
    assert any(len(people) > 1 for people in by_name.values()), "namesakes"
    # Work and personal address of one person.
    people_emails: dict[str, set[str]] = {}
    for r in contacts:
        people_emails.setdefault(truth[("email", r["contact_id"])], set()).add(
            r["email"].strip().lower()
        )
    assert any(len(e) > 1 for e in people_emails.values())


def test_delivery_is_at_least_once_late_and_changing(landing: Path):
    event_ids = [row["event_id"] for _, row in csv_rows(landing, "email/events")]
    assert len(event_ids) > len(set(event_ids)), "re-delivered email events"
    message_ids = [e["messageId"] for _, e in web_events(landing)]
    assert len(message_ids) > len(set(message_ids)), "re-delivered web events"

    late = 0
    for path, row in csv_rows(landing, "email/events"):
        lag = (dt_of(path) - parse_timestamp(row["occurred_at"]).date()).days
        assert lag <= 7
        late += lag >= 1
    assert late > 0, "late events"
    for path, event in web_events(landing):
        assert 0 <= (dt_of(path) - parse_timestamp(event["timestamp"]).date()).days <= 7
    for path, row in csv_rows(landing, "billing/invoices"):
        assert 0 <= (dt_of(path) - parse_timestamp(row["updated_at"]).date()).days <= 7

    versions: dict[str, list[dict]] = {}
    for _, row in csv_rows(landing, "billing/invoices"):
        versions.setdefault(row["invoice_id"], []).append(row)
    assert any({"open", "paid"} <= {v["status"] for v in vs} for vs in versions.values()), (
        "invoice re-sent when paid"
    )
    assert any(int(v["amount_refunded_cents"]) > 0 for vs in versions.values() for v in vs), (
        "refunds"
    )
    currencies = [vs[0]["currency"] for vs in versions.values()]
    assert currencies.count("usd") > len(currencies) / 2 and len(set(currencies)) > 2

    contact_versions: dict[str, set[str]] = {}
    for _, row in csv_rows(landing, "email/contacts"):
        contact_versions.setdefault(row["contact_id"], set()).add(row["updated_at"])
    assert any(len(v) > 1 for v in contact_versions.values()), (
        "contacts re-exported when they change"
    )
    sub_status = {}
    for _, row in csv_rows(landing, "billing/subscriptions"):
        sub_status.setdefault(row["subscription_id"], []).append(row["status"])
    assert any("canceled" in s and len(s) > 1 for s in sub_status.values()), "cancellations"


def test_bad_mode_injects_every_kind_and_lists_it(bad_landing: Path):
    manifest = json.loads((bad_landing / BAD_MANIFEST_NAME).read_text(encoding="utf-8"))
    injections = manifest["injections"]
    assert {i["kind"] for i in injections} == set(BAD_KINDS)
    with open(bad_landing / "truth.csv", newline="", encoding="utf-8") as handle:
        truth_keys = {(r["source_system"], r["source_record_id"]) for r in csv.DictReader(handle)}
    for item in injections:
        path = bad_landing / item["file"]
        assert path.exists(), item
        raw = path.read_bytes()
        kind = item["kind"]
        if kind == "empty_file":
            assert raw == b""
        elif kind == "duplicate_file":
            original = bad_landing / item["detail"].removeprefix("identical copy of ")
            assert raw == original.read_bytes() and dt_of(path) >= dt_of(original)
        elif kind == "header_only_file":
            assert raw.count(b"\n") == 1
        else:
            data = gzip.decompress(raw) if path.suffix == ".gz" else raw
            line = data.split(b"\n")[item["line"] - 1]
            if kind == "nul_byte":
                assert b"\x00" in line
                continue
            if kind == "non_utf8":
                with pytest.raises(UnicodeDecodeError):
                    line.decode("utf-8")
                continue
            text = line.decode("utf-8")
            if kind == "json_not_object":
                assert not isinstance(json.loads(text), dict)
            elif kind == "json_invalid":
                with pytest.raises(json.JSONDecodeError):
                    json.loads(text)
            elif kind == "unterminated_quote":
                assert text.count('"') % 2 == 1
            else:
                header = next(csv.reader([data.split(b"\n")[0].decode("utf-8")]))
                values = next(csv.reader([text]))
                if kind == "wrong_column_count":
                    assert len(values) != len(header)
                    continue
                row = dict(zip(header, values, strict=True))
                if kind == "unparseable_timestamp":
                    with pytest.raises(ValueError):
                        parse_timestamp(row["occurred_at"])
                elif kind == "negative_amount":
                    assert int(row["amount_due_cents"]) < 0
                elif kind == "invalid_email":
                    assert "@" not in row["email"] or "." not in row["email"].split("@")[-1]
                    # The loader rejects it, so it is no record to match: not in truth.
                    assert ("email", row["contact_id"]) not in truth_keys
                elif kind == "unknown_enum":
                    assert row["event_type"] not in ENUMS[("email/events", "event_type")]
                elif kind == "required_empty":
                    assert row["contact_id"] == ""
                elif kind == "score_out_of_range":
                    assert not 0 <= int(row["score"]) <= 10
                elif kind == "score_not_a_number":
                    assert not row["score"].strip().lstrip("-").isdigit()
                elif kind == "unknown_ticket_status":
                    assert row["status"].lower() not in ENUMS[("support/tickets", "status")]
                elif kind == "missing_ticket_id":
                    assert row["ticket_id"] == ""
                elif kind == "bad_submitted_at":
                    with pytest.raises(ValueError):
                        parse_timestamp(row["submitted_at"])
                if kind in EXPERIENCE_BAD_KINDS:  # rejected, so no record to match
                    system, key = {
                        "support/tickets": ("support", "ticket_id"),
                        "surveys/responses": ("survey", "response_id"),
                    }[item["table"]]
                    assert (system, row[key]) not in truth_keys
    # Bad rows are a small fraction of the delivered rows.
    total_lines = sum(
        p.read_bytes().count(b"\n") for p in bad_landing.rglob("part-*") if p.suffix != ".gz"
    )
    assert len(injections) < total_lines / 100


def test_cli_refuses_a_non_empty_directory(tmp_path: Path, capsys):
    (tmp_path / "old.csv").write_text("x")
    assert main(["--out", str(tmp_path), "--customers", "10", "--days", "1"]) == 2
    assert "not empty" in capsys.readouterr().out


def test_cli_prints_a_summary(tmp_path: Path, capsys):
    assert (
        main(
            [
                "--out",
                str(tmp_path / "lz"),
                "--customers",
                "50",
                "--days",
                "2",
                "--start",
                "2026-01-05",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "web/events" in out and (tmp_path / "lz" / "web/events/dt=2026-01-05").is_dir()


def test_long_histories_end_on_the_default_end_day_without_start():
    # the 14-day demo keeps its first day; a 120-day history ends on the same (past) day
    assert first_delivery_day(14) == DEFAULT_START
    assert first_delivery_day(120) == date(2026, 6, 17)
    assert first_delivery_day(120, end=date(2026, 9, 30)) == date(2026, 6, 3)
    assert first_delivery_day(120, start=date(2026, 1, 1)) == date(2026, 1, 1)
    with pytest.raises(ValueError, match="not both"):
        first_delivery_day(30, start=date(2026, 1, 1), end=date(2026, 2, 1))


def test_every_csv_table_delivers_every_day_unless_a_day_is_skipped(tmp_path: Path):
    """The clean demo has no outage (a quiet day is a header-only file, so `make run` warns
    of nothing); `--skipped-day` gives email/events one, its rows delivered a day late."""
    days = 6
    window = {START + timedelta(days=i) for i in range(days)}
    clean = generate_landing_zone(tmp_path / "clean", customers=150, days=days, seed=2, start=START)
    skipped = generate_landing_zone(
        tmp_path / "skip", customers=150, days=days, seed=2, start=START, skipped_delivery_day=True
    )
    for table in REQUIRED_COLUMNS:
        delivered = {dt_of(p) for p in (tmp_path / "clean" / table).glob("dt=*/part-*")}
        assert delivered == window, table
    outage = START + timedelta(days=days // 2)
    events = {dt_of(p) for p in (tmp_path / "skip" / "email/events").glob("dt=*/part-*")}
    assert events == window - {outage}
    assert skipped.rows_per_table == clean.rows_per_table


def test_markers_let_a_run_take_a_just_written_zone_at_once(tmp_path: Path):
    """`make demo` runs right after `cdp generate --markers`: every day folder carries
    `_SUCCESS`, so the loader takes the fresh files without the settling wait, which an
    unmarked zone of the same age gets."""
    import duckdb

    from ingestion.errors import DeliveryNotReadyError
    from ingestion.load import load_partition

    args = ["--customers", "40", "--days", "2", "--start", "2026-01-05"]
    assert main(["--out", str(tmp_path / "marked"), *args, "--markers"]) == 0
    assert main(["--out", str(tmp_path / "unmarked"), *args]) == 0
    day_folders = sorted((tmp_path / "marked").glob("*/*/dt=*"))
    assert day_folders and all((d / "_SUCCESS").is_file() for d in day_folders)
    assert not list((tmp_path / "unmarked").rglob("_SUCCESS"))

    long_settle = {"settle_seconds": 600.0, "settle_max_wait_seconds": 0.2}
    with duckdb.connect() as con:
        loaded = load_partition(
            con, "email_contacts", date(2026, 1, 5), tmp_path / "marked", **long_settle
        )
        assert loaded.rows_loaded > 0
        with pytest.raises(DeliveryNotReadyError):
            load_partition(
                con, "email_contacts", date(2026, 1, 5), tmp_path / "unmarked", **long_settle
            )


def test_ids_of_different_sources_never_coincide(tmp_path: Path):
    """Real systems issue their ids independently, so a survey response id is never also a
    web event's messageId; an erasure or a join that finds ids across tables relies on it.
    (The generator's streams once shared ids: nearly every survey response id was also a
    messageId.)"""
    generate_landing_zone(tmp_path, customers=5000, days=10, seed=99)
    with open(tmp_path / "truth.csv", encoding="utf-8") as handle:
        records = [(r["source_system"], r["source_record_id"]) for r in csv.DictReader(handle)]
    systems_by_id: dict[str, set[str]] = {}
    for system, record_id in records:
        systems_by_id.setdefault(record_id, set()).add(system)
    assert not {i: s for i, s in systems_by_id.items() if len(s) > 1}
    message_ids = set()
    for path in tmp_path.glob("web/events/dt=*/*"):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            message_ids |= {json.loads(line)["messageId"] for line in handle if line.strip()}
    assert len(message_ids) > 25_000  # more than the old streams' offset between them
    assert not message_ids & set(systems_by_id)
