import pytest

from identity.normalize import (
    email_match_key,
    first_name_key,
    fold_name,
    normalize_email,
    normalize_phone,
    normalize_postcode,
    normalize_street,
    split_full_name,
)


def test_email_is_trimmed_and_lower_cased_and_junk_is_none():
    assert normalize_email("  Ada.Lovelace@Example.COM ") == "ada.lovelace@example.com"
    assert normalize_email("not an email") is None
    assert normalize_email(None) is None


@pytest.mark.parametrize(
    "raw, key",
    [
        ("Ada.Lovelace+news@gmail.com", "adalovelace@gmail.com"),
        ("a.d.a.lovelace@googlemail.com", "adalovelace@gmail.com"),
        ("ada+promo@outlook.com", "ada@outlook.com"),
        ("ada.lovelace+x@acme.com", "ada.lovelace+x@acme.com"),  # unknown provider: keep as is
    ],
)
def test_email_match_key_removes_gmail_dots_and_plus_tags(raw, key):
    assert email_match_key(raw) == key


@pytest.mark.parametrize(
    "raw, region, e164",
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("1-415-555-2671", "US", "+14155552671"),
        ("+1 415 555 2671", "DE", "+14155552671"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 (0)20 7946 0958", "GB", "+442079460958"),
        ("030 12345678", "DE", "+493012345678"),
        ("12", "US", None),
    ],
)
def test_phone_to_e164_with_region_from_country(raw, region, e164):
    assert normalize_phone(raw, region) == e164


@pytest.mark.parametrize(
    "raw, region",
    [
        ("(212) 555-0187", "US"),
        ("+1 212 555 0187", "US"),
        ("12125550187", "CA"),
        ("020 7946 0958", "GB"),
        ("+44 20 7946 0958", "GB"),
        ("0800 123 4567", "GB"),
        ("030 12345678", "DE"),
        ("+49 30 12345678", "DE"),
        ("01 23 45 67 89", "FR"),
        ("0612345678", "NL"),
        ("022 12345678", "IN"),
        ("+61 2 9876 5432", "AU"),
        ("02 9876 5432", "AU"),
        ("06 1234 5678", "IT"),
        ("+39 06 1234 5678", "IT"),
    ],
)
def test_fast_path_gives_what_phonenumbers_gives(raw, region):
    import phonenumbers

    expected = phonenumbers.format_number(
        phonenumbers.parse(raw, region), phonenumbers.PhoneNumberFormat.E164
    )
    assert normalize_phone(raw, region) == expected


def test_names_are_case_and_accent_folded():
    assert fold_name("  ZOË  Ångström-Smith ") == "zoe angstrom smith"
    assert fold_name("O'Brien") == "obrien"
    assert fold_name("Søren") == "soren"


def test_full_names_split_including_last_comma_first():
    assert split_full_name("LOVELACE, ADA") == ("ada", "lovelace")
    assert split_full_name("Ada King Lovelace") == ("ada king", "lovelace")
    assert split_full_name("Dr. Ada Lovelace Jr.") == ("ada", "lovelace")
    assert split_full_name("Ada") == ("ada", None)


def test_nicknames_map_to_canonical_first_name():
    assert first_name_key("bill") == "william"
    assert first_name_key("becky") == "rebecca"
    assert first_name_key("ada") == "ada"


def test_street_abbreviations_and_postcodes_are_standardised():
    assert normalize_street("12 Main Street.") == "12 main st"
    assert normalize_street("12 MAIN ST") == "12 main st"
    assert normalize_street("5 North Oak Avenue #4") == "5 n oak ave apt 4"
    assert normalize_postcode("sw1a 1aa", "GB") == "SW1A1AA"
    assert normalize_postcode("94105-1234", "US") == "94105"


def test_the_normaliser_fingerprint_moves_with_settings_and_steward_blocks():
    """A nightly run reuses last run's normalised records only under the same normaliser:
    a changed setting or value block must re-normalise everything."""
    from identity.config import IdentityConfig
    from identity.records import normaliser_fingerprint

    base = normaliser_fingerprint(IdentityConfig())
    assert normaliser_fingerprint(IdentityConfig()) == base
    assert normaliser_fingerprint(IdentityConfig(), "email:ab12") != base
    changed = IdentityConfig().with_overrides(default_phone_region="GB")
    assert normaliser_fingerprint(changed) != base
