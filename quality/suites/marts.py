"""Suites for the BI contract (`marts.*`): what dbt's own tests cannot say.

Unique keys, not-null columns and allowed values of the marts are dbt tests
(models/marts/_*.yml) and revenue reconciles in dbt too
(tests/assert_revenue_reconciles_with_staging.sql): they run inside the dbt build, right
after the model they test, so a failure stops the models built on it. These suites keep
only the checks across layers: every row of the layer below is in the mart and nothing
else is (identity for the customer tables, staging for tickets), NPS recounts, and the
WARN report of invoices whose billing customer identity does not know yet.

On a nightly run the dim_customers and customer_identity_map suites validate the rows
rewritten since their last pass (`changed_column`): each of their rules reads a column
the `_consistency_problem` flag covers over the whole table, so nothing is lost. The
invoice, ticket and NPS suites stay whole: small tables whose `updated_at` is the source's.

Column names follow dbt_project/models/marts/*.sql; a renamed column makes the suite fail
with a message naming it, which is what a contract check should do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from quality.gx_import import lazy_gx_module
from quality.spec import SuiteSpec

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

gxe = lazy_gx_module("great_expectations.expectations")


def _same_keys_sql(mart: str, source: str, keys: Sequence[str], compare: str | None = None) -> str:
    """Mart rows side by side with the source rows they were built from (full outer join)."""
    on = " AND ".join(f"m.{k} = s.{k}" for k in keys)
    key_select = ", ".join(f"coalesce(m.{k}, s.{k}) AS {k}" for k in keys)
    same = f"m.{compare} IS NOT DISTINCT FROM s.{compare}" if compare else "TRUE"
    return f"""
SELECT
    {key_select},
    m.* EXCLUDE ({", ".join(keys)}),
    m.{keys[0]} IS NOT NULL AS _in_mart,
    s.{keys[0]} IS NOT NULL AS _in_source,
    CASE WHEN m.{keys[0]} IS NULL OR s.{keys[0]} IS NULL OR NOT ({same}) THEN 'problem' END
        AS _consistency_problem
FROM {mart} AS m FULL OUTER JOIN {source} AS s ON {on}
"""


def _presence(mart: str, source: str) -> list[Expectation]:
    return [
        gxe.ExpectColumnValuesToBeInSet(
            column="_in_mart", value_set=[True], description=f"Every row of {source} is in {mart}."
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="_in_source",
            value_set=[True],
            description=f"Every row of {mart} comes from {source}.",
        ),
    ]


def _fct_invoices_warnings() -> Sequence[Expectation]:
    # Not an error: the mart documents customer_id as NULL (revenue still counted) while an
    # invoice's billing customer has not been delivered yet, which separate exports allow.
    return [
        gxe.ExpectColumnValuesToNotBeNull(
            column="customer_id",
            description=(
                "Every invoice is attributed to a golden customer (NULL: its billing customer "
                "is unknown to identity resolution, e.g. not delivered yet)."
            ),
        )
    ]


def _dim_customers_expectations() -> Sequence[Expectation]:
    return [
        *_presence("marts.dim_customers", "identity.golden_customers"),
    ]


def _identity_map_expectations() -> Sequence[Expectation]:
    return [
        *_presence("marts.customer_identity_map", "identity.customer_map"),
        gxe.ExpectColumnValuesToBeNull(
            column="_consistency_problem",
            description="Each record maps to the same customer_id as in identity.customer_map.",
        ),
    ]


MARTS_SUITES: list[SuiteSpec] = [
    SuiteSpec(
        name="marts_fct_invoices__warnings",
        table="marts.fct_invoices",
        severity="WARN",
        description="Invoices whose billing customer identity resolution does not know yet.",
        partitioned=False,
        expectations=_fct_invoices_warnings,
        key_columns=("invoice_id", "billing_customer_id"),
    ),
    SuiteSpec(
        name="marts_dim_customers__errors",
        table="marts.dim_customers",
        severity="ERROR",
        description="Exactly the golden customers of identity.golden_customers.",
        partitioned=False,
        expectations=_dim_customers_expectations,
        frame_sql=_same_keys_sql(
            "marts.dim_customers", "identity.golden_customers", ["customer_id"]
        ),
        key_columns=("customer_id",),
        exact_columns=("_consistency_problem",),
        changed_column="updated_at",
    ),
    SuiteSpec(
        name="marts_customer_identity_map__errors",
        table="marts.customer_identity_map",
        severity="ERROR",
        description="Exactly the records of identity.customer_map, each with its customer_id.",
        partitioned=False,
        expectations=_identity_map_expectations,
        frame_sql=_same_keys_sql(
            "marts.customer_identity_map",
            "identity.customer_map",
            ["source_system", "source_record_id"],
            compare="customer_id",
        ),
        key_columns=("source_system", "source_record_id"),
        exact_columns=("_consistency_problem",),
        changed_column="updated_at",
    ),
]


# --- customer experience (issue 12) ------------------------------------------------------


# The contract's NPS rows recomputed from staging: the 'all' row must count every
# deduplicated response, and every row's categories must add up to its responses.
_NPS_RECONCILIATION_SQL = """
WITH staged AS (
    SELECT count(*) AS responses,
           count(*) FILTER (WHERE score >= 9) AS promoters,
           count(*) FILTER (WHERE score BETWEEN 7 AND 8) AS passives,
           count(*) FILTER (WHERE score <= 6) AS detractors
    FROM staging.stg_surveys__responses
)
SELECT
    m.segment_type,
    m.segment_name,
    m.responses - (m.promoters + m.passives + m.detractors) AS _uncategorised_responses,
    CASE WHEN m.segment_type = 'all'
         THEN abs(m.responses - s.responses) + abs(m.promoters - s.promoters)
              + abs(m.passives - s.passives) + abs(m.detractors - s.detractors)
         ELSE 0 END AS _all_row_difference,
    CASE WHEN m.responses <> m.promoters + m.passives + m.detractors
           OR (m.segment_type = 'all' AND (m.responses <> s.responses
               OR m.promoters <> s.promoters OR m.detractors <> s.detractors))
         THEN 'problem' END AS _reconciliation_problem
FROM marts.nps_by_segment AS m CROSS JOIN staged AS s
UNION ALL
-- no 'all' row at all is a problem too (an empty survey export still gets one)
SELECT 'all', 'all', 0, s.responses, 'problem'
FROM staged AS s
WHERE NOT EXISTS (SELECT 1 FROM marts.nps_by_segment WHERE segment_type = 'all')
"""


def _fct_support_tickets_expectations() -> Sequence[Expectation]:
    return [
        *_presence("marts.fct_support_tickets", "staging.stg_support__tickets"),
        gxe.ExpectColumnValuesToBeNull(
            column="_consistency_problem",
            description="Each ticket has the latest status staging has for it.",
        ),
    ]


def _nps_reconciliation_expectations() -> Sequence[Expectation]:
    return [
        gxe.ExpectColumnValuesToBeBetween(
            column="_uncategorised_responses",
            min_value=0,
            max_value=0,
            description="promoters + passives + detractors = responses on every row.",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="_all_row_difference",
            min_value=0,
            max_value=0,
            description=(
                "The 'all' row counts every deduplicated response in staging, matched to a "
                "customer or not, with the same promoters, passives and detractors."
            ),
        ),
    ]


MARTS_SUITES += [
    SuiteSpec(
        name="marts_fct_support_tickets__errors",
        table="marts.fct_support_tickets",
        severity="ERROR",
        description="Exactly the tickets of staging, each with its latest status.",
        partitioned=False,
        expectations=_fct_support_tickets_expectations,
        frame_sql=_same_keys_sql(
            "marts.fct_support_tickets",
            "staging.stg_support__tickets",
            ["ticket_id"],
            compare="status",
        ),
        key_columns=("ticket_id",),
        exact_columns=("_consistency_problem",),
    ),
    SuiteSpec(
        name="marts_nps_by_segment__reconciliation",
        table="marts.nps_by_segment",
        severity="ERROR",
        description="The 'all' row recounts staging's responses exactly; categories add up.",
        partitioned=False,
        expectations=_nps_reconciliation_expectations,
        frame_sql=_NPS_RECONCILIATION_SQL,
        key_columns=("segment_type", "segment_name"),
        exact_columns=("_reconciliation_problem",),
    ),
]
