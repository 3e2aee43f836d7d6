"""Shared identifiers found from the data: a value several people use stops being a key.

No value used here is on a configured list: the engine must see from the records
themselves that an address, a phone or a user id belongs to more than one person.
"""

from __future__ import annotations

import itertools

import pytest

from identity.pipeline import resolve_identities
from identity.shared_values import count_first_name_groups, first_name_groups
from tests.identity.background import add_unrelated_people

FIRST_NAMES = [
    "Ada", "Byron", "Clara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
    "Kemal", "Lucia", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tamar",
    "Umar", "Vera", "Wanda", "Xavier", "Yusuf", "Zofia", "Anton", "Beatriz", "Cyrus", "Delia",
    "Emil", "Freya", "Gideon", "Hanna", "Igor", "Jasmin", "Kofi", "Leona", "Marek", "Noor",
    "Otto", "Paula", "Rafael", "Selma", "Tobias", "Ulla", "Viktor", "Wilma", "Yara", "Zeno",
]  # fmt: skip
LAST_NAMES = [
    "Okafor", "Lindqvist", "Moreau", "Tanaka", "Petrov", "Haddad", "Novak", "Silva", "Brennan",
    "Kowalski",
]  # fmt: skip


def _customers(warehouse, source_system: str | None = None) -> int:
    where = f"where source_system = '{source_system}'" if source_system else ""
    return warehouse.execute(
        f"select count(distinct customer_id) from identity.customer_map {where}"
    ).fetchone()[0]


@pytest.mark.parametrize("with_names", [True, False], ids=["with_names", "without_names"])
def test_fifty_strangers_on_one_unlisted_address_stay_fifty_customers(
    staging, warehouse, with_names
):
    # `orders@` of a small shop: every buyer's billing record carries it, each with their own
    # phone and user id (and, in one variant, no name at all).
    for i in range(50):
        name = f"{FIRST_NAMES[i]} {LAST_NAMES[i % len(LAST_NAMES)]}" if with_names else None
        staging.billing(
            f"cus_{i}",
            email="orders@kleinbaeckerei-hahn.de",
            name=name,
            user_id=f"u_{i}",
            phone=f"+49 30 {5550000 + i * 7919}",
            address_country="DE",
        )
    summary = resolve_identities(warehouse)
    assert _customers(warehouse) == 50
    assert summary.shared_values.get("email") == 1
    row = warehouse.execute(
        "select identifier, value_masked, n_records, n_phones, n_user_ids, reason "
        "from identity.shared_values where identifier = 'email'"
    ).fetchone()
    identifier, masked, n_records, n_phones, n_user_ids, reason = row
    assert (identifier, n_records, n_phones, n_user_ids) == ("email", 50, 50, 50)
    assert "orders@" not in masked and masked.endswith("@kleinbaeckerei-hahn.de")
    assert "different phone values" in reason
    if with_names:
        assert "50 different people's names" in reason


def test_fifty_nameless_web_identities_on_one_address_do_not_chain_strangers(staging, warehouse):
    # No names, no phones: only the address and the user id each visitor logged in with.
    for i in range(50):
        staging.web(f"anon_{i}", f"u_{i}", email="team@studio-nord.example.net")
    resolve_identities(warehouse)
    assert _customers(warehouse) == 50


def test_family_inbox_of_three_people_keeps_each_persons_own_records_together(
    staging, warehouse, customer_of
):
    inbox = "lindqvist.home@posteo.de"
    people = [
        ("Ada", "+46 8 123 456 01"),
        ("Byron", "+46 8 123 456 02"),
        ("Clara", "+46 70 123 45 67"),
    ]
    for first, phone in people:
        staging.billing(
            f"cus_{first}",
            email=inbox,
            name=f"{first} Lindqvist",
            phone=phone,
            address_line1="Storgatan 12",
            address_city="Uppsala",
            address_postal_code="753 20",
            address_country="SE",
        )
        staging.contact(
            f"ct_{first}",
            inbox,
            first_name=first,
            last_name="Lindqvist",
            phone=phone,
            city="Uppsala",
            country="SE",
        )
    add_unrelated_people(staging)
    summary = resolve_identities(warehouse)
    assert summary.shared_values.get("email") == 1
    customers = {first: customer_of(f"billing:cus_{first}") for first, _ in people}
    assert len(set(customers.values())) == 3
    for first, _ in people:
        assert customer_of(f"email:ct_{first}") == customers[first], first


def test_company_orders_address_links_no_buyers_but_a_buyers_own_records_still_link(
    staging, warehouse, customer_of
):
    for i in range(6):
        staging.billing(
            f"cus_{i}",
            email="orders@tischlerei-berger.at",
            name=f"{FIRST_NAMES[i]} {LAST_NAMES[i]}",
            phone=f"+43 1 {4000000 + i * 1237}",
            address_country="AT",
        )
    # buyer 0 also subscribed to the newsletter with a personal address and the same phone
    staging.contact(
        "ct_0",
        "ada.okafor@gmx.at",
        first_name="Ada",
        last_name="Okafor",
        phone="+43 1 4000000",
        country="AT",
    )
    add_unrelated_people(staging)
    resolve_identities(warehouse)
    buyers = {customer_of(f"billing:cus_{i}") for i in range(6)}
    assert len(buyers) == 6
    assert customer_of("email:ct_0") == customer_of("billing:cus_0")


def test_a_persons_two_records_on_their_own_address_still_link(staging, warehouse, customer_of):
    staging.billing("cus_1", email="zofia.novak@fastmail.com", name="Zofia Novak", user_id="u_1")
    staging.contact("ct_1", "zofia.novak@fastmail.com", first_name="Zofia", last_name="Novak")
    staging.web("anon_1", "u_1", email="zofia.novak@fastmail.com")
    summary = resolve_identities(warehouse)
    assert customer_of("email:ct_1") == customer_of("billing:cus_1") == customer_of("web:anon_1")
    assert summary.shared_values == {}


def test_shared_phone_of_an_office_is_found_and_explained(staging, warehouse):
    from identity.explain import explain_customer

    for i in range(4):
        staging.contact(
            f"ct_{i}",
            f"{FIRST_NAMES[i].lower()}@praxis-mitte.example.org",
            first_name=FIRST_NAMES[i],
            last_name=LAST_NAMES[i],
            phone="+49 89 2020 300",
            country="DE",
        )
    summary = resolve_identities(warehouse)
    assert summary.shared_values == {"phone": 1}
    assert _customers(warehouse) == 4
    customer = warehouse.execute(
        "select customer_id from identity.customer_map where source_record_id = 'ct_0'"
    ).fetchone()[0]
    text = explain_customer(warehouse, customer)
    assert "Shared values, not used as keys" in text
    assert "4 different people's names" in text
    shared_section = text.split("Shared values")[1].split("Refused merges")[0]
    assert "+49892020300" not in shared_section  # masked there


def test_first_name_groups_see_typos_nicknames_and_swapped_order_as_one_person():
    one_person = [
        {"f": "katherine", "l": "moreau"},
        {"f": "katharine", "l": "moreau"},
        {"f": "moreau", "l": "katherine"},  # "MOREAU Katherine" read as first-last
    ]
    assert count_first_name_groups(one_person) == 1
    family = one_person + [{"f": "louis", "l": "moreau"}, {"f": "amelie", "l": "moreau"}]
    assert count_first_name_groups(family) == 3


def test_name_groups_take_swapped_names_with_typos_and_half_names():
    names = [
        {"f": "patricia", "l": "raitley"},
        {"f": "railey", "l": "patricia"},  # "RAILEY Patricia": swapped, with a typo
        {"f": "patricia", "l": None},
        {"f": None, "l": "raitley"},
    ]
    assert count_first_name_groups(names) == 1


def test_name_groups_do_not_depend_on_order_and_take_a_swapped_persons_first_name_alone():
    # "Crountic Paul" swapped, then "Paul" alone: one person however the names come in
    paul = [
        {"f": "crountic", "l": "paul"},
        {"f": "paul", "l": "crountic"},
        {"f": "paul", "l": None},
    ]
    assert count_first_name_groups(paul) == 1
    assert count_first_name_groups(paul[::-1]) == 1
    # "Doubov Maggie" (swapped, nickname) before Margaret Doubov sorts first: still one person
    margaret = [{"f": "doubov", "l": "maggie"}, {"f": "margaret", "l": "doubov"},
                {"f": "maggie", "l": "doubov"}]  # fmt: skip
    assert count_first_name_groups(margaret) == 1


def test_name_group_numbers_do_not_depend_on_the_order_sql_lists_the_names_in():
    # Two surnames without a first name, neither a named person's: each is a person of its
    # own. Their numbers qualify the shared value in the matching copy (`value#1`), so a
    # number that followed the list's order would change the records' match fingerprints
    # from one run to the next and re-cluster them for nothing.
    names = [
        {"f": "ada", "l": "lovelace"},
        {"f": None, "l": "putick"},
        {"f": None, "l": "puitck"},
        {"f": None, "l": "lovelace"},
    ]
    seen = set()
    for order in itertools.permutations(range(len(names))):
        listed = [names[i] for i in order]
        for by_last_name in (False, True):
            groups = first_name_groups(listed, by_last_name=by_last_name)
            seen.add((by_last_name, tuple(sorted(zip(order, groups, strict=True)))))
    assert len(seen) == 2  # one numbering per mode, whatever the order
    assert {groups for mode, groups in seen} == {((0, 0), (1, 2), (2, 1), (3, 0))}


def test_a_shared_value_keeps_equal_first_names_with_other_surnames_apart():
    names = [{"f": "william", "l": "thirro"}, {"f": "william", "l": "fealdi"}]
    assert count_first_name_groups(names) == 1  # a surname change on one's own address
    assert len(set(first_name_groups(names, by_last_name=True))) == 2  # two buyers on orders@


def test_a_mailbox_that_names_someone_else_is_a_family_inbox(staging, warehouse, customer_of):
    # edomier@ is E. Domier's; Robert Domier uses it, and so does a contact with no first
    # name - as likely E. as Robert. rdomier@ spells Robert: its nameless contact is his.
    for mailbox in ("edomier", "rdomier"):
        email = f"{mailbox}@web.example.de"
        staging.billing(f"cus_{mailbox}", email=email, name="Robert Domier",
                        phone=f"+49 30 {555000 + len(mailbox) + ord(mailbox[0])}",
                        address_country="DE")  # fmt: skip
        staging.contact(f"ct_{mailbox}_named", email, first_name="Robert", last_name="Domier")
        staging.contact(f"ct_{mailbox}_nameless", email, last_name="Domier")
    summary = resolve_identities(warehouse)
    assert customer_of("email:ct_edomier_named") == customer_of("billing:cus_edomier")
    assert customer_of("email:ct_edomier_nameless") != customer_of("billing:cus_edomier")
    assert customer_of("email:ct_rdomier_nameless") == customer_of("billing:cus_rdomier")
    assert summary.shared_values == {"email": 1}
    masked, reason = warehouse.execute(
        "select value_masked, reason from identity.shared_values"
    ).fetchone()
    assert masked.startswith("e***@") and "names another person" in reason


def test_one_first_name_is_one_person_unless_surnames_split_a_shared_value():
    """The shortcut for values whose records all carry one first name (no pairwise
    comparison) gives what the comparison gives: one person; split by surname it is not."""
    names = [
        {"f": "william", "l": "thirro"},
        {"f": "william", "l": None},
        {"f": "william", "l": "fealdi"},
    ]
    assert first_name_groups(names) == [0, 0, 0]
    two_surnames = [names[0], names[2]]
    assert first_name_groups(two_surnames) == [0, 0]
    assert first_name_groups(two_surnames, by_last_name=True) == [1, 0]
    # a nameless record is not covered by the shortcut: it joins by surname
    assert first_name_groups([*names, {"f": None, "l": "fealdi"}]) == [0, 0, 0, 0]
