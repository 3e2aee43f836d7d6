"""Habits of real customer data that make identity resolution hard, as generator options.

`cdp generate` gives every zone these habits at modest rates (`DEFAULT_HABITS`, so the
demo looks like a real CRM); `--hard` raises all of them and `--habits a,b` raises the
named ones (`HARD_HABITS`); `--habits none` turns them off. The habits:

- shared-inboxes: a family's one address used by two or three household members with
  different first names, and the role inbox of a small company's own domain
  (`orders@hendersonplumbing.com`) used by everyone who buys there. None of these
  addresses is on any list a resolver could ship: they must be detected from the data.
- surname-changes: people who changed their surname (marriage). Their address still
  carries the old name; each record shows the old or the new one, and the ESP's change
  export later updates some contacts to the new one.
- foreign-phones: numbers outside North America written in national format
  (`030 1234567`, `07700 900123`), with the record's country column set, so a resolver
  can read them only if it uses that column.
- misspelt-domains: the big providers' domains mistyped (`gmial.com`, `hotmial.com`).
- last-first: free-text names written "Last First" without a comma, and split
  first/last fields swapped.
- middle-initials: "Ada K. Lovelace", "Ada K".
- work-addresses: people with a personal and a work address keep both as separate ESP
  contacts more often, and more of them tie the two by nothing but their name (and
  sometimes city).

Every record stays in truth.csv with its real person. Each habit draws from its own
seeded stream, so output stays byte-identical per seed and turning one habit up does
not reshuffle the others.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from demo_data.strings import concat, take, where

HABIT_NAMES = (
    "shared-inboxes",
    "surname-changes",
    "foreign-phones",
    "misspelt-domains",
    "last-first",
    "middle-initials",
    "work-addresses",
)


@dataclass(frozen=True)
class Habits:
    """Rates of each habit (shares of people or of records, as each field says)."""

    family_inbox: float = 0.0  # of household members: write from the household's address
    company_inbox: float = 0.0  # of people: buy through a small company's role inbox
    surname_change: float = 0.0  # of people: changed surname after their address was made
    national_phone: float = 0.0  # of non-North-American records with a phone: national format
    misspelt_domain: float = 0.0  # of records at a big provider: domain mistyped
    last_first: float = 0.0  # of records with a name: "Last First" / swapped fields
    middle_initial: float = 0.0  # of records with a first name: a middle initial added
    work_second_contact: float = 0.45  # of ESP subscribers with a work address: a 2nd contact
    work_kept_apart: float = 0.025  # of people with a work address: linked by name only

    def describe(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name):g}" for f in dataclasses.fields(self))


# Without habits: the generator as it was before these options existed.
NO_HABITS = Habits()
# Each habit's rate in the demo (a realistic sprinkle) and with --hard, side by side.
_DEMO_AND_HARD_RATES = {
    "family_inbox": (0.15, 0.5),
    "company_inbox": (0.005, 0.03),
    "surname_change": (0.01, 0.05),
    "national_phone": (0.15, 0.6),
    "misspelt_domain": (0.003, 0.02),
    "last_first": (0.01, 0.05),
    "middle_initial": (0.02, 0.08),
    "work_second_contact": (0.45, 0.7),
    "work_kept_apart": (0.025, 0.1),
}
DEFAULT_HABITS = Habits(**{name: demo for name, (demo, _) in _DEMO_AND_HARD_RATES.items()})
HARD_HABITS = Habits(**{name: hard for name, (_, hard) in _DEMO_AND_HARD_RATES.items()})
_FIELDS_OF_HABIT = {
    "shared-inboxes": ("family_inbox", "company_inbox"),
    "surname-changes": ("surname_change",),
    "foreign-phones": ("national_phone",),
    "misspelt-domains": ("misspelt_domain",),
    "last-first": ("last_first",),
    "middle-initials": ("middle_initial",),
    "work-addresses": ("work_second_contact", "work_kept_apart"),
}


def habits_from_names(names: str | None, hard: bool = False) -> Habits:
    """`--habits a,b` (raised to the hard rates), `--habits none`, `--hard` (all raised)."""
    if hard:
        return HARD_HABITS
    if names is None or not names.strip():
        return DEFAULT_HABITS
    wanted = [n.strip().lower() for n in names.split(",") if n.strip()]
    if wanted == ["none"]:
        return NO_HABITS
    unknown = [n for n in wanted if n not in _FIELDS_OF_HABIT]
    if unknown:
        raise ValueError(
            f"unknown habit(s) {', '.join(unknown)}; choose from {', '.join(HABIT_NAMES)} "
            "(comma-separated), or 'none'"
        )
    raised = {f: getattr(HARD_HABITS, f) for n in wanted for f in _FIELDS_OF_HABIT[n]}
    return dataclasses.replace(DEFAULT_HABITS, **raised)


# --- vocabulary the habits draw on ---------------------------------------------------------

# How people mistype the big providers' domains (keyboard slips seen in real bounce logs).
MISSPELT_DOMAINS: dict[str, tuple[str, ...]] = {
    "gmail.com": ("gmial.com", "gmal.com", "gamil.com", "gmail.co", "gmaill.com"),
    "hotmail.com": ("hotmial.com", "hotmal.com", "hotmail.co", "hotmil.com"),
    "yahoo.com": ("yaho.com", "yahooo.com", "yahoo.co", "yhoo.com"),
    "outlook.com": ("outlok.com", "outlook.co", "outllook.com", "otlook.com"),
    "icloud.com": ("iclod.com", "icloud.co", "icoud.com"),
}
# Role mailboxes of small businesses: deliberately beyond the usual info@/sales@ lists.
ROLE_MAILBOXES = (
    "orders",
    "accounts",
    "billing",
    "team",
    "purchasing",
    "buying",
    "bookings",
    "frontdesk",
    "studio",
    "post",
    "mail",
    "kontakt",
    "bureau",
    "hq",
)
SMALL_COMPANY_TRADES = (
    "plumbing",
    "bakery",
    "dental",
    "design",
    "builders",
    "law",
    "florist",
    "cafe",
    "motors",
    "print",
    "joinery",
    "optics",
    "physio",
    "studio",
    "farm",
    "books",
)
SMALL_COMPANY_TLDS = (".com", ".co.uk", ".de", ".fr", ".net", ".com.au", ".ca", ".io")
COMPANY_SIZES = np.array([2, 3, 4, 5, 6])
COMPANY_SIZE_WEIGHTS = np.array([0.3, 0.3, 0.2, 0.12, 0.08])
NORTH_AMERICAN_COUNTRIES = ("US", "CA")
INITIALS = tuple("ABCDEFGHJKLMNPRSTW")


# --- the population: who has which habit --------------------------------------------------


def apply_population_habits(population, habits: Habits, seed: int) -> None:
    """Give people their habits, in place: shared inboxes, changed surnames, kept-apart
    work identities. Runs after the population's addresses were made, so a changed
    surname leaves the address with the old name, as in life."""
    from demo_data.people import (
        LAST_NAME_ZIPF,
        LAST_NAMES,
        SHARE_WORK_LINK_NONE,
        WORK_LINK_ACCOUNT,
        WORK_LINK_NO_WORK_EMAIL,
        WORK_LINK_NONE,
        WORK_LINK_PHONE,
        _zipf_choice,
        stream_rng,
    )

    size = population.size
    population.habits = habits
    population.maiden_last_idx = np.full(size, -1, np.int64)

    rng = stream_rng(seed, "habits/surname-changes")
    changed = np.flatnonzero(rng.random(size) < habits.surname_change)
    if len(changed):
        new_last = _zipf_choice(len(LAST_NAMES), len(changed), LAST_NAME_ZIPF, rng)
        differs = new_last != population.last_idx[changed]
        changed, new_last = changed[differs], new_last[differs]
        population.maiden_last_idx[changed] = population.last_idx[changed]
        population.last_idx[changed] = new_last

    rng = stream_rng(seed, "habits/family-inboxes")
    members = np.flatnonzero(population.household_host != np.arange(size))
    sharing = members[rng.random(len(members)) < habits.family_inbox]
    if len(sharing):
        source = np.arange(size)
        source[sharing] = population.household_host[sharing]
        population.personal_email = population.personal_email.take(pa.array(source))
        population.personal_is_gmail = population.personal_is_gmail[source]

    rng = stream_rng(seed, "habits/company-inboxes")
    buyers = np.flatnonzero(rng.random(size) < habits.company_inbox)
    if len(buyers) >= 2:
        buyers = buyers[rng.permutation(len(buyers))]
        sizes = rng.choice(COMPANY_SIZES, size=len(buyers), p=COMPANY_SIZE_WEIGHTS)
        company_of = np.repeat(np.arange(len(sizes)), sizes)[: len(buyers)]
        n_companies = int(company_of.max()) + 1
        owner_surname = population.last_names.slugs.take(
            pa.array(_zipf_choice(len(LAST_NAMES), n_companies, LAST_NAME_ZIPF, rng))
        )
        domain = concat(
            owner_surname,
            take(SMALL_COMPANY_TRADES, rng.integers(0, len(SMALL_COMPANY_TRADES), n_companies)),
            take(SMALL_COMPANY_TLDS, rng.integers(0, len(SMALL_COMPANY_TLDS), n_companies)),
        )
        inbox = concat(
            take(ROLE_MAILBOXES, rng.integers(0, len(ROLE_MAILBOXES), n_companies)), "@", domain
        )
        work_source = np.arange(size)
        work_source[buyers] = size + company_of
        population.work_email = pa.concat_arrays(
            [population.work_email.cast(pa.string()), inbox]
        ).take(pa.array(work_source))
        had_none = population.work_link[buyers] == WORK_LINK_NO_WORK_EMAIL
        population.work_link[buyers[had_none]] = rng.choice(
            [WORK_LINK_PHONE, WORK_LINK_ACCOUNT, WORK_LINK_NONE],
            size=int(had_none.sum()),
            p=[0.85, 0.1, 0.05],
        ).astype(np.int8)

    rng = stream_rng(seed, "habits/work-addresses")
    extra_apart = max(0.0, habits.work_kept_apart - SHARE_WORK_LINK_NONE)
    linked = np.flatnonzero(
        (population.work_link != WORK_LINK_NO_WORK_EMAIL) & (population.work_link != WORK_LINK_NONE)
    )
    population.work_link[
        linked[rng.random(len(linked)) < extra_apart / (1 - SHARE_WORK_LINK_NONE)]
    ] = WORK_LINK_NONE


# --- records: how a source renders a person with habits -------------------------------------


def record_last_idx(population, person: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The surname a record shows: half the records of people who changed theirs still
    carry the old one."""
    maiden = population.maiden_last_idx[person]
    old = (maiden >= 0) & (rng.random(len(person)) < 0.5)
    return np.where(old, maiden, population.last_idx[person])


def misspell_domains(canonical: pa.Array, rng: np.random.Generator, p: float) -> pa.Array:
    """Canonical lower-case addresses with some big-provider domains mistyped."""
    n = len(canonical)
    hit = rng.random(n) < p
    pick = rng.integers(0, 1 << 30, n)
    if not hit.any():
        return canonical
    domain = pc.list_element(pc.split_pattern(canonical, "@", max_splits=1), 1)
    local = pc.list_element(pc.split_pattern(canonical, "@", max_splits=1), 0)
    out = canonical
    for right, wrong in MISSPELT_DOMAINS.items():
        at = hit & pc.fill_null(pc.equal(domain, right), False).to_numpy(zero_copy_only=False)
        if at.any():
            out = where(at, concat(local, "@", take(wrong, pick % len(wrong))), out)
    return out


def with_middle_initials(first: pa.Array, rng: np.random.Generator, p: float) -> pa.Array:
    """ "Ada" -> "Ada K." or "Ada K" on a share of records."""
    n = len(first)
    hit = rng.random(n) < p
    initial = take(INITIALS, rng.integers(0, len(INITIALS), n))
    dotted = concat(first, " ", initial, take(("", "."), rng.integers(0, 2, n)))
    return where(hit, dotted, first)


def full_names(first: pa.Array, last: pa.Array, rng: np.random.Generator, p: float) -> pa.Array:
    """One free-text name: "First Last", or "Last First" (no comma) on a share of records."""
    swapped = rng.random(len(first)) < p
    return where(swapped, concat(last, " ", first), concat(first, " ", last))


def swap_name_fields(
    first: pa.Array, last: pa.Array, rng: np.random.Generator, p: float
) -> tuple[pa.Array, pa.Array]:
    """Split name fields filled the wrong way round (surname in first_name) on a share."""
    swapped = rng.random(len(first)) < p
    return where(swapped, last, first), where(swapped, first, last)


def national_phone_mask(
    population, person: np.ndarray, rng: np.random.Generator, p: float
) -> np.ndarray:
    """Records of people outside North America whose phone is written in national format
    (their country column is then set, so the number can be read)."""
    from demo_data.people import COUNTRY_CODES

    outside = ~np.isin(
        np.array(COUNTRY_CODES)[population.country_idx[person]], NORTH_AMERICAN_COUNTRIES
    )
    return outside & (rng.random(len(person)) < p)


__all__ = [
    "DEFAULT_HABITS",
    "HABIT_NAMES",
    "HARD_HABITS",
    "Habits",
    "MISSPELT_DOMAINS",
    "NO_HABITS",
    "ROLE_MAILBOXES",
    "apply_population_habits",
    "full_names",
    "habits_from_names",
    "misspell_domains",
    "national_phone_mask",
    "record_last_idx",
    "swap_name_fields",
    "with_middle_initials",
]
