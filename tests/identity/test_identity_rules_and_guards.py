"""Deterministic rules, web identities, blocked values, cardinality and household guards."""

from identity.config import IdentityConfig
from identity.pipeline import resolve_identities
from tests.identity.background import add_unrelated_people


def test_same_email_key_links_email_contact_and_billing(staging, warehouse, customer_of):
    staging.contact("ct_1", "Ada.Lovelace+news@gmail.com", first_name="Ada", last_name="Lovelace")
    staging.billing("cus_1", email="adalovelace@googlemail.com", name="LOVELACE, ADA")
    summary = resolve_identities(warehouse)
    assert customer_of("email:ct_1") == customer_of("billing:cus_1")
    assert summary.matches_by_rule["email_key"] == 1
    rule = warehouse.sql(
        "select match_rule, matched_record from identity.customer_map where source_record_id = 'ct_1'"
    ).fetchall()
    assert rule == [("email_key", "billing:cus_1")]


def test_web_user_id_links_to_billing_and_anonymous_ids_are_stitched(
    staging, warehouse, customer_of
):
    staging.billing("cus_1", user_id="u_1", email="ada@acme.com")
    staging.web("anon_a", "u_1")
    staging.web("anon_b", "u_1", email="ada@home.net")
    staging.web(None, "u_1")  # an identity seen only with a userId is keyed by it
    staging.web("anon_lurker")  # never tied to email/phone/user id: not a customer
    resolve_identities(warehouse)
    customer = customer_of("billing:cus_1")
    assert customer_of("web:anon_a") == customer
    assert customer_of("web:anon_b") == customer
    assert customer_of("web:u_1") == customer
    rules = dict(
        warehouse.sql("select source_record_id, match_rule from identity.customer_map").fetchall()
    )
    assert rules["anon_a"] == "user_id"
    assert "anon_lurker" not in rules


def test_blocked_values_never_link(staging, warehouse, customer_of):
    staging.contact(
        "ct_1", "test@test.com", first_name="Ada", last_name="Lovelace", phone="0000000000"
    )
    staging.contact(
        "ct_2", "TEST@test.com", first_name="Grace", last_name="Hopper", phone="(000) 000-0000"
    )
    staging.contact("ct_3", "noreply@shop.com", first_name="Alan", last_name="Turing")
    staging.contact("ct_4", "noreply@shop.com", first_name="Edsger", last_name="Dijkstra")
    summary = resolve_identities(warehouse)
    customers = {customer_of(f"email:ct_{i}") for i in range(1, 5)}
    assert len(customers) == 4
    assert summary.blocked_value_records == 4
    blocked = warehouse.sql(
        "select blocked_values from identity.identity_records where source_record_id = 'ct_1'"
    ).fetchall()[0][0]
    # not a valid number, so never normalised to a fake E.164; still listed as blocked junk
    assert "email:test@test.com" in blocked and "phone:0000000000" in blocked


def test_cardinality_limit_refuses_second_billing_user_id_and_records_it(
    staging, warehouse, customer_of
):
    # Duplicate signups on one email: a golden customer may hold two user ids, not three.
    staging.billing("cus_1", user_id="u_1", email="family@home.net", name="Ada Lovelace")
    staging.billing("cus_2", user_id="u_2", email="family@home.net", name="Ada Lovelace")
    staging.billing("cus_3", user_id="u_3", email="family@home.net", name="Ada Lovelace")
    summary = resolve_identities(warehouse)
    assert customer_of("billing:cus_1") == customer_of("billing:cus_2")
    a, b = customer_of("billing:cus_1"), customer_of("billing:cus_3")
    assert a != b
    assert summary.refused_by_guard == {"max_user_ids": 1}
    refused = warehouse.sql(
        "select customer_a, customer_b, record_a, record_b, guard, match_rule from identity.refused_merges"
    ).fetchall()
    assert len(refused) == 1
    customer_a, customer_b, record_a, record_b, guard, rule = refused[0]
    assert (customer_a, customer_b) == (min(a, b), max(a, b))
    assert record_b == "billing:cus_3" or record_a == "billing:cus_3"
    assert (guard, rule) == ("max_user_ids", "email_key")


def test_shared_family_mailbox_with_different_first_names_is_refused(
    staging, warehouse, customer_of
):
    staging.billing("cus_1", user_id="u_1", email="family@home.net", name="Ada Lovelace")
    staging.billing("cus_2", user_id="u_2", email="family@home.net", name="Byron Lovelace")
    summary = resolve_identities(warehouse)
    assert customer_of("billing:cus_1") != customer_of("billing:cus_2")
    # two people's first names on one address: a shared value, found from the data
    assert summary.shared_values == {"email": 1}


def test_household_same_address_and_phone_different_first_names_stay_apart(
    staging, warehouse, customer_of
):
    address = {
        "address_line1": "12 Main Street",
        "address_city": "Springfield",
        "address_postal_code": "62701",
        "address_country": "US",
        "phone": "(217) 555-0142",
    }
    staging.billing("cus_1", name="Ada Lovelace", email="ada@home.net", **address)
    staging.billing("cus_2", name="Byron Lovelace", email="byron@home.net", **address)
    # the same person as cus_1 under a nickname-free typo, other email: must still match
    staging.contact(
        "ct_1",
        "ada.l@work.com",
        first_name="Adda",
        last_name="Lovelace",
        phone="217-555-0142",
        city="Springfield",
        country="US",
    )
    add_unrelated_people(staging)
    # a threshold low enough for the household pair's weight: the guard alone keeps them apart
    summary = resolve_identities(
        warehouse, IdentityConfig().with_overrides(match_weight_threshold=4.5)
    )
    assert customer_of("billing:cus_1") != customer_of("billing:cus_2")
    assert customer_of("email:ct_1") == customer_of("billing:cus_1")
    assert summary.refused_by_guard.get("household", 0) >= 1
    guards = {g for (g,) in warehouse.sql("select guard from identity.refused_merges").fetchall()}
    assert "household" in guards


def test_probabilistic_match_on_name_phone_and_address_keeps_its_weight(
    staging, warehouse, customer_of
):
    staging.billing(
        "cus_1",
        name="William Gates",
        email="bill@work.com",
        phone="(206) 555-0199",
        address_line1="1 Lake Avenue",
        address_city="Medina",
        address_postal_code="98039",
        address_country="US",
    )
    staging.contact(
        "ct_1",
        "billg@home.net",
        first_name="Bill",
        last_name="Gates",
        phone="206.555.0199",
        city="Medina",
        country="US",
    )
    add_unrelated_people(staging)
    resolve_identities(warehouse)
    assert customer_of("billing:cus_1") == customer_of("email:ct_1")
    rule, weight = warehouse.sql(
        "select match_rule, match_weight from identity.customer_map where source_record_id = 'ct_1'"
    ).fetchall()[0]
    assert rule == "probabilistic" and weight > 8


def test_phone_region_comes_from_the_records_country(staging, warehouse):
    staging.contact("ct_gb", "a@b.co.uk", phone="020 7946 0958", country="GB")
    staging.billing("cus_gb", phone="+44 20 7946 0958", address_country="GB")
    staging.contact("ct_us", "c@d.com", phone="(415) 555-2671")  # no country: default region US
    resolve_identities(warehouse)
    phones = dict(
        warehouse.sql(
            "select source_record_id, phone_e164 from identity.identity_records"
        ).fetchall()
    )
    assert phones == {"ct_gb": "+442079460958", "cus_gb": "+442079460958", "ct_us": "+14155552671"}


def test_every_identified_web_visitor_is_mapped_even_with_only_a_name(
    staging, warehouse, customer_of
):
    staging.web("anon_named", first_name="Ada", last_name="Lovelace")
    staging.web("anon_full_name", name="Grace Hopper")
    staging.web("anon_bad_email", email="not-an-address")
    staging.web(None, "u_9")
    staging.web("anon_lurker")  # never identified: not a customer
    resolve_identities(warehouse)
    for key in ("web:anon_named", "web:anon_full_name", "web:anon_bad_email", "web:u_9"):
        assert customer_of(key)
    mapped = {
        k
        for (k,) in warehouse.execute(
            "select source_record_id from identity.customer_map"
        ).fetchall()
    }
    assert "anon_lurker" not in mapped


def test_a_nameless_record_whose_mailbox_spells_the_name_is_no_household(
    staging, warehouse, customer_of
):
    household = {"phone": "217-555-0142", "city": "Springfield", "country": "US"}
    staging.billing(
        "cus_1",
        name="Ada Lovelace",
        email="ada@home.net",
        phone="(217) 555-0142",
        address_city="Springfield",
        address_country="US",
    )
    # no first name, but the mailbox `a.lovelace@` spells Ada's: the same person
    staging.contact("ct_1", "a.lovelace@work.com", last_name="Lovelace", **household)
    # no first name and `blovelace@`: someone else in Ada's household, as unknown as before
    staging.contact("ct_2", "blovelace@work.com", last_name="Lovelace", **household)
    add_unrelated_people(staging)
    resolve_identities(warehouse, IdentityConfig().with_overrides(match_weight_threshold=4.5))
    assert customer_of("email:ct_1") == customer_of("billing:cus_1")
    assert customer_of("email:ct_2") != customer_of("billing:cus_1")


def test_a_refusal_names_the_values_it_counted_masked_never_in_clear():
    """refused_merges is a log table BI-adjacent tools read: its detail shows the emails and
    phones that broke a limit masked, enough for a steward to recognise them."""
    from identity.guards import CardinalityLimit, ClusterAttributes

    guard = ClusterAttributes(
        (CardinalityLimit("max_emails", "email_key", 1),),
        {"email_key": ["ann.lee@example.org", "bo.chan@mail.com"]},
    )
    name, detail = guard.violation(0, 1)
    assert name == "max_emails" and "2 email_key values (limit 1)" in detail
    assert "ann.lee@example.org" not in detail and "bo.chan@mail.com" not in detail
    assert "a***@e***.org" in detail
