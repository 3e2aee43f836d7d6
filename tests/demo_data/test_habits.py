"""The generator's hard habits (`cdp generate --hard` / `--habits`) appear as documented,
keep every record in truth.csv with its real person, and stay deterministic."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path

import phonenumbers
import pytest

from demo_data.generate import TRUTH_FILE_NAME, generate_landing_zone, main
from demo_data.habits import (
    DEFAULT_HABITS,
    HARD_HABITS,
    MISSPELT_DOMAINS,
    NO_HABITS,
    ROLE_MAILBOXES,
    habits_from_names,
)
from tests.demo_data.test_generate import START, csv_rows, web_events

MISSPELLINGS = {wrong for wrongs in MISSPELT_DOMAINS.values() for wrong in wrongs}


@pytest.fixture(scope="module")
def hard_landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen_hard") / "landing"
    generate_landing_zone(out, customers=2000, days=6, seed=5, start=START, habits=HARD_HABITS)
    return out


@pytest.fixture(scope="module")
def person_of(hard_landing: Path) -> dict[tuple[str, str], str]:
    with open(hard_landing / TRUTH_FILE_NAME, newline="") as handle:
        return {
            (r["source_system"], r["source_record_id"]): r["person_id"]
            for r in csv.DictReader(handle)
        }


def _email_records(landing: Path, person_of) -> list[tuple[str, str, dict]]:
    """(normalised address, person, row) of every contact and billing row with an address."""
    records = []
    for _, row in csv_rows(landing, "email/contacts"):
        records.append((row["email"].strip().lower(), person_of[("email", row["contact_id"])], row))
    for _, row in csv_rows(landing, "billing/customers"):
        if row["email"]:
            records.append(
                (row["email"].strip().lower(), person_of[("billing", row["customer_id"])], row)
            )
    return records


def test_unlisted_shared_inboxes_are_used_by_several_people(hard_landing, person_of):
    people_of_address: dict[str, set[str]] = defaultdict(set)
    for address, person, _ in _email_records(hard_landing, person_of):
        people_of_address[address].add(person)
    shared = {a: p for a, p in people_of_address.items() if len(p) >= 2}
    role = {a: p for a, p in shared.items() if a.split("@")[0] in ROLE_MAILBOXES}
    family = {a: p for a, p in shared.items() if a.split("@")[0] not in ROLE_MAILBOXES}
    assert len(role) >= 5, "small companies' role inboxes shared by their buyers"
    assert any(len(p) >= 3 for p in role.values())
    assert len(family) >= 5, "family addresses shared by household members"
    # The role inboxes live on each small company's own domain, not on a provider.
    domains = {a.split("@")[1] for a in role}
    assert len(domains) == len(role)
    assert not domains & {"gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "example.com"}


def test_changed_surnames_show_old_and_new_over_time(hard_landing, person_of):
    last_names_of_contact: dict[str, set[str]] = defaultdict(set)
    for _, row in csv_rows(hard_landing, "email/contacts"):
        if row["last_name"]:
            last_names_of_contact[row["contact_id"]].add(row["last_name"])
    renamed = [names for names in last_names_of_contact.values() if len(names) >= 2]
    assert len(renamed) >= 3, "the ESP's change export updates some contacts to a new surname"


def test_foreign_phones_in_national_format_carry_their_country(hard_landing):
    national = []
    for _, row in csv_rows(hard_landing, "billing/customers"):
        phone, country = row["phone"], row["address_country"]
        if phone.startswith("0") and not phone.startswith("00") and country not in ("", "US"):
            national.append((phone, country))
    for _, row in csv_rows(hard_landing, "email/contacts"):
        phone, country = row["phone"], row["country"]
        if (
            phone.startswith("0")
            and not phone.startswith("00")
            and country.upper() not in ("", "US")
        ):
            national.append((phone, country.upper()))
    assert len(national) >= 50
    for phone, country in national:
        parsed = phonenumbers.parse(phone, country)
        assert phonenumbers.is_possible_number(parsed), (phone, country)
        # Read as a US number it would be a different (or no) number: the country matters.
        assert parsed.country_code != 1


def test_misspelt_domains_last_first_names_and_middle_initials(hard_landing, person_of):
    records = _email_records(hard_landing, person_of)
    assert sum(a.split("@")[1] in MISSPELLINGS for a, _, _ in records) >= 10

    contact_name = {}
    for _, row in csv_rows(hard_landing, "email/contacts"):
        if row["first_name"] and row["last_name"]:
            contact_name[person_of[("email", row["contact_id"])]] = (
                row["first_name"],
                row["last_name"],
            )
    billing_names = [
        (person_of[("billing", row["customer_id"])], row["name"])
        for _, row in csv_rows(hard_landing, "billing/customers")
        if row["name"]
    ]
    last_first = [
        name
        for person, name in billing_names
        if person in contact_name
        and name == f"{contact_name[person][1]} {contact_name[person][0]}"
        and "," not in name
    ]
    assert len(last_first) >= 3, '"Last First" names without a comma'

    middle = re.compile(r"^\S+ [A-Z]\.?$")
    contact_firsts = [row["first_name"] for _, row in csv_rows(hard_landing, "email/contacts")]
    assert sum(bool(middle.match(f)) for f in contact_firsts) >= 20
    web_names = [
        e["traits"]["name"]
        for _, e in web_events(hard_landing)
        if e["type"] == "identify" and "name" in e.get("traits", {})
    ]
    assert any(re.search(r" [A-Z]\.? ", n) for n in web_names), "middle initials on the web"


def test_work_and_personal_contacts_of_one_person(hard_landing, person_of):
    contacts_of: dict[str, list[dict]] = defaultdict(list)
    for _, row in csv_rows(hard_landing, "email/contacts"):
        contacts_of[person_of[("email", row["contact_id"])]].append(row)
    two_addresses = [
        rows
        for rows in contacts_of.values()
        if len({r["email"].strip().lower() for r in rows}) >= 2
    ]
    assert len(two_addresses) >= 40
    # Some tie the two by nothing but the name: no phone on the work contact.
    assert any(any(not r["phone"] for r in rows) for rows in two_addresses)


def test_every_record_keeps_its_person_in_truth(hard_landing, person_of):
    keys = {("email", row["contact_id"]) for _, row in csv_rows(hard_landing, "email/contacts")}
    keys |= {
        ("billing", row["customer_id"]) for _, row in csv_rows(hard_landing, "billing/customers")
    }
    assert keys <= set(person_of)


def test_hard_zones_are_deterministic_and_none_turns_habits_off(tmp_path: Path):
    def files(root: Path) -> dict[str, bytes]:
        return {
            p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
        }

    for name in ("a", "b"):
        generate_landing_zone(tmp_path / name, 300, 3, seed=9, start=START, habits=HARD_HABITS)
    assert files(tmp_path / "a") == files(tmp_path / "b")

    generate_landing_zone(tmp_path / "plain", 1500, 3, seed=9, start=START, habits=NO_HABITS)
    addresses = [
        row["email"].strip().lower() for _, row in csv_rows(tmp_path / "plain", "email/contacts")
    ]
    assert not any(a.split("@")[1] in MISSPELLINGS for a in addresses)
    assert not any(a.split("@")[0] in ROLE_MAILBOXES for a in addresses)


def test_habit_names_parse_and_unknown_names_are_refused(tmp_path: Path, capsys):
    assert habits_from_names(None) == DEFAULT_HABITS
    assert habits_from_names("none") == NO_HABITS
    assert habits_from_names("x", hard=True) == HARD_HABITS
    only = habits_from_names("shared-inboxes, misspelt-domains")
    assert only.family_inbox == HARD_HABITS.family_inbox
    assert only.misspelt_domain == HARD_HABITS.misspelt_domain
    assert only.surname_change == DEFAULT_HABITS.surname_change
    code = main(["--out", str(tmp_path / "lz"), "--customers", "10", "--habits", "typos"])
    assert code == 2
    out = capsys.readouterr().out
    assert "unknown habit(s) typos" in out and "shared-inboxes" in out
