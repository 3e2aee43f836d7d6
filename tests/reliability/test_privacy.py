"""Erasure leaves no trace; suppression keeps re-deliveries out; BI files hold no clear PII.

One extra `cdp run` of the reference zone's last day (with DAGSTER_HOME, so Dagster's own
storage is searched too, and the opt-in contact file published) after filing an erasure
request for a person found in every source; every other check reads what it wrote or
works in-process on a copy of the reference warehouse.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from demo_data.privacy_requests import ERASURE_TRUTH_FILE_NAME, write_erasure_requests
from ingestion.load import load_partition
from orchestration.cli import main as cdp
from orchestration.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class ErasedPerson:
    person_id: str
    request_id: str
    values: dict[str, set[str]]  # kind -> values that must be gone (email, phone, name, id)
    golden_ids: set[str]
    others: set[tuple[str, str]]  # (source_system, source_record_id) of everyone else


@dataclass(frozen=True)
class ErasureRun:
    zone: Path
    warehouse: Path
    dagster_home: Path
    person: ErasedPerson
    reference_customers: int


def _person_values(zone: Path, warehouse: Path, person_id: str) -> ErasedPerson:
    truth = list(csv.DictReader(open(zone / "truth.csv", encoding="utf-8")))
    mine = {
        (r["source_system"], r["source_record_id"]) for r in truth if r["person_id"] == person_id
    }
    others = {(r["source_system"], r["source_record_id"]) for r in truth} - mine
    ids = {record_id for _, record_id in mine}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        golden = {
            c
            for (s, r, c) in con.execute(
                "select source_system, source_record_id, customer_id from marts.customer_identity_map"
            ).fetchall()
            if (s, r) in mine
        }
        emails, phones, names = set(), set(), set()
        for table, columns in (
            ("email_contacts", "email, phone, first_name || ' ' || last_name, contact_id"),
            ("billing_customers", "email, phone, name, customer_id"),
            ("support_tickets", "requester_email, requester_phone, requester_name, ticket_id"),
        ):
            key = columns.rsplit(", ", 1)[1]
            for email, phone, name, _ in con.execute(
                f"select {columns} from raw.{table} where list_contains(?, {key})", [list(ids)]
            ).fetchall():
                emails |= {email.strip().lower()} if email else set()
                phones |= {phone.strip()} if phone else set()
                names |= {name.strip()} if name and " " in name.strip() else set()
        for (invoice,) in con.execute(
            "select invoice_id from raw.billing_invoices where list_contains(?, customer_id)",
            [list(ids)],
        ).fetchall():
            ids.add(invoice)
        # A name is only evidence when nobody else in the zone has it.
        other_names = {
            n
            for (n,) in con.execute(
                "select full_name from marts.dim_customers where not list_contains(?, customer_id)",
                [list(golden)],
            ).fetchall()
            if n
        }
        e164 = {
            p
            for (p,) in con.execute(
                "select phone from marts.dim_customers where list_contains(?, customer_id)",
                [list(golden)],
            ).fetchall()
            if p
        }
    return ErasedPerson(
        person_id=person_id,
        request_id="",
        values={
            "email": emails,
            "phone": phones | e164,
            "name": {n for n in names if n not in other_names},
            "id": {i for i in ids if len(i) >= 6},
        },
        golden_ids=golden,
        others=others,
    )


@pytest.fixture(scope="session")
def erasure_run(reference, tmp_path_factory) -> ErasureRun:
    root = tmp_path_factory.mktemp("privacy")
    zone = root / "landing"
    shutil.copytree(reference.zone, zone)
    assert write_erasure_requests(zone, 1, seed=5) == 1
    ((request_id, person_id),) = [
        (r["request_id"], r["person_id"])
        for r in csv.DictReader(open(zone / ERASURE_TRUTH_FILE_NAME, encoding="utf-8"))
    ]
    warehouse = reference.copy_to(root / "wh")
    person = _person_values(zone, warehouse, person_id)
    person = ErasedPerson(person_id, request_id, person.values, person.golden_ids, person.others)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (customers,) = con.execute("select count(*) from marts.dim_customers").fetchone()
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(PROJECT_ROOT / "orchestration" / "dagster.yaml", dagster_home)
    env = {"DAGSTER_HOME": str(dagster_home), "CDP_PUBLISH_CONTACTS": "1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        day = reference.days[-1]
        assert (
            cdp(["run", "--landing", str(zone), "--warehouse", str(warehouse), "--date", day]) == 0
        )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return ErasureRun(zone, warehouse, dagster_home, person, customers)


def _table_hits(database: Path, needles: set[str]) -> list[str]:
    """`schema.table.column` of every text value holding a needle (case-insensitive)."""
    hits = []
    pattern = "|".join(re.escape(n.lower()) for n in needles)
    with duckdb.connect(str(database), read_only=True) as con:
        columns = con.execute(
            "select schema_name, table_name, column_name from duckdb_columns() "
            "where database_name = current_database() and not internal "
            "and (data_type in ('VARCHAR', 'JSON') or data_type like 'VARCHAR%')"
        ).fetchall()
        for schema, table, column in columns:
            (n,) = con.execute(
                f'select count(*) from "{schema}"."{table}" '
                f'where regexp_matches(lower(cast("{column}" as varchar)), ?)',
                [pattern],
            ).fetchone()
            if n:
                hits.append(f"{schema}.{table}.{column}")
    return hits


def _files_written(run: ErasureRun) -> list[Path]:
    folders = [run.warehouse.parent, run.dagster_home, PROJECT_ROOT / "dbt_project" / "logs"]
    return [p for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file()]


def test_erasure_leaves_no_trace_of_the_person_anywhere_the_pipeline_wrote(erasure_run):
    person = erasure_run.person
    assert all(person.values[k] for k in ("email", "id")), person.values
    needles = set().union(*person.values.values())
    # Table by table, in the warehouse and the BI files (DuckDB compresses strings, so the
    # values are searched as values, and below as bytes too).
    databases = [erasure_run.warehouse, erasure_run.warehouse.parent / "bi.duckdb"]
    databases.append(erasure_run.warehouse.parent / "bi_contacts.duckdb")
    for database in databases:
        assert _table_hits(database, needles) == [], database
        golden_hits = _table_hits(database, person.golden_ids)
        # The erasure log keeps the golden ids affected (our surrogate; nothing else
        # refers to them any more), and only it.
        assert set(golden_hits) <= {"privacy.erasure_log.customer_ids"}, golden_hits
    parquet = erasure_run.warehouse.parent / "bi_parquet"
    with duckdb.connect() as con:
        for path in parquet.glob("*.parquet"):
            text = con.execute(
                f"select string_agg(cast(columns(*) as varchar), '|') from '{path}'"
            ).fetchall()
            blob = str(text).lower()
            assert not [n for n in needles | person.golden_ids if n.lower() in blob], path
    # Raw bytes of every file: DuckDB, Parquet, Data Docs HTML, GX JSON, run records,
    # Dagster's SQLite storage, dbt's logs.
    files = _files_written(erasure_run)
    assert any(p.suffix == ".html" for p in files) and any(p.name == "runs.db" for p in files)
    for path in files:
        data = path.read_bytes().lower()
        found = [n for n in needles if _holds(data, n)]
        if path != erasure_run.warehouse:
            found += [g for g in person.golden_ids if _holds(data, g)]
        assert not found, f"{path} still holds values of the erased person"


def _holds(data: bytes, value: str) -> bool:
    """`value` in `data` as a value of its own, not inside a longer token: a short numeric id
    (a ticket's `010008`) also turns up inside Dagster's timestamps (`12:52:59.010008`)."""
    pattern = rb"(?<![0-9a-z.])" + re.escape(value.lower().encode()) + rb"(?![0-9a-z])"
    return re.search(pattern, data) is not None


def test_everyone_else_is_intact_and_the_log_proves_the_erasure(erasure_run, reference):
    person = erasure_run.person
    with duckdb.connect(str(erasure_run.warehouse), read_only=True) as con:
        mapped = set(
            con.execute(
                "select source_system, source_record_id from marts.customer_identity_map"
            ).fetchall()
        )
        (customers,) = con.execute("select count(*) from marts.dim_customers").fetchone()
        log = con.execute(
            "select request_id, identifier_kind, identifier_hash, customer_ids, rows_erased, "
            "rows_per_table, ambiguous from privacy.erasure_log"
        ).fetchall()
        (suppressed,) = con.execute(
            "select count(*) from privacy.suppressed_identifiers"
        ).fetchone()
    with duckdb.connect(str(reference.warehouse), read_only=True) as con:
        before = set(
            con.execute(
                "select source_system, source_record_id from marts.customer_identity_map"
            ).fetchall()
        )
    kept = before & person.others
    # Everyone else's records are still resolved (a record carrying the erased person's
    # own phone or email would go with them; none of another person's does here).
    assert kept - mapped == set()
    assert customers == erasure_run.reference_customers - len(person.golden_ids)
    ((request_id, kind, identifier_hash, customer_ids, rows, per_table, ambiguous),) = log
    assert request_id == person.request_id and kind == "email" and not ambiguous
    assert set(customer_ids) == person.golden_ids and rows > 0
    assert re.fullmatch(r"[0-9a-f]{64}", identifier_hash)
    for table in ("raw.email_contacts", "raw.billing_customers", "marts.dim_customers"):
        assert table in per_table
    assert suppressed >= 3


def test_a_re_delivered_record_of_the_erased_person_is_suppressed_and_counted(
    erasure_run, tmp_path, monkeypatch
):
    person = erasure_run.person
    source = next(erasure_run.zone.glob("email/contacts/dt=*/*.csv"))
    header, *rows = source.read_text(encoding="utf-8").splitlines()
    email = sorted(person.values["email"])[0]
    original = [
        line
        for path in erasure_run.zone.glob("email/contacts/dt=*/*.csv")
        for line in path.read_text(encoding="utf-8").splitlines()[1:]
        if email in line.lower()
    ]
    assert original, "the erased person has an email contact in the zone"
    landing = tmp_path / "landing"
    day = landing / "email" / "contacts" / "dt=2026-10-03"
    day.mkdir(parents=True)
    stranger = rows[0] if email not in rows[0].lower() else rows[1]
    (day / "part-0000.csv").write_text("\n".join([header, original[0], stranger]) + "\n")
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(erasure_run.warehouse, copy)
    monkeypatch.setenv("CDP_PRIVACY_KEY_FILE", str(erasure_run.warehouse.parent / "privacy.key"))
    monkeypatch.delenv("CDP_PRIVACY_SALT", raising=False)
    from datetime import date

    with duckdb.connect(str(copy)) as con:
        result = load_partition(con, "email_contacts", date(2026, 10, 3), landing, settle_seconds=0)
        audit = con.execute(
            "select rows_read, rows_loaded, rows_rejected, rows_suppressed from raw.load_audit "
            "where source_table = 'email_contacts' and dt = date '2026-10-03'"
        ).fetchall()
        stored = con.execute(
            "select count(*) from raw.email_contacts where lower(email) = ?", [email]
        ).fetchone()[0]
        rejected = con.execute(
            "select count(*) from raw.rejects where lower(raw_record) like ?", [f"%{email}%"]
        ).fetchone()[0]
    assert (result.rows_loaded, result.rows_suppressed) == (1, 1)
    assert audit == [(2, 1, 0, 1)]  # read = loaded + rejected + suppressed
    assert stored == 0 and rejected == 0


SALT = "a-test-salt-of-enough-length"


def _erase_by_email(con: duckdb.DuckDBPyConnection, request_id: str, email: str) -> None:
    """File an erasure request for `email` in raw and carry it out, as the step does."""
    from privacy.erasure import erase_pending_requests

    con.execute(
        "insert into raw.privacy_requests values (?, 'erase', ?, null, "
        "timestamp '2026-10-02 09:00', date '2026-10-02', 'manual.csv', 2, now())",
        [request_id, email],
    )
    erase_pending_requests(con, SALT)


def _count(con: duckdb.DuckDBPyConnection, sql: str, *params) -> int:
    return con.execute(sql, list(params)).fetchone()[0]


def test_every_landed_row_stays_accounted_for_when_an_erased_day_is_loaded_again(
    erasure_run, tmp_path, monkeypatch
):
    """landed = raw + rejected (less erased people's rows) after the erasure, and again
    after every day is loaded once more: the reload suppresses the person's rows, and the
    rows erased from the loads it replaced no longer count (they counted twice before)."""
    from datetime import date

    from ingestion.contract import RAW_TABLES
    from orchestration.run_summary import reconciliation_rows

    def unbalanced(warehouse: Path) -> list[tuple]:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            rows = reconciliation_rows(con)
        return [r for r in rows if r[1] is not None and r[1] != r[2] + (r[3] or 0)]

    assert unbalanced(erasure_run.warehouse) == []
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(erasure_run.warehouse, copy)
    monkeypatch.setenv("CDP_PRIVACY_KEY_FILE", str(erasure_run.warehouse.parent / "privacy.key"))
    monkeypatch.delenv("CDP_PRIVACY_SALT", raising=False)
    with duckdb.connect(str(copy)) as con:
        suppressed = 0
        for table in RAW_TABLES:
            for day in sorted({p.name[3:] for p in erasure_run.zone.glob("*/*/dt=*")}):
                result = load_partition(
                    con, table, date.fromisoformat(day), erasure_run.zone, settle_seconds=0
                )
                suppressed += result.rows_suppressed
    assert suppressed > 0
    assert unbalanced(copy) == []
    with duckdb.connect(str(copy), read_only=True) as con:
        # the erasure recorded which loads it erased from; the reload replaced them all
        assert con.execute("select count(*) from privacy.erased_raw_rows").fetchone()[0] > 0


def test_a_value_judged_shared_is_not_suppressed_so_other_peoples_rows_still_load(
    reference, tmp_path
):
    """The suppression list drops every later row carrying a value: a value the identity
    engine judged shared (a shop's phone on the person's billing record) must not go on
    it, or other people's rows would be dropped, and a re-run of a loaded day would lose
    rows the first run kept. The person's own email does go on it."""
    from ingestion.suppression import keyed_hash

    copy = reference.copy_to(tmp_path / "wh")
    with duckdb.connect(str(copy)) as con:
        found = con.execute(
            "select lower(trim(r.email)), b.phone, r.phone_e164 from identity.identity_records r "
            "join raw.billing_customers b on b.customer_id = r.source_record_id "
            "where r.source_system = 'billing' and r.email is not null and b.phone is not null "
            "and r.phone_e164 is not null order by r.source_record_id limit 1"
        ).fetchone()
        assert found, "the reference zone has a billing customer with an email and a phone"
        email, phone, e164 = found
        con.execute(
            "insert into identity.shared_values (identifier, value_hash, reason) "
            "values ('phone', md5(?), 'the shop''s own number')",
            [e164],
        )
        _erase_by_email(con, "dsr-own", email)
        suppressed = {
            h
            for (h,) in con.execute(
                "select identifier_hash from privacy.suppressed_identifiers"
            ).fetchall()
        }
        assert keyed_hash(con, SALT, "email", email) in suppressed
        assert keyed_hash(con, SALT, "phone", phone) not in suppressed


def _numbered_ticket(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """A ticket whose id is a plain number, and its requester's email."""
    return con.execute(
        "select ticket_id, lower(trim(requester_email)) from raw.support_tickets "
        "where requester_email is not null and regexp_full_match(ticket_id, '[0-9]+') "
        "order by ticket_id limit 1"
    ).fetchone()


def test_an_all_digit_ticket_id_erases_the_ticket_not_a_strangers_street_number(
    reference, tmp_path
):
    """A helpdesk's ticket ids are plain numbers, which also occur inside other people's
    street addresses, phones and amounts: erasing the ticket's requester must not delete
    a stranger's billing record whose address starts with the same number."""
    copy = reference.copy_to(tmp_path / "wh")
    with duckdb.connect(str(copy)) as con:
        ticket, email = _numbered_ticket(con)
        (stranger,) = con.execute(
            "select customer_id from raw.billing_customers where email is not null "
            "and lower(trim(email)) <> ? order by customer_id limit 1",
            [email],
        ).fetchone()
        con.execute(
            "update raw.billing_customers set address_line1 = ? || ' Oak Street' "
            "where customer_id = ?",
            [ticket, stranger],
        )
        _erase_by_email(con, "dsr-ticket", email)
        tickets_left = _count(
            con, "select count(*) from raw.support_tickets where ticket_id = ?", ticket
        )
        strangers_left = _count(
            con, "select count(*) from raw.billing_customers where customer_id = ?", stranger
        )
    assert tickets_left == 0
    assert strangers_left > 0


def test_a_plain_number_id_erases_its_own_sources_rows_not_an_equal_id_of_another_source(
    reference, tmp_path
):
    """Sources number their records independently: a helpdesk's ticket 4521 and a survey
    tool's response 4521 are different people's. Erasing the ticket's requester deletes the
    ticket (raw, staging, marts, its identity record) and not the stranger's response."""
    copy = reference.copy_to(tmp_path / "wh")
    with duckdb.connect(str(copy)) as con:
        ticket, email = _numbered_ticket(con)
        response, stranger_email = con.execute(
            "select response_id, lower(trim(respondent_email)) from raw.survey_responses "
            "where respondent_email is not null and lower(trim(respondent_email)) <> ? "
            "order by response_id limit 1",
            [email],
        ).fetchone()
        # the survey tool happens to have given the stranger's response the same number
        for table in ("raw.survey_responses", "staging.stg_surveys__responses"):
            con.execute(
                f"update {table} set response_id = ? where response_id = ?", [ticket, response]
            )
        for table in ("identity.identity_records", "marts.customer_identity_map"):
            con.execute(
                f"update {table} set source_record_id = ? "
                "where source_system = 'survey' and source_record_id = ?",
                [ticket, response],
            )
        con.execute(
            "update identity.identity_records set record_key = 'survey:' || ? "
            "where record_key = 'survey:' || ?",
            [ticket, response],
        )
        _erase_by_email(con, "dsr-numbered", email)
        counts = {
            name: _count(con, sql, ticket)
            for name, sql in {
                "ticket": "select count(*) from raw.support_tickets where ticket_id = ?",
                "ticket_mart": "select count(*) from marts.fct_support_tickets where ticket_id = ?",
                "ticket_identity": "select count(*) from identity.identity_records "
                "where record_key = 'support:' || ?",
                "response": "select count(*) from raw.survey_responses where response_id = ?",
                "response_staging": "select count(*) from staging.stg_surveys__responses "
                "where response_id = ?",
                "response_identity": "select count(*) from identity.identity_records "
                "where record_key = 'survey:' || ?",
                "response_map": "select count(*) from marts.customer_identity_map "
                "where source_system = 'survey' and source_record_id = ?",
            }.items()
        }
        stranger_left = _count(
            con,
            "select count(*) from raw.survey_responses where lower(trim(respondent_email)) = ?",
            stranger_email,
        )
    assert counts["ticket"] == counts["ticket_mart"] == counts["ticket_identity"] == 0, counts
    assert counts["response"] == counts["response_staging"] == 1, counts
    assert counts["response_identity"] == counts["response_map"] == 1, counts
    assert stranger_left > 0


def test_someone_else_logged_in_on_the_persons_browser_keeps_their_account(reference, tmp_path):
    """A family computer: the person browsed and logged in on it, then someone else logged
    in on the same browser. Erasing the person erases the person, not the other account
    found on that browser (its billing record and identity records stay)."""
    copy = reference.copy_to(tmp_path / "wh")
    with duckdb.connect(str(copy)) as con:
        email, user, browser = con.execute(
            "select lower(trim(b.email)), b.user_id, w.anonymous_id from raw.billing_customers b "
            "join raw.web_events w on w.user_id = b.user_id "
            "where b.email is not null and w.anonymous_id is not null "
            "order by b.customer_id, w.anonymous_id limit 1"
        ).fetchone()
        other_customer, other_user = con.execute(
            "select customer_id, user_id from raw.billing_customers where user_id is not null "
            "and user_id <> ? and coalesce(lower(trim(email)), '') <> ? "
            "order by customer_id desc limit 1",
            [user, email],
        ).fetchone()
        con.execute(
            "insert into raw.web_events select * replace ('family-computer-login' as message_id, "
            "? as user_id) from raw.web_events where anonymous_id = ? limit 1",
            [other_user, browser],
        )
        _erase_by_email(con, "dsr-browser", email)
        persons_rows = _count(
            con, "select count(*) from raw.billing_customers where user_id = ?", user
        )
        others_rows = _count(
            con, "select count(*) from raw.billing_customers where customer_id = ?", other_customer
        )
        others_records = _count(
            con,
            "select count(*) from identity.identity_records where source_record_id = ?",
            other_customer,
        )
    assert persons_rows == 0
    assert others_rows > 0 and others_records > 0


def test_bi_files_hold_no_street_address_nor_clear_email_and_contacts_are_private(erasure_run):
    folder = erasure_run.warehouse.parent
    with duckdb.connect(str(folder / "bi.duckdb"), read_only=True) as con:
        columns = {
            c
            for (c,) in con.execute(
                "select column_name from duckdb_columns() where table_name = 'dim_customers'"
            ).fetchall()
        }
        assert "address_line1" not in columns and "address_postal_code" not in columns
        assert "full_name" not in columns
        emails = [
            e for (e,) in con.execute("select email from marts.dim_customers").fetchall() if e
        ]
        assert emails and all(re.fullmatch(r"[0-9a-f]{16}", e) for e in emails)
        assert _table_hits(folder / "bi.duckdb", {"@"}) == []
        urls = con.execute(
            "select count(*) from marts.fct_web_sessions where landing_page_url like '%?%'"
        ).fetchone()[0]
        assert urls == 0
    with duckdb.connect(str(folder / "bi_contacts.duckdb"), read_only=True) as con:
        clear = con.execute(
            "select count(*) from marts.dim_customers where email like '%@%'"
        ).fetchone()[0]
        assert clear > 0
    assert stat.S_IMODE((folder / "bi_contacts.duckdb").stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / "privacy.key").stat().st_mode) == 0o600


def test_erasure_through_a_shared_inbox_erases_only_the_records_carrying_it(reference, tmp_path):
    from privacy.erasure import erase_pending_requests

    copy = reference.copy_to(tmp_path / "wh")
    with duckdb.connect(str(copy)) as con:
        shared = con.execute(
            "select lower(trim(email)) as e, list(distinct customer_id) from "
            "identity.identity_records where email is not null group by 1 "
            "having count(distinct customer_id) > 1 order by 1 limit 1"
        ).fetchone()
        assert shared, "the reference zone has a shared inbox"
        email, customers = shared
        carrying = set(
            con.execute(
                "select source_record_id from identity.identity_records where lower(trim(email)) = ?",
                [email],
            ).fetchall()
        )
        others = con.execute(
            "select source_record_id, customer_id from identity.identity_records "
            "where list_contains(?, customer_id) and coalesce(lower(trim(email)), '') <> ?",
            [customers, email],
        ).fetchall()
        other_records = {(r,) for r, _ in others}
        con.execute(
            "insert into raw.privacy_requests values ('dsr-shared', 'erase', ?, null, "
            "timestamp '2026-10-02 09:00', date '2026-10-02', 'manual.csv', 2, now())",
            [email.upper()],
        )
        (outcome,), _ = erase_pending_requests(con, "a-test-salt-of-enough-length")
        left = set(con.execute("select source_record_id from identity.identity_records").fetchall())
        dim = {c for (c,) in con.execute("select customer_id from marts.dim_customers").fetchall()}
    assert outcome.ambiguous and outcome.customers_left >= 1
    # Only a customer whose every record carried the inbox goes whole.
    assert set(outcome.customer_ids) < set(customers)
    assert not (carrying & left)
    # The people who shared the inbox keep their other records, and their customers.
    assert other_records <= left
    survivors = {c for _, c in others}
    assert survivors <= dim


def test_repeated_and_empty_requests_are_logged_and_leave_no_identifier(reference, tmp_path):
    from privacy.erasure import erase_pending_requests, purge_processed_requests

    copy = reference.copy_to(tmp_path / "wh")
    with duckdb.connect(str(copy)) as con:
        (email,) = con.execute("select min(lower(trim(email))) from raw.email_contacts").fetchone()
        insert = (
            "insert into raw.privacy_requests values (?, 'erase', ?, null, "
            "timestamp '2026-10-02 09:00', date '2026-10-02', 'manual.csv', 2, now())"
        )
        con.execute(insert, ["dsr-a", email])
        con.execute(insert, ["dsr-none", None])
        first, _ = erase_pending_requests(con, "a-test-salt-of-enough-length")
        # The source re-delivers dsr-a, and the person asks again under a new id.
        con.execute(insert, ["dsr-a", email])
        con.execute(insert, ["dsr-b", email])
        assert purge_processed_requests(con) == 1
        second, _ = erase_pending_requests(con, "a-test-salt-of-enough-length")
        left = con.execute("select count(*) from raw.privacy_requests").fetchone()[0]
        logged = con.execute(
            "select request_id, identifier_kind from privacy.erasure_log order by 1"
        ).fetchall()
    assert [o.request_id for o in first] == ["dsr-a", "dsr-none"]
    assert first[0].rows_erased > 0
    # A request naming nobody erases nothing but itself.
    assert first[1].rows_per_table == {"raw.privacy_requests": 1}
    assert [o.request_id for o in second] == ["dsr-b"] and second[0].customer_ids == []
    assert left == 0
    assert logged == [("dsr-a", "email"), ("dsr-b", "email"), ("dsr-none", "none")]


def test_cdp_forget_files_a_request_the_loader_takes(tmp_path, capsys):
    from datetime import UTC, datetime

    landing = tmp_path / "landing"
    assert cdp(["forget", "--email", " Ada@Example.com ", "--landing", str(landing)]) == 0
    (path,) = landing.glob("privacy/requests/dt=*/*.csv")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        day = datetime.now(UTC).date()
        result = load_partition(con, "privacy_requests", day, landing, settle_seconds=0)
        row = con.execute("select request_type, email from raw.privacy_requests").fetchone()
    assert result.rows_loaded == 1 and row == ("erase", "Ada@Example.com")
    warehouse = tmp_path / "none.duckdb"
    assert cdp(["forget", "--customer", "cust_x", "--warehouse", str(warehouse)]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_a_day_of_requests_erases_what_each_request_erases_on_its_own(
    reference, tmp_path, monkeypatch
):
    """The day's requests share one scan of the warehouse (privacy/erasure.py, `_Scope`);
    the log, the suppression list and every table end exactly as when each request scans
    every table itself, across the kinds of request: one person by email and again by
    phone, another by phone, a shared inbox, an unknown email and an empty request."""
    import privacy.erasure as erasure

    # A fixed load time: the two copies' logs of which load each erased row came from
    # (privacy.erased_raw_rows) must compare equal.
    insert = (
        "insert into raw.privacy_requests values (?, 'erase', ?, ?, "
        "timestamp '2026-10-02 09:00', date '2026-10-02', 'manual.csv', 2, "
        "timestamp '2026-10-02 09:05')"
    )
    at = datetime(2026, 10, 3, 12, 0)
    results = {}
    for scanned in ("once", "per request"):
        copy = reference.copy_to(tmp_path / scanned.replace(" ", "_"))
        with duckdb.connect(str(copy)) as con:
            people = con.execute(
                "select any_value(lower(trim(email))), any_value(phone_e164) "
                "from identity.identity_records where email is not null and phone_e164 is not null "
                "group by customer_id having count(*) > 1 order by 1 limit 2"
            ).fetchall()
            (shared,) = con.execute(
                "select lower(trim(email)) from identity.identity_records where email is not null "
                "group by 1 having count(distinct customer_id) > 1 order by 1 limit 1"
            ).fetchone()
            (first_email, first_phone), (_, second_phone) = people
            for request_id, email, phone in [
                ("dsr-1", first_email.upper(), None),
                ("dsr-2", None, second_phone),
                ("dsr-3", None, first_phone),
                ("dsr-4", shared, None),
                ("dsr-5", "nobody-at-all@example.org", None),
                ("dsr-6", None, None),
            ]:
                con.execute(insert, [request_id, email, phone])
            if scanned == "per request":
                monkeypatch.setattr(erasure, "_candidate_rows", lambda *_: None)
            outcomes, needles = erasure.erase_pending_requests(
                con, "a-test-salt-of-enough-length", at
            )
            monkeypatch.undo()
            tables = con.execute(
                "select schema_name, table_name from duckdb_tables() "
                "where database_name = current_database() order by 1, 2"
            ).fetchall()
            results[scanned] = (
                [(o.request_id, o.customer_ids, o.rows_per_table, o.ambiguous) for o in outcomes],
                needles.file_values(),
                {
                    f"{s}.{t}": con.execute(f'select * from "{s}"."{t}" order by all').fetchall()
                    for s, t in tables
                },
            )
    once, per_request = results["once"], results["per request"]
    assert once[0] == per_request[0]
    by_id = {request_id: (rows, ambiguous) for request_id, _, rows, ambiguous in once[0]}
    assert by_id["dsr-1"][0] and by_id["dsr-2"][0], "the email and the phone request erased rows"
    assert by_id["dsr-4"][1], "the shared inbox is ambiguous"
    assert by_id["dsr-6"][0] == {"raw.privacy_requests": 1}
    assert once[1] == per_request[1]
    assert once[2].keys() == per_request[2].keys()
    for table in once[2]:
        assert once[2][table] == per_request[2][table], table
