-- Net Promoter Score per customer segment, over survey responses deduplicated by
-- response_id (docs/landing-contract.md). The row segment_type = 'all' counts every
-- response, matched to a customer or not (anonymous ones included); then one row per RFM
-- segment, lifecycle stage, churn risk and plan, over the responses of matched customers.
with responses as (

    select * from {{ ref('int_surveys__responses') }}

),

all_responses as (

    select
        'all' as segment_type,
        'all' as segment_name,
        {{ nps_counts() }},
        cast(coalesce(sum(case when customer_id is not null then 1 else 0 end), 0) as {{ dbt.type_bigint() }}) as matched_responses,
        cast(count(distinct customer_id) as {{ dbt.type_bigint() }}) as respondents
    from responses

),

by_segment as (

    select
        segments.segment_type,
        segments.segment_name,
        {{ nps_counts('responses.nps_category') }},
        cast(count(*) as {{ dbt.type_bigint() }}) as matched_responses,
        cast(count(distinct responses.customer_id) as {{ dbt.type_bigint() }}) as respondents
    from responses
    inner join {{ ref('int_customer__experience_segments') }} as segments
        on segments.customer_id = responses.customer_id
    group by segments.segment_type, segments.segment_name

),

unioned as (

    select * from all_responses
    union all
    select * from by_segment

)

select
    segment_type,
    segment_name,
    responses,
    promoters,
    passives,
    detractors,
    cast({{ nps_score() }} as {{ type_double() }}) as nps,
    matched_responses,
    respondents
from unioned
