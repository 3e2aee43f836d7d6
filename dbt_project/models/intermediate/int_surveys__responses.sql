-- One row per NPS response (deduplicated by response_id) with its golden customer; NULL
-- for an anonymous response or one whose email the identity engine could not place.
select
    responses.response_id,
    responses.survey_id,
    identity_map.customer_id,
    responses.score,
    responses.nps_category,
    responses.submitted_at,
    cast({{ dbt.date_trunc('month', 'responses.submitted_at') }} as date) as submitted_month
from {{ ref('stg_surveys__responses') }} as responses
left join {{ ref('stg_identity__customer_map') }} as identity_map
    on identity_map.source_system = 'survey'
    and identity_map.source_record_id = responses.response_id
