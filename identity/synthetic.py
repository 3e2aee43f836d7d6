"""Synthetic staging data with known truth, for identity tests and the benchmark.

Builds `staging.stg_email__contacts`, `staging.stg_billing__customers` and
`staging.stg_web__events` (the columns of docs/data-model.md) directly, plus the truth
(`source_system, source_record_id, person_id`), with the messiness identity resolution has
to survive: case and spacing, Gmail dots and +tags, "LAST, FIRST" names, nicknames,
typos, phone formats, changed emails, junk values and households sharing an address and
a phone. It does not replace `ingestion/generate.py`; it lets identity be tested and
benchmarked without the landing zone, loader and dbt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import duckdb
import pandas as pd

STAGING_COLUMNS: dict[str, dict[str, str]] = {
    "stg_email__contacts": {
        "contact_id": "VARCHAR",
        "email": "VARCHAR",
        "first_name": "VARCHAR",
        "last_name": "VARCHAR",
        "phone": "VARCHAR",
        "city": "VARCHAR",
        "country": "VARCHAR",
        "is_subscribed": "BOOLEAN",
        "created_at": "TIMESTAMP",
        "updated_at": "TIMESTAMP",
    },
    "stg_billing__customers": {
        "customer_id": "VARCHAR",
        "user_id": "VARCHAR",
        "email": "VARCHAR",
        "name": "VARCHAR",
        "phone": "VARCHAR",
        "address_line1": "VARCHAR",
        "address_city": "VARCHAR",
        "address_postal_code": "VARCHAR",
        "address_country": "VARCHAR",
        "is_deleted": "BOOLEAN",
        "created_at": "TIMESTAMP",
        "updated_at": "TIMESTAMP",
    },
    "stg_web__events": {
        "message_id": "VARCHAR",
        "event_type": "VARCHAR",
        "anonymous_id": "VARCHAR",
        "user_id": "VARCHAR",
        "event_name": "VARCHAR",
        "page_name": "VARCHAR",
        "trait_email": "VARCHAR",
        "trait_first_name": "VARCHAR",
        "trait_last_name": "VARCHAR",
        "trait_name": "VARCHAR",
        "trait_phone": "VARCHAR",
        "revenue": "DOUBLE",
        "page_url": "VARCHAR",
        "page_path": "VARCHAR",
        "page_referrer": "VARCHAR",
        "page_title": "VARCHAR",
        "campaign_source": "VARCHAR",
        "campaign_medium": "VARCHAR",
        "campaign_name": "VARCHAR",
        "user_agent": "VARCHAR",
        "ip": "VARCHAR",
        "occurred_at": "TIMESTAMP",
        "received_at": "TIMESTAMP",
        "delivered_dt": "DATE",
    },
}


def create_staging_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Empty staging tables with the data-model columns (replacing any that exist)."""
    con.execute("create schema if not exists staging")
    for table, columns in STAGING_COLUMNS.items():
        ddl = ", ".join(f"{c} {t}" for c, t in columns.items())
        con.execute(f"create or replace table staging.{table} ({ddl})")


def insert_rows(
    con: duckdb.DuckDBPyConnection, table: str, rows: list[dict] | pd.DataFrame
) -> None:
    """Append rows (dicts with any subset of the table's columns; the rest are NULL)."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    if frame.empty:
        return
    columns = STAGING_COLUMNS[table]
    unknown = set(frame.columns) - set(columns)
    if unknown:
        raise KeyError(f"staging.{table} has no column(s) {sorted(unknown)}")
    con.register("_synthetic_rows", frame)
    select = ", ".join(
        f"cast({c} as {t})" if c in frame.columns else f"cast(null as {t})"
        for c, t in columns.items()
    )
    con.execute(f"insert into staging.{table} select {select} from _synthetic_rows")
    con.unregister("_synthetic_rows")


FIRST_NAMES = (
    "james john robert michael william david richard joseph thomas charles christopher daniel matthew "
    "anthony mark donald steven paul andrew joshua kenneth kevin brian george timothy ronald edward jason "
    "jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin scott brandon benjamin samuel "
    "gregory alexander frank patrick raymond jack dennis jerry tyler aaron jose adam nathan henry douglas "
    "zachary peter kyle ethan walter noah jeremy christian keith roger terry gerald harold sean austin "
    "carl arthur lawrence dylan jesse jordan bryan billy joe bruce gabriel logan albert willie alan juan "
    "wayne elijah randy roy vincent ralph eugene russell bobby mason philip louis mary patricia jennifer "
    "linda elizabeth barbara susan jessica sarah karen lisa nancy betty margaret sandra ashley kimberly "
    "emily donna michelle carol amanda dorothy melissa deborah stephanie rebecca sharon laura cynthia "
    "kathleen amy angela shirley anna brenda pamela emma nicole helen samantha katherine christine debra "
    "rachel carolyn janet catherine maria heather diane ruth julie olivia joyce virginia victoria kelly "
    "lauren christina joan evelyn judith megan andrea cheryl hannah jacqueline martha gloria teresa ann "
    "sara madison frances kathryn janice jean abigail alice judy sophia grace denise amber doris marilyn "
    "danielle beverly isabella theresa diana natalie brittany charlotte marie kayla alexis lori zoe "
    "chloe ines bjorn jose renee francois muller soren"
).split()
NICKNAMES = {
    "william": ["bill", "will", "billy"],
    "robert": ["bob", "rob", "bobby"],
    "james": ["jim", "jimmy"],
    "john": ["jack", "johnny"],
    "michael": ["mike"],
    "richard": ["rick", "dick"],
    "joseph": ["joe"],
    "thomas": ["tom"],
    "charles": ["charlie", "chuck"],
    "christopher": ["chris"],
    "daniel": ["dan", "danny"],
    "matthew": ["matt"],
    "anthony": ["tony"],
    "elizabeth": ["liz", "beth", "betty"],
    "katherine": ["kate", "kathy"],
    "margaret": ["maggie", "peggy"],
    "patricia": ["pat", "patty"],
    "jennifer": ["jen", "jenny"],
    "susan": ["sue"],
    "rebecca": ["becky"],
    "samuel": ["sam"],
    "alexander": ["alex"],
    "benjamin": ["ben"],
    "edward": ["ed", "eddie"],
    "jessica": ["jess"],
    "timothy": ["tim"],
    "stephen": ["steve"],
}
ACCENTED = {
    "zoe": "Zoë",
    "ines": "Inés",
    "bjorn": "Björn",
    "jose": "José",
    "renee": "Renée",
    "francois": "François",
    "muller": "Müller",
    "soren": "Søren",
}
SYLLABLES = (
    "an ar ba be bo ca ce co da de do el en er fa fe fi ga ge go ha he ho in is ja ka ke ko "
    "la le li lo ma me mi mo na ne ni no ol or pa pe pi po ra re ri ro sa se si so ta te ti to "
    "ul ur va ve vi wa we wi ya yo za ze"
).split()
LAST_SUFFIXES = (
    "son",
    "sen",
    "ton",
    "ley",
    "man",
    "er",
    "s",
    "ez",
    "ski",
    "berg",
    "field",
    "wood",
    "ford",
    "",
)
STREETS = (
    "Main Street",
    "Oak Avenue",
    "Maple Road",
    "Cedar Lane",
    "Pine Drive",
    "Elm Street",
    "Lake Boulevard",
    "Hill Road",
    "Park Place",
    "River Court",
    "Sunset Boulevard",
    "Church Street",
    "Mill Lane",
    "North Avenue",
)
STREET_ABBREVIATED = {
    "Street": "St.",
    "Avenue": "Ave",
    "Road": "Rd",
    "Lane": "Ln",
    "Drive": "Dr",
    "Boulevard": "Blvd",
    "Place": "Pl",
    "Court": "Ct",
}
CITIES = (
    [
        ("US", c)
        for c in (
            "Springfield",
            "Riverside",
            "Franklin",
            "Greenville",
            "Bristol",
            "Clinton",
            "Fairview",
            "Salem",
            "Madison",
            "Georgetown",
            "Arlington",
            "Ashland",
        )
    ]
    + [("GB", c) for c in ("London", "Leeds", "Bristol", "York")]
    + [("DE", "Berlin"), ("FR", "Paris"), ("CA", "Toronto")]
)
DOMAINS = (
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "example.org",
    "mail.com",
    "proton.me",
    "fastmail.com",
    "aol.com",
)
JUNK_EMAILS = ("test@test.com", "noreply@shop.com", "none@none.com")
JUNK_PHONES = ("0000000000", "(000) 000-0000", "111-111-1111")


@dataclass
class SyntheticZone:
    contacts: pd.DataFrame
    billing: pd.DataFrame
    web: pd.DataFrame
    truth: pd.DataFrame

    def write(self, con: duckdb.DuckDBPyConnection) -> None:
        create_staging_tables(con)
        insert_rows(con, "stg_email__contacts", self.contacts)
        insert_rows(con, "stg_billing__customers", self.billing)
        insert_rows(con, "stg_web__events", self.web)


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.random()
    if kind < 0.4:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind < 0.7:
        return word[:i] + word[i + 1 :]
    return word[:i] + rng.choice("aeiourstnl") + word[i + 1 :]


def _phone_formats(rng: random.Random, country: str, digits: str) -> str:
    if country in ("US", "CA"):
        a, b, c = digits[:3], digits[3:6], digits[6:]
        return rng.choice(
            [
                f"({a}) {b}-{c}",
                f"{a}-{b}-{c}",
                f"{a}.{b}.{c}",
                f"+1 {a} {b} {c}",
                f"1{a}{b}{c}",
                f"+1{a}{b}{c}",
            ]
        )
    if country == "GB":
        return rng.choice([f"020 {digits[2:6]} {digits[6:]}", f"+44 20 {digits[2:6]} {digits[6:]}"])
    if country == "DE":
        return rng.choice([f"030 {digits[3:]}", f"+49 30 {digits[3:]}"])
    return rng.choice(
        [
            f"01 {digits[2:4]} {digits[4:6]} {digits[6:8]} {digits[8:]}",
            f"+33 1 {digits[2:4]} {digits[4:6]} {digits[6:8]} {digits[8:]}",
        ]
    )


def generate_synthetic_zone(customers: int, seed: int = 7, days: int = 30) -> SyntheticZone:
    """`customers` people spread over email, billing and web records (about two records each)."""
    rng = random.Random(seed)
    last_names = sorted(
        {
            (rng.choice(SYLLABLES) + rng.choice(SYLLABLES) + rng.choice(LAST_SUFFIXES)).capitalize()
            for _ in range(max(4000, customers // 20))
        }
    )
    base = pd.Timestamp("2026-01-01")
    contacts, billing, web, truth = [], [], [], []
    households: list[tuple] = []
    for p in range(customers):
        person = f"p{p:07d}"
        first = rng.choice(FIRST_NAMES)
        if households and rng.random() < 0.08:
            last, street, city, country, postcode, phone_digits = rng.choice(households)
        else:
            last = rng.choice(last_names)
            country, city = rng.choice(CITIES)
            street = f"{rng.randint(1, 9999)} {rng.choice(STREETS)}"
            postcode = f"{rng.randint(10000, 99999)}"
            phone_digits = (
                f"{rng.randint(201, 989)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
            )
            if rng.random() < 0.1:
                households.append((last, street, city, country, postcode, phone_digits))
        display_first = ACCENTED.get(first, first.capitalize())
        domain = rng.choice(DOMAINS)
        local = rng.choice(
            [
                f"{first}.{last.lower()}",
                f"{first[0]}{last.lower()}",
                f"{first}{last.lower()}{rng.randint(1, 99)}",
            ]
        )
        email = f"{local}{rng.randint(100, 999) if rng.random() < 0.5 else ''}@{domain}"
        user_id = f"u_{p:07d}" if rng.random() < 0.85 else None
        created = base + pd.Timedelta(minutes=rng.randrange(days * 24 * 60))
        has_email, has_billing = rng.random() < 0.75, rng.random() < 0.6
        n_web = rng.choice((0, 1, 1, 1, 2)) if user_id or rng.random() < 0.5 else 0
        if not (has_email or has_billing or n_web):
            has_email = True

        def variant_email(e: str) -> str:
            r = rng.random()
            if r < 0.05:
                return rng.choice(JUNK_EMAILS)
            if r < 0.15:
                return f"  {e.upper()} "
            if r < 0.25 and e.endswith("gmail.com"):
                loc, dom = e.split("@")
                return (
                    f"{loc.replace('.', '')}+shop@{'googlemail.com' if rng.random() < 0.5 else dom}"
                )
            return e

        def variant_first(first: str = first, display_first: str = display_first) -> str:
            r = rng.random()
            if r < 0.12 and first in NICKNAMES:
                return rng.choice(NICKNAMES[first]).capitalize()
            if r < 0.2:
                return _typo(rng, display_first)
            if r < 0.25:
                return display_first.upper()
            return display_first

        def variant_phone(country: str = country, phone_digits: str = phone_digits) -> str | None:
            r = rng.random()
            if r < 0.25:
                return None
            if r < 0.28:
                return rng.choice(JUNK_PHONES)
            return _phone_formats(rng, country, phone_digits)

        if has_email:
            cid = f"ct_{p:07d}"
            contacts.append(
                {
                    "contact_id": cid,
                    "email": variant_email(email),
                    "first_name": variant_first(),
                    "last_name": _typo(rng, last) if rng.random() < 0.05 else last,
                    "phone": variant_phone(),
                    "city": city if rng.random() < 0.7 else None,
                    "country": country,
                    "is_subscribed": rng.random() < 0.7,
                    "created_at": created,
                    "updated_at": created + pd.Timedelta(days=rng.randrange(5)),
                }
            )
            truth.append(("email", cid, person))
        if has_billing:
            bid = f"cus_{p:07d}"
            name_first = variant_first()
            name = (
                f"{last.upper()}, {name_first.upper()}"
                if rng.random() < 0.2
                else f"{name_first} {last}"
            )
            billing_email = email
            if rng.random() < 0.2:  # a work address: matching needs name + phone/address
                billing_email = f"{first}.{last.lower()}@{rng.choice(('acme.com', 'globex.com', 'initech.com'))}"
            line1 = street
            if rng.random() < 0.4:
                for full, short in STREET_ABBREVIATED.items():
                    line1 = line1.replace(full, short)
            billing.append(
                {
                    "customer_id": bid,
                    "user_id": user_id,
                    "email": variant_email(billing_email) if rng.random() < 0.9 else None,
                    "name": name,
                    "phone": variant_phone(),
                    "address_line1": line1,
                    "address_city": city,
                    "address_postal_code": postcode,
                    "address_country": country,
                    "is_deleted": False,
                    "created_at": created,
                    "updated_at": created + pd.Timedelta(days=rng.randrange(5)),
                }
            )
            truth.append(("billing", bid, person))
        for w in range(n_web):
            anon = f"anon_{p:07d}_{w}"
            occurred = created + pd.Timedelta(minutes=rng.randrange(60 * 24 * 7))
            traits_email = variant_email(email) if rng.random() < 0.7 else None
            seen_user = user_id if has_billing and rng.random() < 0.8 else None
            if not (traits_email or seen_user):
                continue
            web.append(
                {
                    "message_id": f"m_{p}_{w}_0",
                    "event_type": "page",
                    "anonymous_id": anon,
                    "occurred_at": occurred,
                    "received_at": occurred,
                }
            )
            web.append(
                {
                    "message_id": f"m_{p}_{w}_1",
                    "event_type": "identify",
                    "anonymous_id": anon,
                    "user_id": seen_user,
                    "trait_email": traits_email,
                    "trait_first_name": variant_first() if rng.random() < 0.5 else None,
                    "trait_last_name": last if rng.random() < 0.5 else None,
                    "occurred_at": occurred + pd.Timedelta(minutes=1),
                    "received_at": occurred,
                }
            )
            truth.append(("web", anon, person))
    return SyntheticZone(
        contacts=pd.DataFrame(contacts),
        billing=pd.DataFrame(billing),
        web=pd.DataFrame(web),
        truth=pd.DataFrame(truth, columns=["source_system", "source_record_id", "person_id"]),
    )
