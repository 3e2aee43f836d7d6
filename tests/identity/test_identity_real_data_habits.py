"""Habits of real data that must count as the evidence they are: misspelt provider domains,
national-format phones with a country, names the other way round, middle initials and
surname changes."""

from __future__ import annotations

from identity.config import IdentityConfig
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


def test_namesakes_in_one_city_are_told_apart_by_their_other_records(
    staging, warehouse, customer_of
):
    # Two Kofi Brennans in Boston, each with an email contact (name and city only) tied by
    # its address to a billing account with their own phone and postcode. Pairwise, the two
    # contacts agree on everything they show; their billing records say two people.
    for person, phone, postcode in (
        ("a", "(617) 555-0101", "02108"),
        ("b", "(617) 555-0199", "02134"),
    ):
        email = f"kofi.{person}@example-mail.org"
        staging.contact(f"ct_{person}", email, first_name="Kofi", last_name="Brennan",
                        city="Boston", country="US")  # fmt: skip
        staging.billing(f"cus_{person}", email=email, name="Kofi Brennan", phone=phone,
                        address_line1=f"{postcode[-2:]} Beacon St", address_city="Boston",
                        address_postal_code=postcode, address_country="US")  # fmt: skip
    add_unrelated_people(staging)
    # The background has no one with two addresses, so the model learns an email
    # disagreement as strong evidence; a threshold the contacts' pair passes on its own
    # values makes this about what the billing records add.
    config = IdentityConfig().with_overrides(match_weight_threshold=2.0)
    resolve_identities(warehouse, config)
    assert customer_of("email:ct_a") == customer_of("billing:cus_a")
    assert customer_of("email:ct_a") != customer_of("email:ct_b")
    assert customer_of("email:ct_a") != customer_of("billing:cus_b")
    # the same records with record-by-record evidence only: the namesakes merge
    resolve_identities(
        warehouse, config.with_overrides(component_evidence_comparisons=()), full_identity=True
    )
    assert customer_of("email:ct_a") == customer_of("email:ct_b")


def test_a_name_a_record_lacks_is_read_from_its_own_mailbox(staging, warehouse, customer_of):
    # A work contact with the first name only; its mailbox spells the surname.
    staging.billing("cus_1", name="Grace Okonkwo", email="grace.ok@fastmail.com",
                    phone="(415) 555-0123", address_country="US")  # fmt: skip
    staging.contact("ct_1", "grace.okonkwo@initech.example.com", first_name="Grace",
                    phone="415 555 0123", country="US")  # fmt: skip
    add_unrelated_people(staging)
    resolve_identities(warehouse)
    assert customer_of("email:ct_1") == customer_of("billing:cus_1")
    level = warehouse.execute(
        "select level from identity.match_evidence where comparison = 'last_name' "
        "and 'email:ct_1' in (record_a, record_b) and 'billing:cus_1' in (record_a, record_b)"
    ).fetchone()
    assert level == (3,)  # the exact level, as if the contact had the surname


def test_one_persons_names_the_other_way_round_on_one_mailbox_are_no_family(
    staging, warehouse, customer_of
):
    # "ASHONDFIELD Micheal": the name swapped, and a typo in it
    staging.contact("ct_1", "m.ashondfield@hotmail.com", first_name="Ashondfield",
                    last_name="Micheal", city="Portland")  # fmt: skip
    staging.web("anon_1", first_name="Michael", last_name="Ashondfield",
                email="m.ashondfield@hotmail.com")  # fmt: skip
    # two people on one mailbox, one of them written the other way round: still two
    staging.contact("ct_2", "oiror.ramirez@gmail.com", first_name="Ramirez", last_name="Oiror")
    staging.billing("cus_2", name="Deborah Ramirez", email="oiror.ramirez@gmail.com")
    resolve_identities(warehouse)
    assert customer_of("email:ct_1") == customer_of("web:anon_1")
    assert customer_of("email:ct_2") != customer_of("billing:cus_2")


def test_plain_number_web_ids_that_coincide_make_one_web_identity(staging, warehouse, customer_of):
    """A tracker that numbers browsers and a product that numbers accounts can give the
    same number: browser 1000 and server-side events of user 1000 (no anonymous id). The
    web stitching maps events by coalesce(anonymousId, userId), so they are one web
    identity there; identity makes one record of them too (it failed on the duplicate
    record key before)."""
    staging.web("1000", email="ann.lee@example.com", first_name="Ann", last_name="Lee")
    staging.web(None, user_id="1000", email="ann.lee@example.com")
    staging.billing("1000", name="Ann Lee", email="ann.lee@example.com", user_id="1000")
    add_unrelated_people(staging)
    resolve_identities(warehouse)
    keys = warehouse.execute(
        "select record_key, n_user_ids from identity.identity_records "
        "where source_system = 'web' and source_record_id = '1000'"
    ).fetchall()
    assert keys == [("web:1000", 1)]
    assert customer_of("web:1000") == customer_of("billing:1000")
