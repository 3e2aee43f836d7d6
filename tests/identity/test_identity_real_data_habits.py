"""Habits of real data that must count as the evidence they are: misspelt provider domains,
national-format phones with a country, names the other way round, middle initials and
surname changes."""

from __future__ import annotations

from identity.pipeline import resolve_identities
from tests.identity.background import add_unrelated_people


def _records(warehouse, column: str) -> dict[str, str]:
    return dict(
        warehouse.execute(
            f"select source_record_id, {column} from identity.identity_records"
        ).fetchall()
    )


def test_misspelt_big_provider_domains_share_the_providers_mailbox_key(
    staging, warehouse, customer_of
):
    staging.contact("ct_1", "ada.lovelace@gmial.com", first_name="Ada", last_name="Lovelace")
    staging.billing("cus_1", email="adalovelace@gmail.com", name="Ada Lovelace")
    staging.contact("ct_2", "grace.hopper@hotmial.com", first_name="Grace", last_name="Hopper")
    staging.billing("cus_2", email="grace.hopper@hotmail.com", name="Grace Hopper")
    staging.contact("ct_3", "alan@yaho.com", first_name="Alan", last_name="Turing")
    staging.contact("ct_4", "edsger@hotmail.de", first_name="Edsger", last_name="Dijkstra")
    resolve_identities(warehouse)
    keys = _records(warehouse, "email_key")
    assert keys["ct_1"] == keys["cus_1"] == "adalovelace@gmail.com"
    assert keys["ct_2"] == keys["cus_2"] == "grace.hopper@hotmail.com"
    assert keys["ct_3"] == "alan@yahoo.com"
    assert keys["ct_4"] == "edsger@hotmail.de"  # a real domain of its own, not a typo
    assert customer_of("email:ct_1") == customer_of("billing:cus_1")
    assert customer_of("email:ct_2") == customer_of("billing:cus_2")
    displayed = _records(warehouse, "email")
    assert displayed["ct_1"] == "ada.lovelace@gmial.com"  # shown as given


def test_a_common_domain_near_a_provider_is_not_a_misspelling(staging, warehouse):
    for i in range(6):  # a company's own domain, as common as the provider in this data
        staging.contact(f"ct_{i}", f"person{i}@gmail.co", first_name=f"P{i}")
    staging.contact("ct_g", "someone@gmail.com")
    resolve_identities(warehouse)
    assert _records(warehouse, "email_key")["ct_0"] == "person0@gmail.co"


def test_national_format_phones_take_the_records_country_as_region(staging, warehouse):
    staging.contact("ct_fr", "a@exemple.fr", phone="06 12 34 56 78", country="FR")
    staging.billing("cus_fr", phone="+33 6 12 34 56 78", address_country="FR")
    staging.contact("ct_de", "b@beispiel.de", phone="030 12345678", country="DE")
    staging.billing("cus_de", phone="0049 30 12345678", address_country="DE")
    staging.contact("ct_au", "c@example.com.au", phone="0412 345 678", country="AU")
    resolve_identities(warehouse)
    phones = _records(warehouse, "phone_e164")
    assert phones["ct_fr"] == phones["cus_fr"] == "+33612345678"
    assert phones["ct_de"] == phones["cus_de"] == "+493012345678"
    assert phones["ct_au"] == "+61412345678"


def test_middle_initials_do_not_change_the_first_name_key(staging, warehouse):
    staging.billing("cus_1", name="Ada M. Lovelace")
    staging.billing("cus_2", name="LOVELACE, ADA M")
    staging.contact("ct_1", "ada@x.org", first_name="Ada M.", last_name="Lovelace")
    staging.billing("cus_3", name="LOVELACE Ada M.")  # "Last First" with a trailing initial
    resolve_identities(warehouse)
    firsts = _records(warehouse, "first_name_key")
    lasts = _records(warehouse, "last_name")
    assert firsts == {"cus_1": "ada", "cus_2": "ada", "ct_1": "ada", "cus_3": "lovelace"}
    assert lasts == {"cus_1": "lovelace", "cus_2": "lovelace", "ct_1": "lovelace", "cus_3": "ada"}


def test_last_first_name_order_counts_as_the_same_name(staging, warehouse, customer_of):
    staging.billing("cus_1", name="Okafor Chiamaka", email="c.okafor@work.example.com",
                    phone="(415) 555-0101", address_city="Oakland", address_country="US")  # fmt: skip
    staging.contact("ct_1", "chiamaka.o@fastmail.com", first_name="Chiamaka", last_name="Okafor",
                    phone="415-555-0101", city="Oakland", country="US")  # fmt: skip
    add_unrelated_people(staging)
    resolve_identities(warehouse)
    assert customer_of("email:ct_1") == customer_of("billing:cus_1")


def test_surname_change_with_same_first_name_phone_and_city_links(staging, warehouse, customer_of):
    staging.billing("cus_1", name="Ingrid Halvorsen", email="ingrid.h@post.example.no",
                    phone="(415) 555-0177", address_line1="9 Pine St", address_city="Oakland",
                    address_postal_code="94601", address_country="US")  # fmt: skip
    staging.contact("ct_1", "ingrid.berg@fastmail.com", first_name="Ingrid", last_name="Berg",
                    phone="415 555 0177", city="Oakland", country="US")  # fmt: skip
    # where people change surnames, the model learns that a surname disagreement is weak
    add_unrelated_people(staging, surname_change_every=6)
    resolve_identities(warehouse)
    assert customer_of("email:ct_1") == customer_of("billing:cus_1")
