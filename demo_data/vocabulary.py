"""Word lists the demo-source generator draws from, loaded from the JSON files in `data/`.

The lists are data, not code: `data/names.json`, `data/places.json`, `data/commerce.json`
and `data/web.json` hold them (each entry has its `values` and, where the shape needs
saying, an `about`). They ship as package data and load once, at import, as tuples, so
the generator's output is byte-identical to when they were Python literals. Everything
is fictional; phone number ranges are chosen so that `phonenumbers` accepts them as
valid, because the identity step normalises phones to E.164.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

_DATA = resources.files("demo_data") / "data"


def _frozen(value: Any) -> Any:
    """JSON arrays as tuples (hashable, immutable), recursively; objects stay dicts."""
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    if isinstance(value, dict):
        return {key: _frozen(item) for key, item in value.items()}
    return value


def _load(file_name: str) -> dict[str, Any]:
    document = json.loads((_DATA / file_name).read_text(encoding="utf-8"))
    return {key: _frozen(entry["values"]) for key, entry in document.items()}


_names = _load("names.json")
_places = _load("places.json")
_commerce = _load("commerce.json")
_web = _load("web.json")

# --- people -------------------------------------------------------------------------------
FIRST_NAMES_WITH_NICKNAMES: dict[str, tuple[str, ...]] = _names["first_names_with_nicknames"]
PLAIN_FIRST_NAMES: tuple[str, ...] = _names["plain_first_names"]
LAST_NAMES: tuple[str, ...] = _names["last_names"]
# The real names are the head of the frequency curve; a deterministic syllable synthesiser
# (below) supplies the long tail, because real populations have tens of thousands of
# surnames and thousands of first names: two unrelated people sharing a full name is
# uncommon, as identity resolution has to assume.
MORE_FIRST_NAMES: tuple[str, ...] = _names["more_first_names"]

# --- places -------------------------------------------------------------------------------
# (country ISO-3166 alpha-2, weight, currency, cities)
COUNTRIES: tuple[tuple[str, float, str, tuple[str, ...]], ...] = _places["countries"]
# country -> (prefixes of the national significant number, random digits after the prefix)
PHONE_PLANS: dict[str, tuple[tuple[str, ...], int]] = _places["phone_plans"]
COUNTRY_CALLING_CODES: dict[str, str] = _places["country_calling_codes"]
STREET_NAMES_EN: tuple[str, ...] = _places["street_names_en"]
STREET_TYPES_EN: tuple[tuple[str, ...], ...] = _places["street_types_en"]
STREET_NAMES_DE: tuple[str, ...] = _places["street_names_de"]
STREET_TYPES_DE: tuple[tuple[str, ...], ...] = _places["street_types_de"]
STREET_NAMES_FR: tuple[str, ...] = _places["street_names_fr"]
STREET_TYPES_FR: tuple[tuple[str, ...], ...] = _places["street_types_fr"]

# --- email, billing, campaigns --------------------------------------------------------------
PERSONAL_EMAIL_DOMAINS: tuple[tuple[str, float], ...] = _commerce["personal_email_domains"]
COMPANY_WORDS: tuple[str, ...] = _commerce["company_words"]
COMPANY_SUFFIXES: tuple[str, ...] = _commerce["company_suffixes"]
JUNK_EMAILS: tuple[str, ...] = _commerce["junk_emails"]
GMAIL_TAGS: tuple[str, ...] = _commerce["gmail_tags"]
PLANS: tuple[tuple[str, int], ...] = _commerce["plans"]  # (plan name, monthly price in cents)
PLAN_WEIGHTS: tuple[float, ...] = _commerce["plan_weights"]
ONE_OFF_PRODUCTS: tuple[tuple[str, int], ...] = _commerce["one_off_products"]
CAMPAIGN_NAMES: tuple[str, ...] = _commerce["campaign_names"]
CAMPAIGN_LINKS: tuple[str, ...] = _commerce["campaign_links"]

# --- web ----------------------------------------------------------------------------------
WEB_HOST = "https://www.example-shop.com"
WEB_PAGES: tuple[tuple[str, str], ...] = _web["web_pages"]  # (path, page name/title)
REFERRERS: tuple[str, ...] = _web["referrers"]
UTM_CAMPAIGNS: tuple[tuple[str, str, str], ...] = _web[
    "utm_campaigns"
]  # (source, medium, campaign)
USER_AGENTS: tuple[str, ...] = _web["user_agents"]
WEB_PRODUCTS: tuple[tuple[str, str, int], ...] = _web["web_products"]  # (id, name, price in cents)

# --- syllables for the long tail of names ------------------------------------------------------
_SURNAME_ONSETS: tuple[str, ...] = _names["surname_onsets"]
_SURNAME_VOWELS: tuple[str, ...] = _names["surname_vowels"]
_SURNAME_MIDDLES: tuple[str, ...] = _names["surname_middles"]
_SURNAME_ENDINGS: tuple[str, ...] = _names["surname_endings"]
_FIRST_ONSETS: tuple[str, ...] = _names["first_onsets"]
_FIRST_VOWELS: tuple[str, ...] = _names["first_vowels"]
_FIRST_MIDDLES: tuple[str, ...] = _names["first_middles"]
_FIRST_ENDINGS: tuple[str, ...] = _names["first_endings"]


def _synthesise(
    parts: tuple[tuple[str, ...], ...], count: int, exclude: set[str], seed: int
) -> tuple[str, ...]:
    """`count` distinct names built from one choice per part, in a fixed pseudo-random order.

    Uses a linear congruential walk over the cartesian product instead of numpy, so the
    vocabulary is identical on every platform and independent of the generator's seed.
    """
    sizes = [len(p) for p in parts]
    total = 1
    for s in sizes:
        total *= s
    step = 2_654_435_761 % total
    while _gcd(step, total) != 1:
        step += 1
    names: list[str] = []
    seen = {e.lower() for e in exclude}
    position = seed % total
    for _ in range(total):
        position = (position + step) % total
        rest, pieces = position, []
        for part, size in zip(parts, sizes, strict=True):
            rest, i = divmod(rest, size)
            pieces.append(part[i])
        name = "".join(pieces)
        if name.lower() not in seen and not _awkward(name):
            seen.add(name.lower())
            names.append(name)
            if len(names) == count:
                break
    return tuple(names)


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def _awkward(name: str) -> bool:
    """Letter runs no real name has (three vowels or the same letter three times)."""
    lower = name.lower()
    vowel_run = 0
    for i, ch in enumerate(lower):
        vowel_run = vowel_run + 1 if ch in "aeiouy" else 0
        if vowel_run >= 3 or (i >= 2 and ch == lower[i - 1] == lower[i - 2]):
            return True
    return False


def synthetic_surnames(count: int) -> tuple[str, ...]:
    return _synthesise(
        (_SURNAME_ONSETS, _SURNAME_VOWELS, _SURNAME_MIDDLES, _SURNAME_ENDINGS),
        count,
        set(LAST_NAMES),
        seed=17,
    )


def synthetic_first_names(count: int) -> tuple[str, ...]:
    return _synthesise(
        (_FIRST_ONSETS, _FIRST_VOWELS, _FIRST_MIDDLES, _FIRST_ENDINGS),
        count,
        set(FIRST_NAMES_WITH_NICKNAMES) | set(PLAIN_FIRST_NAMES) | set(MORE_FIRST_NAMES),
        seed=29,
    )
