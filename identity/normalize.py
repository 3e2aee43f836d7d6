"""Normalisation of identity values, so that equal things compare equal.

Each function takes one raw value and returns its normalised form (None when nothing usable
is left). `records.py` applies them to the distinct values of a column only, which keeps
two million records fast.
"""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from importlib import resources

import phonenumbers
from unidecode import unidecode

_GMAIL_DOMAINS = {"gmail.com", "googlemail.com"}
# Providers that deliver `local+tag@domain` to `local@domain`.
_PLUS_TAG_DOMAINS = _GMAIL_DOMAINS | {
    "outlook.com",
    "hotmail.com",
    "live.com",
    "icloud.com",
    "me.com",
    "fastmail.com",
    "protonmail.com",
    "proton.me",
    "yahoo.com",
}
_EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(raw: str | None) -> str | None:
    """Trimmed and lower-cased; None when it is not shaped like an address."""
    if raw is None:
        return None
    email = raw.strip().lower()
    return email if _EMAIL_SHAPE.match(email) else None


def email_match_key(raw: str | None) -> str | None:
    """The mailbox an address delivers to: Gmail dots and provider `+tags` removed.

    `Ada.Lovelace+news@googlemail.com` and `adalovelace@gmail.com` share the key
    `adalovelace@gmail.com`. The displayed email stays the original one.
    """
    email = normalize_email(raw)
    if email is None:
        return None
    local, domain = email.rsplit("@", 1)
    if domain in _PLUS_TAG_DOMAINS:
        local = local.split("+", 1)[0]
    if domain in _GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}" if local else None


_NANP_REGIONS = {"US", "CA", "PR", "GU", "VI", "AS", "MP"}
_NON_PHONE_CHARS = re.compile(r"[\s().\-/]")
_TRUNK_ZERO = "(0)"


def normalize_phone(
    raw: str | None, region: str | None = None, default_region: str = "US"
) -> str | None:
    """E.164 (`+14155550100`), region from the record's country; None if not a possible number.

    Plain international (`+44 20 7946 0958`) and North-American numbers take a fast path
    that gives the same result as `phonenumbers` (the path `records.py` takes for millions
    of values); everything else is parsed by `phonenumbers`.
    """
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    region = (region or default_region or "US").upper()
    fast = _fast_e164(text, region)
    if fast is not None:
        return fast
    if _plain_digits_not_nanp(text, region):
        return None
    return _parse_e164(text, region)


def _plain_digits_not_nanp(text: str, region: str) -> bool:
    """A North-American record's plain national digits that are not a 10-digit number: no
    full parse can make them valid there (only the 011 / 00 international prefixes could),
    so the answer is known without one. Foreign numbers typed without a country are common
    on web traits; parsing each of them cost most of the normalisation time."""
    if region not in _NANP_REGIONS or _TRUNK_ZERO in text:
        return False
    compact = _NON_PHONE_CHARS.sub("", text)
    return compact.isdigit() and not compact.startswith(("011", "00"))


def _fast_e164(text: str, region: str) -> str | None:
    """E.164 from plain digits using phonenumbers' own metadata (country code, trunk prefix,
    possible national lengths), without a full parse; None when the input needs one."""
    if _TRUNK_ZERO in text or "x" in text.lower() or "#" in text:
        return None
    compact = _NON_PHONE_CHARS.sub("", text)
    if compact.startswith("00") and compact[2:3] not in ("", "0") and compact[2:].isdigit():
        compact = "+" + compact[2:]  # `00` is the international prefix in most of the world
    if compact.startswith("+"):
        digits = compact[1:]
        if not digits.isdigit():
            return None
        for cc_length in (1, 2, 3):
            country_code = int(digits[:cc_length])
            if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                lengths = _possible_lengths(
                    phonenumbers.COUNTRY_CODE_TO_REGION_CODE[country_code][0]
                )
                national = digits[cc_length:]
                if lengths and len(national) in lengths and not national.startswith("0"):
                    return "+" + digits
                return None
        return None
    if not compact.isdigit():
        return None
    if region in _NANP_REGIONS:
        if len(compact) == 11 and compact[0] == "1":
            compact = compact[1:]
        return "+1" + compact if len(compact) == 10 and compact[0] in "23456789" else None
    prefix, country_code, lengths, other_prefixes = _region_dialing(region)
    if not prefix or not compact.startswith(prefix) or compact.startswith(other_prefixes):
        return None
    national = compact[len(prefix) :]
    if len(national) in lengths and not national.startswith("0"):
        return f"+{country_code}{national}"
    return None


@lru_cache(maxsize=512)
def _possible_lengths(region: str) -> frozenset[int]:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.general_desc is None:
        return frozenset()
    return frozenset(metadata.general_desc.possible_length or ())


@lru_cache(maxsize=512)
def _region_dialing(region: str) -> tuple[str | None, int, frozenset[int], tuple[str, ...]]:
    """(national trunk prefix, country calling code, possible national lengths, other
    plain-digit prefixes phonenumbers strips); no prefix when the region's rules are regexes."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or not metadata.national_prefix or metadata.national_prefix_transform_rule:
        return None, 0, frozenset(), ()
    alternatives = (metadata.national_prefix_for_parsing or metadata.national_prefix).split("|")
    if metadata.national_prefix not in alternatives or not all(a.isdigit() for a in alternatives):
        return None, 0, frozenset(), ()
    others = tuple(a for a in alternatives if a != metadata.national_prefix)
    return metadata.national_prefix, metadata.country_code, _possible_lengths(region), others


@lru_cache(maxsize=200_000)
def _parse_e164(text: str, region: str) -> str | None:
    """The full parse, for the shapes the fast path leaves: trunk zeros, `00` international
    prefixes, extensions. The number must be *valid* here, not merely of a possible length:
    a French `06 39 45 75 92` on a record without a country would otherwise become the
    North-American `+10639457592` and could link two strangers. `00` is the international
    prefix in most of the world, so `0061 417 361 109` is read as `+61 417 361 109` even
    where the default region dials out with another prefix (011 in North America)."""
    candidates = [text]
    compact = _NON_PHONE_CHARS.sub("", text)
    if compact.startswith("00") and compact[2:3] not in ("", "0"):
        candidates.append("+" + compact[2:])
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


_NAME_JUNK = re.compile(r"[^a-z' -]")
_SPACES = re.compile(r"\s+")
_NAME_PREFIXES = {"mr", "mrs", "ms", "miss", "dr", "prof", "sir"}
_NAME_SUFFIXES = {"jr", "sr", "ii", "iii", "iv", "phd", "md"}


def fold_name(raw: str | None) -> str | None:
    """Lower case, accents and non-Latin letters transliterated (Zoë -> zoe, Øyvind -> oyvind)."""
    if raw is None:
        return None
    text = unidecode(raw).lower().replace(".", " ")
    text = _NAME_JUNK.sub(" ", text).replace("-", " ").replace("'", "")
    text = _SPACES.sub(" ", text).strip()
    return text or None


def split_full_name(raw: str | None) -> tuple[str | None, str | None]:
    """("first", "last") from one free-text name: "Ada Lovelace", "LOVELACE, ADA", "Dr. Ada King Jr".

    The last word is the last name, everything before it the first name (middle names stay
    with the first name, as billing systems print them; a trailing initial is dropped); a
    comma means "LAST, FIRST".
    """
    if raw is None or not raw.strip():
        return None, None
    if "," in raw:
        last_part, first_part = raw.split(",", 1)
        return _strip_titles(fold_name(first_part)), fold_name(last_part)
    folded = _strip_titles(fold_name(raw))
    if folded is None:
        return None, None
    words = folded.split(" ")
    while len(words) > 2 and len(words[-1]) == 1:
        words.pop()  # a trailing middle initial ("MARTINEZ Josephine A."): not the last name
    if len(words) == 1:
        return words[0], None
    return " ".join(words[:-1]), words[-1]


def _strip_titles(folded: str | None) -> str | None:
    if folded is None:
        return None
    words = [w for w in folded.split(" ") if w]
    while words and words[0] in _NAME_PREFIXES:
        words.pop(0)
    while len(words) > 1 and words[-1] in _NAME_SUFFIXES:
        words.pop()
    return " ".join(words) or None


@lru_cache(maxsize=1)
def nickname_pairs() -> tuple[tuple[str, str], ...]:
    """(nickname, canonical) rows of identity/data/nicknames.csv; a nickname may stand for
    several names ("chris": christopher, christina)."""
    with resources.files("identity").joinpath("data/nicknames.csv").open(encoding="utf-8") as f:
        return tuple((row["nickname"], row["canonical"]) for row in csv.DictReader(f))


@lru_cache(maxsize=1)
def nickname_table() -> dict[str, str]:
    """nickname -> canonical first name (the first row of a nickname wins: the key)."""
    table: dict[str, str] = {}
    for nickname, canonical in nickname_pairs():
        table.setdefault(nickname, canonical)
    return table


@lru_cache(maxsize=1)
def _name_variants() -> dict[str, frozenset[str]]:
    variants: dict[str, set[str]] = {}
    for nickname, canonical in nickname_pairs():
        for name in (nickname, canonical):
            variants.setdefault(name, set()).update((nickname, canonical))
    return {name: frozenset(names) for name, names in variants.items()}


def may_be_same_first_name(a: str, b: str, similarity: float = 0.85) -> bool:
    """Could two folded first names be one person's? Similar spelling (Jaro-Winkler), a
    nickname of the same name (either way, "sam" for samuel or samantha), or a short form
    inside the long one ("chris"/"christina", "gail"/"abigail", "tori"/"victoria")."""
    import jellyfish

    if a == b or jellyfish.jaro_winkler_similarity(a, b) >= similarity:
        return True
    variants_a, variants_b = (
        _name_variants().get(a, frozenset()),
        _name_variants().get(b, frozenset()),
    )
    if b in variants_a or a in variants_b or variants_a & variants_b:
        return True
    short, long = sorted((a, b), key=len)
    return (len(short) >= 2 and long.startswith(short)) or (len(short) >= 4 and short in long)


def first_name_key(folded_first_name: str | None) -> str | None:
    """The canonical form of a folded first name's first word: "bill" -> "william"."""
    if not folded_first_name:
        return None
    first_word = folded_first_name.split(" ", 1)[0]
    return nickname_table().get(first_word, first_word)


_STREET_ABBREVIATIONS = {
    "street": "st",
    "str": "st",
    "avenue": "ave",
    "av": "ave",
    "road": "rd",
    "boulevard": "blvd",
    "drive": "dr",
    "lane": "ln",
    "court": "ct",
    "place": "pl",
    "square": "sq",
    "terrace": "ter",
    "parkway": "pkwy",
    "highway": "hwy",
    "circle": "cir",
    "crescent": "cres",
    "apartment": "apt",
    "suite": "ste",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
}
_ADDRESS_JUNK = re.compile(r"[^a-z0-9 ]")


def normalize_street(raw: str | None) -> str | None:
    """Lower case, punctuation dropped, street types abbreviated: "12 Main Street." -> "12 main st"."""
    if raw is None:
        return None
    text = _ADDRESS_JUNK.sub(" ", unidecode(raw).lower().replace("#", " apt "))
    words = [_STREET_ABBREVIATIONS.get(w, w) for w in text.split()]
    return " ".join(words) or None


_POSTCODE_JUNK = re.compile(r"[^A-Z0-9]")


def normalize_postcode(raw: str | None, country: str | None = None) -> str | None:
    """Upper case, no spaces or dashes; US ZIP+4 cut to the 5-digit ZIP; "sw1a 1aa" -> "SW1A1AA"."""
    if raw is None:
        return None
    code = _POSTCODE_JUNK.sub("", raw.upper())
    if not code:
        return None
    if (country or "").upper() in ("US", "") and code.isdigit() and len(code) == 9:
        code = code[:5]
    return code


def normalize_city(raw: str | None) -> str | None:
    """Folded like a name: "São Paulo" -> "sao paulo"."""
    return fold_name(raw)
