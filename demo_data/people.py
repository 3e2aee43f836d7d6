"""The synthetic population behind the demo sources, and how each source renders a person.

A `Population` holds one row per real person (the ground truth): canonical names,
emails, phone, address, household and namesake links. Sources never copy these values
verbatim: `render_*` functions turn them into the messy text a real system would hold
(nicknames, typos, mixed-case emails with spaces, Gmail aliases, every phone format,
abbreviated street types), so that identity resolution has real work to do.

Realism choices that decide how hard matching is (and so what accuracy figures mean):
- Names follow a Zipf-Mandelbrot curve over 4,000 first names and 40,000 surnames (real
  names as the frequent head, deterministic syllable-built names as the long tail): the
  commonest surname is ~1% of people, as in census data, so two strangers rarely share a
  full name unless it is a common one. Planted namesakes (1%: same name, same city,
  different person) use common names, as real ones do.
- Linking evidence is a personal habit, not a coin per record: people who give their phone
  give it to most systems. Of people with a work and a personal address, 90% tie them with
  the same phone on both, 7.5% with a product account billed to the work address whose web
  logins identify with the personal one (`userId` joins them), and 2.5% keep them apart
  with nothing in common but their name: those are meant to stay unresolved.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from unidecode import unidecode

from demo_data import vocabulary as vocab
from demo_data.habits import DEFAULT_HABITS, NO_HABITS, Habits, apply_population_habits
from demo_data.strings import (
    assemble,
    concat,
    digit_strings,
    strings_from_fixed_width,
    take,
    where,
)


def stream_rng(seed: int, stream: str) -> np.random.Generator:
    """An independent random stream per purpose, so tables do not shift each other's draws."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode("utf-8"))])


def _typo_variants(word: str) -> list[str]:
    """Two plausible keyboard slips: swapped neighbours and a dropped or doubled letter."""
    if len(word) < 4:
        return [word + word[-1], word[:-1] + word[-1].upper() if word[-1].isalpha() else word]
    mid = len(word) // 2
    swapped = word[: mid - 1] + word[mid] + word[mid - 1] + word[mid + 1 :]
    dropped = word[:mid] + word[mid + 1 :]
    doubled = word[: mid + 1] + word[mid] + word[mid + 1 :]
    variants = [v for v in (swapped, dropped, doubled) if v != word]
    return variants[:2] if len(variants) >= 2 else (variants + [word + "e"])[:2]


def _slug(word: str) -> str:
    return "".join(ch for ch in unidecode(word).lower() if ch.isalnum())


@dataclass(frozen=True)
class NameForms:
    """Every spelling of each name in a vocabulary: canonical, nicknames, typos."""

    forms: pa.Array  # flattened spellings
    start: np.ndarray  # first form of name i
    n_nicknames: np.ndarray
    n_typos: np.ndarray
    slugs: pa.Array  # ascii lower-case name for email local parts
    initials: pa.Array

    @classmethod
    def build(cls, names: list[str], nicknames: dict[str, tuple[str, ...]]) -> NameForms:
        forms: list[str] = []
        start, n_nick, n_typo = [], [], []
        for name in names:
            start.append(len(forms))
            nicks = list(nicknames.get(name, ()))
            typos = _typo_variants(name)
            forms.extend([name, *nicks, *typos])
            n_nick.append(len(nicks))
            n_typo.append(len(typos))
        slugs = [_slug(n) for n in names]
        return cls(
            forms=pa.array(forms, pa.string()),
            start=np.array(start, np.int64),
            n_nicknames=np.array(n_nick, np.int64),
            n_typos=np.array(n_typo, np.int64),
            slugs=pa.array(slugs, pa.string()),
            initials=pa.array([s[:1] for s in slugs], pa.string()),
        )

    def render(
        self, name_idx: np.ndarray, rng: np.random.Generator, p_nickname: float, p_typo: float
    ) -> pa.Array:
        u = rng.random(len(name_idx))
        pick = rng.random(len(name_idx))
        n_nick = self.n_nicknames[name_idx]
        n_typo = self.n_typos[name_idx]
        use_nick = (u < p_nickname) & (n_nick > 0)
        use_typo = (u >= p_nickname) & (u < p_nickname + p_typo)
        offset = np.where(use_nick, 1 + (pick * n_nick).astype(np.int64), 0)
        offset = np.where(use_typo, 1 + n_nick + (pick * n_typo).astype(np.int64), offset)
        return self.forms.take(pa.array(self.start[name_idx] + offset, pa.int64()))


# Vocabulary sizes: the real names form the frequent head, synthetic names the long tail.
N_FIRST_NAMES = 4_000
N_LAST_NAMES = 40_000
_REAL_FIRST_NAMES = list(
    dict.fromkeys(
        [
            *vocab.FIRST_NAMES_WITH_NICKNAMES,
            *vocab.PLAIN_FIRST_NAMES,
            *vocab.MORE_FIRST_NAMES,
        ]
    )
)
FIRST_NAMES: list[str] = _REAL_FIRST_NAMES + list(
    vocab.synthetic_first_names(N_FIRST_NAMES - len(_REAL_FIRST_NAMES))
)
_REAL_LAST_NAMES = list(dict.fromkeys(vocab.LAST_NAMES))
LAST_NAMES: list[str] = _REAL_LAST_NAMES + list(
    vocab.synthetic_surnames(N_LAST_NAMES - len(_REAL_LAST_NAMES))
)
# Zipf-Mandelbrot popularity, weight of rank k = 1 / (k + q) ** s: the most common surname
# is ~1% of people and the top 1,000 about half (close to US census figures); the most
# common first name ~2.5%. List order is rank order (nicknamed names are the commonest).
FIRST_NAME_ZIPF = (1.0, 4.0)  # (s, q)
LAST_NAME_ZIPF = (1.0, 10.0)
NAMESAKE_FIRST_NAME_RANKS = 40
NAMESAKE_LAST_NAME_RANKS = 200
COUNTRY_CODES: list[str] = [c[0] for c in vocab.COUNTRIES]
CITIES: list[str] = [city for c in vocab.COUNTRIES for city in c[3]]
_CITY_RANGES = []
_offset = 0
for _c in vocab.COUNTRIES:
    _CITY_RANGES.append((_offset, len(_c[3])))
    _offset += len(_c[3])
CITY_START = np.array([r[0] for r in _CITY_RANGES], np.int64)
CITY_COUNT = np.array([r[1] for r in _CITY_RANGES], np.int64)
CURRENCY_OF_COUNTRY: list[str] = [c[2] for c in vocab.COUNTRIES]
PERSONAL_DOMAINS: list[str] = [d for d, _ in vocab.PERSONAL_EMAIL_DOMAINS]
COMPANY_DOMAINS: list[str] = [w + s for w in vocab.COMPANY_WORDS for s in vocab.COMPANY_SUFFIXES]
GMAIL_DOMAIN_IDX = {PERSONAL_DOMAINS.index("gmail.com"), PERSONAL_DOMAINS.index("googlemail.com")}


# Linking evidence. People who hand out their phone number do so almost everywhere, and
# others almost nowhere (a person-level habit, not an independent coin per record). A person
# with a work and a personal address is usually tied together by something real: the same
# mobile number on both records (WORK_LINK_PHONE), or a product account billed to the work
# address whose web logins identify with the personal one, so the web `userId` joins them
# (WORK_LINK_ACCOUNT). A few keep the two lives apart with nothing in common but their name
# (WORK_LINK_NONE): no resolver should merge those on evidence this thin.
WORK_LINK_NO_WORK_EMAIL, WORK_LINK_PHONE, WORK_LINK_ACCOUNT, WORK_LINK_NONE = 0, 1, 2, 3
SHARE_GIVING_PHONE = 0.55
SHARE_WORK_LINK_PHONE = 0.9
SHARE_WORK_LINK_ACCOUNT = 0.075
SHARE_WORK_LINK_NONE = 0.025
P_PHONE_SHOWN_BY_NON_GIVER = 0.03
P_PHONE_SHOWN_WHEN_IT_LINKS = 0.99


def shows_phone(
    population: Population,
    person: np.ndarray,
    p_record: float,
    is_work_record: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Whether each record shows its person's phone, where a source fills the field with
    probability `p_record` on average: likely for people who give their number, near-certain
    when the phone is what ties their work and personal records, never on the work records
    of people who keep the two apart."""
    p_giver = min(P_PHONE_SHOWN_WHEN_IT_LINKS, p_record / SHARE_GIVING_PHONE)
    p = np.where(population.gives_phone[person], p_giver, P_PHONE_SHOWN_BY_NON_GIVER)
    link = population.work_link[person]
    p = np.where(link == WORK_LINK_PHONE, P_PHONE_SHOWN_WHEN_IT_LINKS, p)
    p = np.where((link == WORK_LINK_NONE) & is_work_record, 0.0, p)
    return rng.random(len(person)) < p


def uses_work_email(
    population: Population,
    person: np.ndarray,
    p_work: float,
    rng: np.random.Generator,
    identifies_on_web: bool = False,
) -> np.ndarray:
    """Whether each billing account / web identify carries the work address (else personal).

    WORK_LINK_ACCOUNT people bill to the work address and identify on the web with the
    personal one; WORK_LINK_NONE people use only the personal address outside the ESP's
    work contact, so their work contact shares nothing with their other records."""
    has_work = population.work_email.is_valid().to_numpy(zero_copy_only=False)[person]
    link = population.work_link[person]
    p_account = 0.0 if identifies_on_web else max(p_work, 0.8)
    p = np.where(link == WORK_LINK_ACCOUNT, p_account, p_work)
    p = np.where(link == WORK_LINK_NONE, 0.0, p)
    return has_work & (rng.random(len(person)) < p)


@dataclass
class Population:
    """One row per real person; the index into these arrays is the person's truth id."""

    size: int
    first_idx: np.ndarray
    last_idx: np.ndarray
    country_idx: np.ndarray
    city_idx: np.ndarray
    house_number: np.ndarray
    street_idx: np.ndarray
    street_type_idx: np.ndarray
    postal_code: pa.Array
    phone_prefix_idx: np.ndarray
    phone_digits: np.ndarray
    personal_email: pa.Array  # canonical, lower case
    personal_is_gmail: np.ndarray
    work_email: pa.Array  # null when the person has none
    household_host: np.ndarray  # index of the person whose address/phone they share (self if none)
    gives_phone: np.ndarray  # bool: hands out their phone number to most systems
    work_link: np.ndarray  # int8 WORK_LINK_*: what ties their work and personal identities
    namesake_of: np.ndarray  # index of the person whose name+city they share (-1 if none)
    first_names: NameForms
    last_names: NameForms
    habits: Habits = NO_HABITS
    maiden_last_idx: np.ndarray | None = None  # surname before a change (-1 if none)

    def person_ids(self, indices: np.ndarray | None = None) -> pa.Array:
        idx = np.arange(self.size) if indices is None else indices
        return concat("P", digit_strings(idx + 1, 8))


def build_population(size: int, seed: int, habits: Habits = DEFAULT_HABITS) -> Population:
    """Draw `size` people: names, contact details, households and namesakes, then give
    them their `habits` (shared inboxes, changed surnames, ...: demo_data.habits)."""
    rng = stream_rng(seed, "population")
    first_names = NameForms.build(FIRST_NAMES, vocab.FIRST_NAMES_WITH_NICKNAMES)
    last_names = NameForms.build(LAST_NAMES, {})

    first_idx = _zipf_choice(len(FIRST_NAMES), size, FIRST_NAME_ZIPF, rng)
    last_idx = _zipf_choice(len(LAST_NAMES), size, LAST_NAME_ZIPF, rng)
    country_weights = np.array([c[1] for c in vocab.COUNTRIES])
    country_idx = rng.choice(
        len(COUNTRY_CODES), size=size, p=country_weights / country_weights.sum()
    )
    city_idx = CITY_START[country_idx] + (rng.random(size) * CITY_COUNT[country_idx]).astype(
        np.int64
    )
    house_number = 1 + (rng.pareto(1.2, size) * 20).astype(np.int64) % 2999
    street_idx = rng.integers(
        0, 1000, size
    )  # reduced modulo the country's street list when rendered
    street_type_idx = rng.integers(0, 1000, size)
    phone_prefix_idx = rng.integers(0, 10, size)
    phone_digits = rng.integers(2_000_000, 9_999_999, size)

    # Namesakes: different people with the same name in the same city. As in real life they
    # carry common names (two John Smiths in Boston, not two Joisy Seanteks in Frankfurt),
    # so term-frequency-aware matching can tell a rare shared name from a common one.
    namesake_of = np.full(size, -1, np.int64)
    if size >= 10:
        n_namesakes = max(2, size // 100)
        copies = rng.choice(size, n_namesakes, replace=False)
        common = np.flatnonzero(
            (first_idx < NAMESAKE_FIRST_NAME_RANKS) & (last_idx < NAMESAKE_LAST_NAME_RANKS)
        )
        pool = common if len(common) >= 2 else np.arange(size)
        originals = pool[rng.integers(0, len(pool), n_namesakes)]
        keep = (copies != originals) & ~np.isin(copies, originals)
        copies, originals = copies[keep], originals[keep]
        namesake_of[copies] = originals
        first_idx[copies] = first_idx[originals]
        last_idx[copies] = last_idx[originals]
        country_idx[copies] = country_idx[originals]
        city_idx[copies] = city_idx[originals]

    # Households: members share the host's address and phone, with their own first name.
    household_host = np.arange(size)
    if size >= 10:
        n_members = max(2, size * 8 // 100)
        members = rng.choice(size, n_members, replace=False)
        hosts = rng.integers(0, size, n_members)
        valid = (hosts != members) & ~np.isin(hosts, members)
        members, hosts = members[valid], hosts[valid]
        household_host[members] = hosts
        same_last = rng.random(len(members)) < 0.8
        last_idx[members] = np.where(same_last, last_idx[hosts], last_idx[members])
        clash = first_idx[members] == first_idx[hosts]
        first_idx[members] = np.where(
            clash, (first_idx[members] + 7) % len(FIRST_NAMES), first_idx[members]
        )
        for column in (
            country_idx,
            city_idx,
            house_number,
            street_idx,
            street_type_idx,
            phone_prefix_idx,
            phone_digits,
        ):
            column[members] = column[hosts]
    postal_code = _postal_codes(country_idx, rng)
    postal_code = postal_code.take(pa.array(household_host))

    personal_email, is_gmail = _personal_emails(first_idx, last_idx, first_names, last_names, rng)
    work_email = _work_emails(first_idx, last_idx, first_names, last_names, rng)
    link_rng = stream_rng(seed, "population/linking-evidence")
    gives_phone = link_rng.random(size) < SHARE_GIVING_PHONE
    has_work = work_email.is_valid().to_numpy(zero_copy_only=False)
    work_link = np.where(
        has_work,
        link_rng.choice(
            [WORK_LINK_PHONE, WORK_LINK_ACCOUNT, WORK_LINK_NONE],
            size=size,
            p=[SHARE_WORK_LINK_PHONE, SHARE_WORK_LINK_ACCOUNT, SHARE_WORK_LINK_NONE],
        ),
        WORK_LINK_NO_WORK_EMAIL,
    ).astype(np.int8)

    population = Population(
        size=size,
        first_idx=first_idx,
        last_idx=last_idx,
        country_idx=country_idx,
        city_idx=city_idx,
        house_number=house_number,
        street_idx=street_idx,
        street_type_idx=street_type_idx,
        postal_code=postal_code,
        phone_prefix_idx=phone_prefix_idx,
        phone_digits=phone_digits,
        personal_email=personal_email,
        personal_is_gmail=is_gmail,
        work_email=work_email,
        household_host=household_host,
        gives_phone=gives_phone,
        work_link=work_link,
        namesake_of=namesake_of,
        first_names=first_names,
        last_names=last_names,
    )
    apply_population_habits(population, habits, seed)
    return population


def _zipf_choice(
    k: int, n: int, shape: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """`n` ranks in [0, k) drawn with Zipf-Mandelbrot weights (rank 0 the most common)."""
    exponent, offset = shape
    weights = 1.0 / (np.arange(1, k + 1) + offset) ** exponent
    cumulative = np.cumsum(weights / weights.sum())
    return np.minimum(np.searchsorted(cumulative, rng.random(n), side="right"), k - 1)


def _random_pattern(pattern: str, n: int, rng: np.random.Generator) -> pa.Array:
    """Strings following a pattern: 'A' a capital letter, '9' a digit, anything else literal."""
    chars = np.empty((n, len(pattern)), np.uint8)
    for i, ch in enumerate(pattern):
        if ch == "A":
            chars[:, i] = 65 + rng.integers(0, 26, n)
        elif ch == "9":
            chars[:, i] = 48 + rng.integers(0, 10, n)
        else:
            chars[:, i] = ord(ch)
    return strings_from_fixed_width(chars)


def _postal_codes(country_idx: np.ndarray, rng: np.random.Generator) -> pa.Array:
    n = len(country_idx)
    code = COUNTRY_CODES
    five = digit_strings(rng.integers(1001, 99951, n), 5)
    gb_outward = take(
        ["SW1A", "EC1V", "M1", "BS1", "EH1", "LS1", "G1", "CB2", "BN1", "N1"],
        rng.integers(0, 10, n),
    )
    gb = concat(gb_outward, " ", _random_pattern("9AA", n, rng))
    ca = _random_pattern("A9A 9A9", n, rng)
    au = digit_strings(rng.integers(2000, 7000, n), 4)
    country = np.array(code)[country_idx]
    result = where(country == "GB", gb, five)
    result = where(country == "CA", ca, result)
    return where(country == "AU", au, result)


def _dedupe_emails(
    local: pa.Array, domain: pa.Array, key_local: pa.Array, person_tag: np.ndarray
) -> tuple[pa.Array, pa.Array]:
    """Make addresses unique per person by appending digits where two people collide."""
    for _ in range(4):
        key = concat(key_local, "@", domain)
        codes = pc.dictionary_encode(key).indices.to_numpy(zero_copy_only=False)
        _, first_positions = np.unique(codes, return_index=True)
        is_duplicate = np.ones(len(codes), bool)
        is_duplicate[first_positions] = False
        if not is_duplicate.any():
            break
        tag = pc.cast(pa.array(person_tag), pa.string())
        local = where(is_duplicate, concat(local, tag), local)
        key_local = where(is_duplicate, concat(key_local, tag), key_local)
    return local, key_local


def _personal_emails(
    first_idx, last_idx, first_names: NameForms, last_names: NameForms, rng: np.random.Generator
) -> tuple[pa.Array, np.ndarray]:
    n = len(first_idx)
    weights = np.array([w for _, w in vocab.PERSONAL_EMAIL_DOMAINS])
    domain_idx = rng.choice(len(PERSONAL_DOMAINS), size=n, p=weights / weights.sum())
    domain = take(PERSONAL_DOMAINS, domain_idx)
    first = first_names.slugs.take(pa.array(first_idx))
    initial = first_names.initials.take(pa.array(first_idx))
    last = last_names.slugs.take(pa.array(last_idx))
    pattern = rng.choice(8, size=n, p=[0.25, 0.15, 0.08, 0.12, 0.08, 0.17, 0.07, 0.08])
    digits = pc.cast(pa.array(rng.integers(1, 99, n)), pa.string())
    head = where(pattern == 6, last, where((pattern == 3) | (pattern == 4), initial, first))
    sep = take([".", "", "_", "", ".", ".", ".", ""], pattern)
    tail = where(pattern == 6, first, where(pattern == 7, "", last))
    suffix = where((pattern == 5) | (pattern == 7), digits, "")
    local = concat(head, sep, tail, suffix)
    is_gmail = np.isin(domain_idx, list(GMAIL_DOMAIN_IDX))
    # Gmail ignores dots, so uniqueness must hold for the dot-less form.
    key_local = where(is_gmail, pc.replace_substring(local, ".", ""), local)
    key_domain = where(is_gmail, "gmail.com", domain)
    local, _ = _dedupe_emails(local, key_domain, key_local, np.arange(n) % 9973 + 100)
    return concat(local, "@", domain), is_gmail


def _work_emails(
    first_idx, last_idx, first_names: NameForms, last_names: NameForms, rng: np.random.Generator
) -> pa.Array:
    n = len(first_idx)
    has_work = rng.random(n) < 0.25
    company = take(COMPANY_DOMAINS, rng.integers(0, len(COMPANY_DOMAINS), n))
    first = first_names.slugs.take(pa.array(first_idx))
    initial = first_names.initials.take(pa.array(first_idx))
    last = last_names.slugs.take(pa.array(last_idx))
    local = where(rng.random(n) < 0.7, concat(first, ".", last), concat(initial, last))
    local, _ = _dedupe_emails(local, company, local, np.arange(n) % 997 + 2)
    email = concat(local, "@", company)
    return where(has_work, email, None)


# --- rendering: how a source system holds a person ------------------------------------


def render_email(
    canonical: pa.Array,
    is_gmail: np.ndarray,
    rng: np.random.Generator,
    p_gmail_alias: float = 0.25,
    p_case: float = 0.15,
    p_spaces: float = 0.06,
) -> pa.Array:
    """Messy text of a canonical address: +tags and dot changes on Gmail, case, spaces."""
    n = len(canonical)
    parts = pc.split_pattern(canonical, "@", max_splits=1)
    local = pc.list_element(parts, 0)
    domain = pc.list_element(parts, 1)
    u = rng.random(n)
    alias = is_gmail & (u < p_gmail_alias)
    tagged = alias & (rng.random(n) < 0.5)
    tags = take(vocab.GMAIL_TAGS, rng.integers(0, len(vocab.GMAIL_TAGS), n))
    dotless = pc.replace_substring(local, ".", "")
    has_dot = pc.greater(pc.utf8_length(local), pc.utf8_length(dotless)).to_numpy(
        zero_copy_only=False
    )
    # Dotted form: insert a dot after the first two letters of a dot-less name.
    dotted = concat(
        pc.utf8_slice_codeunits(local, 0, 2), ".", pc.utf8_slice_codeunits(local, 2, 10**6)
    )
    dot_variant = where(has_dot, dotless, dotted)
    local = where(alias & ~tagged, dot_variant, local)
    local = where(tagged, concat(local, "+", tags), local)
    email = concat(local, "@", domain)
    case = rng.random(n)
    email = where(case < p_case * 0.5, pc.utf8_upper(email), email)
    email = where((case >= p_case * 0.5) & (case < p_case), pc.utf8_capitalize(email), email)
    space = rng.random(n)
    email = where(space < p_spaces * 0.5, concat(" ", email), email)
    return where((space >= p_spaces * 0.5) & (space < p_spaces), concat(email, "  "), email)


def _phone_formats(code: str, national: pa.Array) -> list:
    """The ways people write a national number of `code`, as functions of its digits."""

    def cut(a: int, b: int) -> pa.Array:
        return pc.utf8_slice_codeunits(national, a, b)

    if code in ("US", "CA"):
        return [
            lambda: concat("(", cut(0, 3), ") ", cut(3, 6), "-", cut(6, 10)),
            lambda: concat(cut(0, 3), ".", cut(3, 6), ".", cut(6, 10)),
            lambda: concat("+1 ", cut(0, 3), " ", cut(3, 6), " ", cut(6, 10)),
            lambda: concat("+1", national),
            lambda: concat("1-", cut(0, 3), "-", cut(3, 6), "-", cut(6, 10)),
        ]
    if code == "GB":
        return [
            lambda: concat("+44 ", cut(0, 4), " ", cut(4, 10)),
            lambda: concat("0", cut(0, 4), " ", cut(4, 10)),
            lambda: concat("0044 ", cut(0, 4), " ", cut(4, 7), " ", cut(7, 10)),
            lambda: concat("+44", national),
            lambda: concat("+44 (0)", cut(0, 4), " ", cut(4, 10)),
        ]
    if code == "DE":
        return [
            lambda: concat("+49 ", cut(0, 4), " ", cut(4, 11)),
            lambda: concat("0", cut(0, 4), " ", cut(4, 11)),
            lambda: concat("00 49 ", cut(0, 4), " ", cut(4, 11)),
            lambda: concat("+49", national),
            lambda: concat("0", cut(0, 4), "/", cut(4, 8), " ", cut(8, 11)),
        ]
    if code == "FR":
        return [
            lambda: concat(
                "+33 ", cut(0, 1), " ", cut(1, 3), " ", cut(3, 5), " ", cut(5, 7), " ", cut(7, 9)
            ),
            lambda: concat(
                "0", cut(0, 1), " ", cut(1, 3), " ", cut(3, 5), " ", cut(5, 7), " ", cut(7, 9)
            ),
            lambda: concat(
                "0033 ", cut(0, 1), " ", cut(1, 3), " ", cut(3, 5), " ", cut(5, 7), " ", cut(7, 9)
            ),
            lambda: concat("+33", national),
            lambda: concat(
                "0", cut(0, 1), ".", cut(1, 3), ".", cut(3, 5), ".", cut(5, 7), ".", cut(7, 9)
            ),
        ]
    return [  # AU
        lambda: concat("+61 ", cut(0, 3), " ", cut(3, 6), " ", cut(6, 9)),
        lambda: concat("0", cut(0, 3), " ", cut(3, 6), " ", cut(6, 9)),
        lambda: concat("0061 ", cut(0, 3), " ", cut(3, 6), " ", cut(6, 9)),
        lambda: concat("+61", national),
        lambda: concat("0", cut(0, 3), "-", cut(3, 6), "-", cut(6, 9)),
    ]


def render_phone(
    population: Population,
    person_idx: np.ndarray,
    rng: np.random.Generator,
    national: np.ndarray | None = None,
) -> pa.Array:
    """A person's phone number in one of the formats humans type for their country
    (the national format, without country code, where `national` is set)."""
    n = len(person_idx)
    country_idx = population.country_idx[person_idx]
    style = rng.integers(0, 5, n)
    if national is not None:
        style = np.where(national, 1, style)
    pieces = []
    for c, code in enumerate(COUNTRY_CODES):
        prefixes, n_random = vocab.PHONE_PLANS[code]
        for s in range(5):
            rows = np.flatnonzero((country_idx == c) & (style == s))
            if not len(rows):
                continue
            people = person_idx[rows]
            national = concat(
                take(prefixes, population.phone_prefix_idx[people] % len(prefixes)),
                digit_strings(population.phone_digits[people] % (10**n_random), n_random),
            )
            pieces.append((rows, _phone_formats(code, national)[s]()))
    return assemble(n, pieces)


def render_street(
    population: Population, person_idx: np.ndarray, rng: np.random.Generator
) -> pa.Array:
    """First address line, with the street type spelled or abbreviated as each system does."""
    n = len(person_idx)
    country = np.array(COUNTRY_CODES)[population.country_idx[person_idx]]
    number = pc.cast(pa.array(population.house_number[person_idx]), pa.string())
    street_raw = population.street_idx[person_idx]
    type_raw = population.street_type_idx[person_idx]
    spelling = rng.integers(0, 4, n)

    def street_type(types: tuple[tuple[str, ...], ...]) -> pa.Array:
        flat = [form for t in types for form in t]
        starts = np.cumsum([0] + [len(t) for t in types[:-1]])
        counts = np.array([len(t) for t in types])
        t_idx = type_raw % len(types)
        return take(flat, starts[t_idx] + spelling % counts[t_idx])

    english = concat(
        number,
        " ",
        take(vocab.STREET_NAMES_EN, street_raw % len(vocab.STREET_NAMES_EN)),
        " ",
        street_type(vocab.STREET_TYPES_EN),
    )
    german = concat(
        take(vocab.STREET_NAMES_DE, street_raw % len(vocab.STREET_NAMES_DE)),
        street_type(vocab.STREET_TYPES_DE),
        " ",
        number,
    )
    french = concat(
        number,
        where(spelling % 2 == 0, ", ", " "),
        street_type(vocab.STREET_TYPES_FR),
        " ",
        take(vocab.STREET_NAMES_FR, street_raw % len(vocab.STREET_NAMES_FR)),
    )
    line = where(country == "DE", german, english)
    line = where(country == "FR", french, line)
    return where(rng.random(n) < 0.04, pc.utf8_upper(line), line)
