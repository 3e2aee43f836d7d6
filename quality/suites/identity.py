"""Suites for identity resolution's outputs (`identity.customer_map`, `identity.golden_customers`).

These re-derive the invariants from the tables themselves instead of trusting the
counters identity/ writes, and keep their own list of junk values: the point is an
independent second opinion on the matcher, not a copy of its configuration.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from quality.gx_import import lazy_gx_module
from quality.spec import SuiteSpec

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

gxe = lazy_gx_module("great_expectations.expectations")

SOURCE_SYSTEMS = ("email", "billing", "web", "support", "survey")
MATCH_RULES = ("singleton", "email_key", "user_id", "anonymous_stitch", "probabilistic")

#: Cardinality limits per golden customer: the identity guards' policy (identity/config.py),
#: re-checked on the output. Two user ids are legitimate: a person who signed up twice
#: (the demo data has 2% duplicate billing accounts); three or more means a shared id.
MAX_USER_IDS_PER_CUSTOMER = 2
MAX_EMAILS_PER_CUSTOMER = 3
MAX_PHONES_PER_CUSTOMER = 3

#: Values that must never link two records. Regexes, applied in DuckDB (RE2 syntax).
BLOCKED_EMAIL_REGEX = (
    r"^(test@test\.com|test@example\.com|example@example\.com)$"
    r"|^(no-?reply|do-?not-?reply|donotreply|noemail|null|none|unknown)@"
)
BLOCKED_PHONE_REGEX = r"^\+?[0-9]{0,3}(0{7,}|1{7,}|2{7,}|3{7,}|4{7,}|5{7,}|6{7,}|7{7,}|8{7,}|9{7,})$|^\+?1?(0123456789|1234567890)$"
BLOCKED_USER_ID_REGEX = r"^\s*(|null|undefined|none|0|anonymous)\s*$"

BLOCKED_LINK_COLUMN = "_blocked_link_value"
DUPLICATE_KEY_COLUMN = "_duplicate_key"
#: When a map or golden row was last rewritten: the identity step moves `updated_at` only
#: when one of the row's values changed, so a nightly check validates the rows rewritten
#: since its last passing validation (plus every row an exact whole-table rule flags).
CHANGED_COLUMN = "_changed_at"
#: A full resolution (the model trained by the run that wrote the tables) re-resolves every
#: record: its checks validate the whole tables, as a full run always did.
_FULL_RESOLUTION_SQL = (
    "SELECT coalesce(max(trained_at) = max(resolved_at), TRUE) FROM identity.model_parameters"
)

_MAPPING_COVERAGE_SQL = """
WITH mapped AS (
    SELECT source_system, source_record_id, count(*) AS times_mapped,
           max(updated_at) AS changed_at
    FROM identity.customer_map
    GROUP BY source_system, source_record_id
)
SELECT
    coalesce(r.source_system, m.source_system) AS source_system,
    coalesce(r.source_record_id, m.source_record_id) AS source_record_id,
    coalesce(m.times_mapped, 0) AS _times_mapped,
    r.source_record_id IS NOT NULL AS _is_identity_record,
    m.changed_at AS _changed_at,
    -- Only used to keep every problem row when a big table is sampled.
    CASE WHEN coalesce(m.times_mapped, 0) <> 1 OR r.source_record_id IS NULL THEN 'problem' END
        AS _mapping_problem
FROM identity.identity_records AS r
FULL OUTER JOIN mapped AS m
    ON m.source_system = r.source_system AND m.source_record_id = r.source_record_id
"""

# A link is the pair (record, matched_record). The values the two records share on the
# columns identity matches on must not be junk: sharing `test@test.com` proves nothing.
_LINKS_SQL = f"""
WITH links AS (
    SELECT
        m.*,
        a.email_key AS a_email, b.email_key AS b_email,
        a.phone_e164 AS a_phone, b.phone_e164 AS b_phone,
        a.user_id AS a_user, b.user_id AS b_user
    FROM identity.customer_map AS m
    LEFT JOIN identity.identity_records AS a
        ON a.source_system = m.source_system AND a.source_record_id = m.source_record_id
    LEFT JOIN identity.identity_records AS b
        ON b.source_system || ':' || b.source_record_id = m.matched_record
)
SELECT
    * EXCLUDE (a_email, b_email, a_phone, b_phone, a_user, b_user),
    coalesce(
        CASE WHEN a_email = b_email AND regexp_matches(lower(a_email), '{BLOCKED_EMAIL_REGEX}')
             THEN 'email:' || a_email END,
        CASE WHEN a_phone = b_phone AND regexp_matches(a_phone, '{BLOCKED_PHONE_REGEX}')
             THEN 'phone:' || a_phone END,
        CASE WHEN a_user = b_user AND regexp_matches(lower(a_user), '{BLOCKED_USER_ID_REGEX}')
             THEN 'user_id:' || a_user END
    ) AS {BLOCKED_LINK_COLUMN},
    -- Exact over the whole table, so a nightly scope still sees both rows of a duplicate.
    CASE WHEN count(*) OVER (PARTITION BY source_system, source_record_id) > 1
         THEN 'duplicate' END AS {DUPLICATE_KEY_COLUMN}
FROM links
"""

# Recount every golden customer's distinct identifiers from its mapped records.
_GOLDEN_SQL = f"""
WITH per_customer AS (
    SELECT
        m.customer_id,
        count(*) AS n_records,
        count(DISTINCT r.user_id) AS n_user_ids,
        count(DISTINCT r.email_key) AS n_emails,
        count(DISTINCT r.phone_e164) AS n_phones
    FROM identity.customer_map AS m
    LEFT JOIN identity.identity_records AS r
        ON r.source_system = m.source_system AND r.source_record_id = m.source_record_id
    GROUP BY m.customer_id
)
SELECT
    coalesce(g.customer_id, p.customer_id) AS customer_id,
    g.email, g.phone,
    g.customer_id IS NOT NULL AS _in_golden_customers,
    g.updated_at AS _changed_at,
    coalesce(p.n_records, 0) AS _mapped_records,
    p.n_user_ids AS _distinct_user_ids,
    p.n_emails AS _distinct_emails,
    p.n_phones AS _distinct_phones,
    -- Only used to keep every problem row when a big table is sampled.
    CASE WHEN g.customer_id IS NULL OR p.customer_id IS NULL
           OR (g.customer_id IS NOT NULL AND count(*) OVER (PARTITION BY g.customer_id) > 1)
           OR p.n_user_ids > {MAX_USER_IDS_PER_CUSTOMER} OR p.n_emails > {MAX_EMAILS_PER_CUSTOMER}
           OR p.n_phones > {MAX_PHONES_PER_CUSTOMER} THEN 'problem' END AS _golden_problem
FROM identity.golden_customers AS g
FULL OUTER JOIN per_customer AS p ON p.customer_id = g.customer_id
"""


def _coverage_expectations() -> Sequence[Expectation]:
    return [
        gxe.ExpectColumnValuesToBeBetween(
            column="_times_mapped",
            min_value=1,
            max_value=1,
            description="Every identity record is mapped to exactly one golden customer.",
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="_is_identity_record",
            value_set=[True],
            description="Every mapped record exists in identity.identity_records (no orphan mapping).",
        ),
    ]


def _link_expectations() -> Sequence[Expectation]:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="customer_id"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["source_system", "source_record_id"]),
        gxe.ExpectColumnValuesToBeInSet(column="source_system", value_set=list(SOURCE_SYSTEMS)),
        gxe.ExpectColumnValuesToBeInSet(column="match_rule", value_set=list(MATCH_RULES)),
        gxe.ExpectColumnValuesToBeNull(
            column=BLOCKED_LINK_COLUMN,
            description=(
                "No link rests on a junk value (test@test.com, noreply@..., 0000000000, "
                "'undefined' user ids) shared by the record and the record it matched."
            ),
        ),
    ]


def _golden_expectations() -> Sequence[Expectation]:
    return [
        gxe.ExpectColumnValuesToBeUnique(column="customer_id"),
        gxe.ExpectColumnValuesToBeInSet(
            column="_in_golden_customers",
            value_set=[True],
            description="Every customer_id in identity.customer_map has a golden record.",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="_mapped_records",
            min_value=1,
            description="Every golden customer has at least one mapped source record.",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="_distinct_user_ids",
            max_value=MAX_USER_IDS_PER_CUSTOMER,
            description=f"At most {MAX_USER_IDS_PER_CUSTOMER} product user_ids per golden customer.",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="_distinct_emails",
            max_value=MAX_EMAILS_PER_CUSTOMER,
            description=f"At most {MAX_EMAILS_PER_CUSTOMER} distinct emails per golden customer.",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="_distinct_phones",
            max_value=MAX_PHONES_PER_CUSTOMER,
            description=f"At most {MAX_PHONES_PER_CUSTOMER} distinct phones per golden customer.",
        ),
        gxe.ExpectColumnValuesToMatchRegex(
            column="phone", regex=r"^\+[1-9][0-9]{6,14}$", description="Golden phones are E.164."
        ),
    ]


IDENTITY_SUITES: list[SuiteSpec] = [
    SuiteSpec(
        name="identity_customer_map__coverage",
        table="identity.customer_map",
        severity="ERROR",
        description="Every identity record is mapped exactly once; no mapping without a record.",
        partitioned=False,
        expectations=_coverage_expectations,
        frame_sql=_MAPPING_COVERAGE_SQL,
        key_columns=("source_system", "source_record_id"),
        exact_columns=("_mapping_problem",),
        changed_column=CHANGED_COLUMN,
        whole_scope_sql=_FULL_RESOLUTION_SQL,
    ),
    SuiteSpec(
        name="identity_customer_map__links",
        table="identity.customer_map",
        severity="ERROR",
        description="Map rows are complete, unique, use known rules, and no link rests on a junk value.",
        partitioned=False,
        expectations=_link_expectations,
        frame_sql=_LINKS_SQL,
        key_columns=("source_system", "source_record_id", "matched_record"),
        exact_columns=(BLOCKED_LINK_COLUMN, DUPLICATE_KEY_COLUMN),
        changed_column="updated_at",
        whole_scope_sql=_FULL_RESOLUTION_SQL,
    ),
    SuiteSpec(
        name="identity_golden_customers__errors",
        table="identity.golden_customers",
        severity="ERROR",
        description="Golden ids unique and complete; no customer beyond the user-id/email/phone limits.",
        partitioned=False,
        expectations=_golden_expectations,
        frame_sql=_GOLDEN_SQL,
        key_columns=("customer_id",),
        exact_columns=("_golden_problem",),
        changed_column=CHANGED_COLUMN,
        whole_scope_sql=_FULL_RESOLUTION_SQL,
    ),
]
