-- NPS over time for a BI trend line: one row per survey and calendar month of submission
-- (a survey that runs across months gets a row per month), over responses deduplicated by
-- response_id, matched to a customer or not. Sum the counts over surveys for a monthly
-- total, or over months for a survey's total; recompute nps from the sums.
with responses as (

    select * from {{ ref('int_surveys__responses') }}

),

grouped as (

    select
        submitted_month,
        survey_id,
        {{ nps_counts() }},
        cast(sum(case when customer_id is not null then 1 else 0 end) as {{ dbt.type_bigint() }}) as matched_responses,
        min(submitted_at) as first_submitted_at,
        max(submitted_at) as last_submitted_at
    from responses
    group by submitted_month, survey_id

)

select
    submitted_month,
    survey_id,
    responses,
    promoters,
    passives,
    detractors,
    cast({{ nps_score() }} as {{ type_double() }}) as nps,
    matched_responses,
    first_submitted_at,
    last_submitted_at
from grouped
