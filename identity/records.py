"""One normalised identity record per source record, built inside DuckDB from the staging models.

Sources: email contacts, billing customers, and web identities (one per `anonymous_id`
with its latest identify traits and `user_id`; events without an anonymous id form one
identity per `user_id`). Every web identity with a user id or any identify trait (an email,
a phone or only a name) is a record; one never identified at all is not a customer and is
skipped. Junk values (config `blocked_*`) are kept for display but
never used for matching; they are listed in `blocked_values`.

Normalisation runs as SQL over all records (two million rows in seconds); Python
(`identity.normalize`) only sees the few distinct values SQL cannot settle exactly:
phones outside the plain North-American shapes, and text with letters that
`strip_accents` cannot fold (ß, Ø, non-Latin scripts) - Unidecode transliterates those.
The SQL and Python paths give the same results (tests/identity/test_identity_normalize.py).

A nightly run normalises only what changed: every source row gets a `source_fingerprint`
(a hash of its un-normalised values, of the misspelt-domain fix its email domain gets -
the one data-wide input of normalisation - and of the normaliser itself: this code, the
source SQL, the nickname list, the settings and the stewards' value blocks). A row whose
fingerprint equals last run's `identity.identity_records` row is taken from there as it
is; only new and changed rows go through the SQL and Python above.

Customer-experience sources join when their staging models exist: support-ticket
requesters (one record per ticket with a usable email or phone) and NPS respondents (one
per response with a usable email); see source_records_support.sql and
source_records_survey.sql.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
from pathlib import Path

import duckdb
import pandas as pd
from unidecode import unidecode

from identity.config import IdentityConfig
from identity.normalize import (
    _GMAIL_DOMAINS,
    _NAME_PREFIXES,
    _NAME_SUFFIXES,
    _NANP_REGIONS,
    _PLUS_TAG_DOMAINS,
    _STREET_ABBREVIATIONS,
    nickname_table,
    normalize_phone,
)
from warehouse_engine.catalog import table_exists

STAGING_TABLES = (
    "staging.stg_email__contacts",
    "staging.stg_billing__customers",
    "staging.stg_web__events",
)
RECORDS_TABLE = "_identity_records"

# The un-normalised records, one row per source record: static SQL beside this module.
SOURCE_RECORDS_SQL = Path(__file__).with_name("source_records.sql")
# Customer-experience sources, each added to SOURCE_RECORDS_SQL when its staging model
# exists (a warehouse built before they were added still resolves).
EXPERIENCE_RECORDS_SQL = {
    "staging.stg_support__tickets": Path(__file__).with_name("source_records_support.sql"),
    "staging.stg_surveys__responses": Path(__file__).with_name("source_records_survey.sql"),
}

SOURCE_TABLE = "_identity_source_records"
# The big mail providers whose misspelt domains (edit distance <= 2, <= 1 for short ones)
# are read as the provider's: people mistype them, nobody registers a company there.
BIG_MAIL_PROVIDERS = (
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de",
    "hotmail.com", "hotmail.co.uk", "hotmail.fr", "outlook.com", "live.com", "msn.com",
    "icloud.com", "me.com", "aol.com", "gmx.de", "gmx.net", "gmx.at", "web.de", "t-online.de",
    "protonmail.com", "proton.me", "yandex.ru", "mail.ru", "orange.fr", "free.fr", "laposte.net",
    "comcast.net", "verizon.net", "att.net", "sbcglobal.net", "libero.it", "qq.com", "163.com",
)  # fmt: skip
# A misspelt domain is rare next to its provider: at most this many records, or this share
# of the provider's own records when that is more.
MISSPELT_DOMAIN_MAX_RECORDS = 3
MISSPELT_DOMAIN_MAX_SHARE = 0.05
_TEXT_COLUMNS = ("email", "first_name", "last_name", "full_name", "address_line1", "address_city")


def create_source_table(con: duckdb.DuckDBPyConnection) -> None:
    """`_identity_source_records`: the staging records, un-normalised, one row per source
    record (the SQL files above)."""
    missing = [t for t in STAGING_TABLES if not table_exists(con, t)]
    if missing:
        raise LookupError(
            f"identity resolution reads {', '.join(missing)}, which the warehouse does not "
            "have yet; run the dbt staging models first (`dbt build --select staging`)"
        )
    blocks = [SOURCE_RECORDS_SQL] + [
        path for table, path in EXPERIENCE_RECORDS_SQL.items() if table_exists(con, table)
    ]
    sql = "\nunion all\n".join(path.read_text(encoding="utf-8") for path in blocks)
    con.execute(f"create or replace temp table {SOURCE_TABLE} as {sql}")


def _sql_list(values) -> str:
    quoted = ", ".join("'" + str(v).replace("'", "''") + "'" for v in sorted(values))
    return f"[{quoted}]" if quoted else "[]::varchar[]"


def _sql_map(mapping: dict[str, str]) -> str:
    if not mapping:
        return "MAP {}::MAP(varchar, varchar)"
    items = ", ".join(
        "'" + k.replace("'", "''") + "': '" + v.replace("'", "''") + "'"
        for k, v in sorted(mapping.items())
    )
    return "MAP {" + items + "}"


def _any_pattern(column: str, patterns: tuple[str, ...]) -> str:
    if not patterns:
        return "false"
    combined = "|".join(f"(?:{p})" for p in patterns).replace("'", "''")
    return f"regexp_matches({column}, '{combined}')"


def _ascii_fold(column: str) -> str:
    """Accents stripped in SQL; values SQL cannot fold come from the Unidecode lookup."""
    return f"coalesce(_fold_{column}.folded, strip_accents({column}))"


def _fold_name_sql(expr: str) -> str:
    """SQL twin of normalize.fold_name on an already ASCII-folded expression."""
    text = f"replace(lower({expr}), '.', ' ')"
    text = f"regexp_replace({text}, '[^a-z'' -]', ' ', 'g')"
    text = f"replace(replace({text}, '-', ' '), '''', '')"
    return f"nullif(trim(regexp_replace({text}, '\\s+', ' ', 'g')), '')"


def _strip_titles_sql(expr: str) -> str:
    prefixes = "|".join(sorted(_NAME_PREFIXES))
    suffixes = "|".join(sorted(_NAME_SUFFIXES))
    no_prefix = f"regexp_replace({expr}, '^(({prefixes})( |$))+', '')"
    return f"nullif(trim(regexp_replace({no_prefix}, '( ({suffixes}))+$', '')), '')"


TITLE_CASE_MACRO = """
create or replace temp macro _identity_title_case(s) as list_aggr(list_transform(
    string_split(s, ' '), lambda w: list_aggr(list_transform(
        string_split(w, '-'), lambda p: list_aggr(list_transform(
            string_split(p, ''''), lambda q: upper(left(q, 1)) || lower(substr(q, 2))),
            'string_agg', '''')), 'string_agg', '-')), 'string_agg', ' ')
"""


# The collapsed value is computed once per row (the lambda of a one-element list), not at
# each of its five uses (the display first name: 0.61 -> 0.18 CPU s over 220,099 records).
TITLE_IF_SHOUTING_MACRO = """
create or replace temp macro _identity_title_if_shouting(s) as list_transform(
    [nullif(trim(regexp_replace(s, '\\s+', ' ', 'g')), '')],
    lambda c: case when c = upper(c) or c = lower(c) then _identity_title_case(c) else c end)[1]
"""


def _title_if_shouting_sql(expr: str) -> str:
    """Display casing: ALL CAPS or all lower case becomes Title Case, mixed case is kept."""
    return f"_identity_title_if_shouting({expr})"


def _python_lookups(
    con: duckdb.DuckDBPyConnection, config: IdentityConfig, domain_fixes_ready: bool = False
) -> None:
    """The few distinct values that need Python, as small lookup tables joined in SQL."""
    folds = con.sql(
        " union ".join(
            f"select distinct {c} as value from {SOURCE_TABLE} "
            f"where {c} is not null and regexp_matches(strip_accents({c}), '[^\\x00-\\x7F]')"
            for c in _TEXT_COLUMNS
        )
    ).fetchall()
    fold_frame = pd.DataFrame(
        {"value": [v for (v,) in folds], "folded": [unidecode(v) for (v,) in folds]},
        dtype=object,
    )
    con.register("_identity_fold_frame", fold_frame)
    con.execute(
        "create or replace temp table _identity_fold as "
        "select value::varchar as value, folded::varchar as folded from _identity_fold_frame"
    )
    con.unregister("_identity_fold_frame")

    region = f"coalesce(upper(trim(country)), '{config.default_phone_region}')"
    compact = "regexp_replace(trim(phone), '[\\s().\\-/]', '', 'g')"
    nanp = _sql_list(_NANP_REGIONS)
    con.execute(f"""
        create or replace temp table _identity_phone_input as
        select distinct phone, {region} as region, {compact} as compact
        from {SOURCE_TABLE} where phone is not null
    """)
    # Plain North-American shapes in SQL, exactly as normalize._fast_e164 treats them.
    con.execute(f"""
        create or replace temp table _identity_phone as
        select phone, region,
            case
                when contains(phone, '(0)') then null
                when regexp_full_match(compact, '\\+1[1-9][0-9]{{9}}') then compact
                when list_contains({nanp}, region)
                     and regexp_full_match(compact, '1?[2-9][0-9]{{9}}')
                    then '+1' || right(compact, 10)
            end as e164,
            e164 is not null as settled
        from _identity_phone_input
    """)
    rest = con.sql(
        "select phone, region from _identity_phone where not settled and trim(phone) <> ''"
    ).fetchall()
    parsed = pd.DataFrame(
        {
            "phone": [p for p, _ in rest],
            "region": [r for _, r in rest],
            "e164": [normalize_phone(p, r, config.default_phone_region) for p, r in rest],
        },
        dtype=object,
    )
    con.register("_identity_phone_parsed", parsed)
    con.execute("""
        update _identity_phone t set e164 = p.e164::varchar, settled = true
        from _identity_phone_parsed p where t.phone = p.phone and t.region = p.region
    """)
    con.unregister("_identity_phone_parsed")

    con.execute(TITLE_CASE_MACRO)
    con.execute(TITLE_IF_SHOUTING_MACRO)
    if not domain_fixes_ready:
        _create_domain_fixes(con)


def _create_domain_fixes(con: duckdb.DuckDBPyConnection) -> None:
    """`_identity_domain_fix(domain, canonical)`: misspelt domains of the big mail providers
    (gmial.com, hotmial.com, yaho.com) found in the data. A domain is a misspelling when it
    is within a small edit distance (transpositions count once; two edits only for long
    domains with the same top-level domain, so hotmail.de stays hotmail.de) of a provider's domain, is
    not a provider itself, and is rare next to it: a real company domain one letter away
    from a provider (and as common as its own customers) is left alone."""
    providers = _sql_list(BIG_MAIL_PROVIDERS)
    con.execute(f"""
        create or replace temp table _identity_domain_fix as
        with domains as (
            select lower(split_part(trim(email), '@', 2)) as domain, count(*) as n
            from {SOURCE_TABLE} where contains(email, '@') group by 1
        ),
        providers as (
            select p.domain, coalesce(d.n, 0) as n from unnest({providers}) as p(domain)
            left join domains d using (domain)
        ),
        candidates as (
            select d.domain, p.domain as canonical, d.n,
                   damerau_levenshtein(d.domain, p.domain) as distance, p.n as provider_n
            from domains d join providers p
              on damerau_levenshtein(d.domain, p.domain)
                 <= case when length(p.domain) >= 9
                              and split_part(d.domain, '.', -1) = split_part(p.domain, '.', -1)
                         then 2 else 1 end
            where not list_contains({providers}, d.domain) and length(d.domain) >= 5
        )
        select domain, arg_min(canonical, (distance, -provider_n)) as canonical
        from candidates
        where n <= greatest({MISSPELT_DOMAIN_MAX_RECORDS}, provider_n * {MISSPELT_DOMAIN_MAX_SHARE})
        group by domain
    """)


def normalize_records_sql(
    con: duckdb.DuckDBPyConnection, config: IdentityConfig, domain_fixes_ready: bool = False
) -> str:
    """Create `_identity_records` (normalised, with `rid` = position in record_key order)
    from `_identity_source_records`; returns the table name. `domain_fixes_ready`: the
    misspelt-domain table was made from all records (the source table holds only some)."""
    _python_lookups(con, config, domain_fixes_ready)
    nicknames = _sql_map(nickname_table())
    streets = _sql_map(_STREET_ABBREVIATIONS)
    plus_tag = _sql_list(_PLUS_TAG_DOMAINS)
    gmail = _sql_list(_GMAIL_DOMAINS)
    blocked_emails = _sql_list({e.strip().lower() for e in config.blocked_emails})
    blocked_phones = _sql_list(config.blocked_phones)
    blocked_user_ids = _sql_list({u.strip().lower() for u in config.blocked_user_ids})
    blocked_names = _sql_list({n.strip().lower() for n in config.blocked_names})
    email_blocked = (
        "(list_contains({bl}, {c}) or {pat}"
        + (
            " or split_part({c}, '@', 1) = split_part(split_part({c}, '@', 2), '.', 1)"
            if config.block_mailbox_equal_to_domain
            else ""
        )
        + ")"
    )

    def email_is_blocked(column: str) -> str:
        return email_blocked.format(
            bl=blocked_emails,
            c=column,
            pat=_any_pattern(column, config.blocked_email_patterns),
        )

    display_split_first = _title_if_shouting_sql(
        "regexp_extract(trim(full_name), '^(.*)\\s+\\S+$', 1)"
    )
    display_split_last = _title_if_shouting_sql("regexp_extract(trim(full_name), '\\s(\\S+)$', 1)")
    fold_joins = " ".join(
        f"left join _identity_fold _fold_{c} on _fold_{c}.value = s.{c}" for c in _TEXT_COLUMNS
    )
    con.execute(f"""
        create or replace temp table {RECORDS_TABLE} as
        with folded as (
            select s.*,
                {_ascii_fold("email")} as email_ascii,
                {_fold_name_sql(_ascii_fold("first_name"))} as first_folded,
                {_fold_name_sql(_ascii_fold("last_name"))} as last_folded,
                {_ascii_fold("full_name")} as full_ascii,
                lower({_ascii_fold("address_line1")}) as street_ascii,
                {_fold_name_sql(_ascii_fold("address_city"))} as city_folded,
                p.e164 as phone_parsed,
                lower(trim(s.email)) as email_trimmed
            from {SOURCE_TABLE} s
            {fold_joins}
            left join _identity_phone p
              on p.phone = s.phone
             and p.region = coalesce(upper(trim(s.country)), '{config.default_phone_region}')
        ),
        emails as (
            select *,
                case when regexp_full_match(email_trimmed, '[^@\\s]+@[^@\\s]+\\.[^@\\s]+')
                     then email_trimmed end as email_valid
            from folded
        ),
        email_domains as (
            select emails.*, coalesce(fix.canonical, split_part(email_valid, '@', 2)) as email_domain
            from emails
            left join _identity_domain_fix fix on fix.domain = split_part(email_valid, '@', 2)
        ),
        email_keys as (
            select *,
                case when email_valid is not null then
                    nullif(
                        case when list_contains({gmail}, email_domain)
                             then replace(split_part(split_part(email_valid, '@', 1), '+', 1), '.', '')
                             when list_contains({plus_tag}, email_domain)
                             then split_part(split_part(email_valid, '@', 1), '+', 1)
                             else split_part(email_valid, '@', 1) end, '')
                    || '@' ||
                    case when list_contains({gmail}, email_domain)
                         then 'gmail.com' else email_domain end
                end as email_key_raw
            from email_domains
        ),
        names as (
            select *,
                case when contains(full_ascii, ',')
                     then {_strip_titles_sql(_fold_name_sql("split_part(full_ascii, ',', 2)"))}
                     else regexp_replace({_strip_titles_sql(_fold_name_sql("full_ascii"))},
                                         '^(\\S+ \\S+.*?)(?: [a-z])+$', '\\1') end as full_clean,
                case when contains(full_ascii, ',')
                     then {_fold_name_sql("split_part(full_ascii, ',', 1)")} end as comma_last
            from email_keys
        ),
        split as (
            select *,
                case when comma_last is not null or full_ascii is null then full_clean
                     when contains(full_clean, ' ')
                     then regexp_extract(full_clean, '^(.*) [^ ]+$', 1)
                     else full_clean end as split_first,
                case when full_ascii is null then null
                     when contains(full_ascii, ',') then comma_last
                     when contains(full_clean, ' ') then regexp_extract(full_clean, ' ([^ ]+)$', 1)
                     end as split_last
            from names
        ),
        blocked as (
            select *,
                coalesce({email_is_blocked("email_valid")} or {email_is_blocked("email_key_raw")}, false)
                    as email_blocked,
                coalesce(list_contains({blocked_phones}, phone_parsed)
                         or {_any_pattern("ltrim(phone_parsed, '+')", config.blocked_phone_patterns)}, false)
                    as phone_blocked,
                -- numbers too broken to parse (0000000000) are listed when they match a
                -- blocked pattern, so the audit shows them; they never link either way
                case when phone_parsed is null and phone is not null
                     then nullif(regexp_replace(phone, '[^0-9]', '', 'g'), '') end as phone_junk_digits,
                coalesce(first_folded, split_first) as first_any,
                coalesce(last_folded, split_last) as last_any
            from split
        ),
        flagged as (
            select *,
                coalesce(list_contains({blocked_names}, first_any), false) as first_blocked,
                coalesce(list_contains({blocked_names}, last_any), false) as last_blocked,
                coalesce(list_contains({blocked_user_ids}, lower(trim(user_id))), false) as user_blocked
            from blocked
        )
        select
            (row_number() over (order by source_system || ':' || source_record_id) - 1)::integer as rid,
            source_system || ':' || source_record_id as record_key,
            source_system::varchar as source_system,
            source_record_id::varchar as source_record_id,
            email_valid as email,
            case when not email_blocked then email_key_raw end as email_key,
            case when not email_blocked then split_part(email_key_raw, '@', 1) end as email_local,
            case when not phone_blocked then phone_parsed end as phone_e164,
            phone_parsed as phone_display,
            case when not first_blocked then first_any end as first_name,
            case when not last_blocked then last_any end as last_name,
            case when not first_blocked then
                coalesce({nicknames}[split_part(first_any, ' ', 1)], split_part(first_any, ' ', 1))
            end as first_name_key,
            case when not first_blocked then coalesce(
                {_title_if_shouting_sql("first_name")},
                case when contains(full_name, ',') then {_title_if_shouting_sql("split_part(full_name, ',', 2)")}
                     when contains(trim(full_name), ' ')
                     then {display_split_first}
                     else {_title_if_shouting_sql("full_name")} end)
            end as display_first_name,
            case when not last_blocked then coalesce(
                {_title_if_shouting_sql("last_name")},
                case when contains(full_name, ',') then {_title_if_shouting_sql("split_part(full_name, ',', 1)")}
                     when contains(trim(full_name), ' ')
                     then {display_split_last}
                     end)
            end as display_last_name,
            nullif(array_to_string(list_transform(
                string_split(trim(regexp_replace(
                    regexp_replace(replace(street_ascii, '#', ' apt '), '[^a-z0-9 ]', ' ', 'g'),
                    '\\s+', ' ', 'g')), ' '),
                lambda w: coalesce({streets}[w], w)), ' '), '') as address_line1,
            city_folded as address_city,
            case when upper(coalesce(country, '')) in ('US', '')
                      and regexp_full_match(regexp_replace(upper(address_postal_code), '[^A-Z0-9]', '', 'g'), '[0-9]{{9}}')
                 then left(regexp_replace(upper(address_postal_code), '[^A-Z0-9]', '', 'g'), 5)
                 else nullif(regexp_replace(upper(address_postal_code), '[^A-Z0-9]', '', 'g'), '')
            end as address_postal_code,
            upper(trim(country)) as address_country,
            nullif(trim(regexp_replace(address_line1, '\\s+', ' ', 'g')), '') as display_address_line1,
            {_title_if_shouting_sql("address_city")} as display_city,
            case when not user_blocked then user_id end as user_id,
            n_user_ids::bigint as n_user_ids,
            coalesce(is_deleted, false) as is_deleted,
            created_at as source_created_at,
            updated_at as source_updated_at,
            nullif(concat_ws(', ',
                case when email_blocked then 'email:' || email_valid end,
                case when phone_blocked then 'phone:' || phone_parsed
                     when {_any_pattern("phone_junk_digits", config.blocked_phone_patterns)}
                     then 'phone:' || phone_junk_digits end,
                case when first_blocked then 'first_name:' || first_any end,
                case when last_blocked then 'last_name:' || last_any end,
                case when user_blocked then 'user_id:' || user_id end), '') as blocked_values,
            {"source_fingerprint" if "source_fingerprint" in _source_columns(con) else "null::varchar as source_fingerprint"}
        from flagged
        order by rid
    """)
    for table in (
        "_identity_fold",
        "_identity_phone",
        "_identity_phone_input",
        "_identity_domain_fix",
    ):
        con.execute(f"drop table if exists {table}")
    return RECORDS_TABLE


def _source_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [c for c, *_ in con.sql(f"describe {SOURCE_TABLE}").fetchall()]


_NORMALISER_FILES = (
    Path(__file__),
    Path(__file__).with_name("normalize.py"),
    SOURCE_RECORDS_SQL,
    *EXPERIENCE_RECORDS_SQL.values(),
    Path(__file__).with_name("data") / "nicknames.csv",
)
REUSED_SOURCE_TABLE = "_identity_source_reused"


def normaliser_fingerprint(config: IdentityConfig, steward_blocks: str = "") -> str:
    """A hash of everything that decides how a source row is normalised besides the row and
    its domain's fix: this code and its data, the libraries it calls, the settings, the
    stewards' value blocks."""
    digest = hashlib.sha256(repr(sorted(dataclasses.asdict(config).items())).encode())
    for path in _NORMALISER_FILES:
        digest.update(path.read_bytes() if path.exists() else b"")
    # the libraries that fold text, parse phones and run the SQL can change results too
    for package in ("duckdb", "phonenumbers", "unidecode"):
        try:
            digest.update(f"{package}={importlib.metadata.version(package)}".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(package.encode())
    digest.update(steward_blocks.encode())
    return digest.hexdigest()[:16]


def _add_source_fingerprints(con: duckdb.DuckDBPyConnection, salt: str) -> None:
    """`source_fingerprint` on every source row (needs `_identity_domain_fix` from all rows)."""
    columns = [c for c in _source_columns(con) if c != "source_fingerprint"]
    hashed = ", ".join(f"coalesce(cast(s.{c} as varchar), '\u2205')" for c in columns)
    con.execute(f"""
        create or replace temp table {SOURCE_TABLE} as
        select s.*, md5(concat_ws('\u241f', '{salt}', {hashed},
                                  coalesce(fix.canonical, '\u2205'))) as source_fingerprint
        from {SOURCE_TABLE} s
        left join _identity_domain_fix fix on fix.domain = lower(split_part(trim(s.email), '@', 2))
    """)


def _previous_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    found = con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = 'identity' and table_name = 'identity_records'"
    ).fetchall()
    return {c for (c,) in found}


def _previous_has_fingerprints(con: duckdb.DuckDBPyConnection) -> bool:
    return "source_fingerprint" in _previous_columns(con)


def _reusable_previous(con: duckdb.DuckDBPyConnection) -> list[str] | None:
    """The columns of `_identity_records` last run's identity records can give, or None when
    they cannot be reused (a column of this version is missing there)."""
    previous = _previous_columns(con)
    needed = [c for c, *_ in con.sql(f"describe {RECORDS_TABLE}").fetchall() if c != "rid"]
    return needed if set(needed) <= previous else None


def build_identity_records_table(
    con: duckdb.DuckDBPyConnection,
    config: IdentityConfig,
    reuse_previous: bool = False,
    steward_blocks: str = "",
) -> int:
    """Read the staging models into the temp table `_identity_records`; returns how many
    records were normalised this run. `reuse_previous` (a nightly run): rows whose source
    fingerprint is last run's come from `identity.identity_records` instead (never a row a
    steward's block touched: blocks are applied to the records afterwards). `steward_blocks`:
    the active value blocks, as text, part of every fingerprint."""
    create_source_table(con)
    _create_domain_fixes(con)
    _add_source_fingerprints(con, normaliser_fingerprint(config, steward_blocks))
    reused = 0
    if reuse_previous and _previous_has_fingerprints(con):
        con.execute(f"""
            create or replace temp table {REUSED_SOURCE_TABLE} as
            select s.source_system || ':' || s.source_record_id as record_key
            from {SOURCE_TABLE} s
            join identity.identity_records p
              on p.record_key = s.source_system || ':' || s.source_record_id
             and p.source_fingerprint = s.source_fingerprint
            where coalesce(p.blocked_values, '') not like '%steward %'
        """)
        con.execute(f"""
            create or replace temp table {SOURCE_TABLE} as
            select s.* from {SOURCE_TABLE} s
            anti join {REUSED_SOURCE_TABLE} r
              on r.record_key = s.source_system || ':' || s.source_record_id
        """)
        reused = con.sql(f"select count(*) from {REUSED_SOURCE_TABLE}").fetchall()[0][0]
    normalize_records_sql(con, config, domain_fixes_ready=True)
    normalised = con.sql(f"select count(*) from {RECORDS_TABLE}").fetchall()[0][0]
    columns = _reusable_previous(con) if reused else None
    if reused and columns is None:
        # last run's identity records lack a column this version makes: normalise all
        return build_identity_records_table(con, config, False, steward_blocks)
    if reused and columns is not None:
        listed = ", ".join(columns)
        con.execute(f"""
            create or replace temp table {RECORDS_TABLE} as
            select (row_number() over (order by record_key) - 1)::integer as rid, {listed}
            from (
                select {listed} from {RECORDS_TABLE}
                union all
                select {", ".join(f"p.{c}" for c in columns)} from identity.identity_records p
                semi join {REUSED_SOURCE_TABLE} r using (record_key)
            )
            order by rid
        """)
    con.execute(f"drop table if exists {SOURCE_TABLE}")
    con.execute(f"drop table if exists {REUSED_SOURCE_TABLE}")
    return normalised
